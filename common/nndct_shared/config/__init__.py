"""The quantization-strategy configuration of the vai_q_pytorch user guide, as typed objects.

    from nndct_shared.config import load_config, default_config, lstm_config
    cfg = load_config("pytorch_quantize_config.json")   # validated, QuantConfigError if not
    act = cfg.for_tensor("activation", layer_type="torch.nn.Conv2d")
    act.bit_width, act.method, act.round_mode            # 8, CalibMethod.MAXMIN, ...
    cfg.to_json()                                        # round-trips through load_config

Modules: `enums` (value sets), `schema` (dataclasses), `validate` (value checks), `parse`
(JSON -> objects), `resolve` (overall -> tensor -> layer), `conflicts` and `restrictions`
(cross-option and per-target rules), `checks` (runs them), `defaults` (presets), `load`
(files), `compare` (differences). Errors are raised through ``nndct_shared.messages``.
"""

from __future__ import annotations

from .compare import config_differences as config_differences
from .defaults import default_config as default_config
from .defaults import lstm_config as lstm_config
from .enums import CalibMethod as CalibMethod
from .enums import CalibStatistic as CalibStatistic
from .enums import RoundMode as RoundMode
from .enums import ScaleType as ScaleType
from .enums import TargetDevice as TargetDevice
from .enums import TensorKind as TensorKind
from .load import load_config as load_config
from .load import read_json as read_json
from .load import save_config as save_config
from .resolve import DEFAULT_DIFFS_SEARCH_RANGE as DEFAULT_DIFFS_SEARCH_RANGE
from .resolve import DEFAULT_PERCENTAGE as DEFAULT_PERCENTAGE
from .resolve import INPUT_DIFFS_SEARCH_RANGE as INPUT_DIFFS_SEARCH_RANGE
from .schema import LayerQuantConfig as LayerQuantConfig
from .schema import QuantConfig as QuantConfig
from .schema import TensorOverrides as TensorOverrides
from .schema import TensorQuantConfig as TensorQuantConfig
from .schema import TensorQuantizeConfig as TensorQuantizeConfig
from .validate import BIT_WIDTH_MAX as BIT_WIDTH_MAX
from .validate import BIT_WIDTH_MIN as BIT_WIDTH_MIN
