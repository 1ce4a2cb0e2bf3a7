"""One message catalogue for the whole quantizer: IDs, levels, texts, fixes and typed errors.

Usage::

    from nndct_shared.messages import warn, note, error
    warn("TENSOR_VALUE_INVALID", name="lstm::h_next")   # [VAIQ_WARN][QUANTIZER_TORCH_...]: ...
    note("=>Calibration done.")                          # [VAIQ_NOTE]: =>Calibration done.
    raise error("QUANT_MODE", value="train", expected=["calib", "test"])

IDs are the user guide's ``QUANTIZER_TORCH_*`` (and ``QUANTIZER_TF_*`` analogues); shared code
may pass the neutral code (``"QUANT_MODE"``) and the current front end (`use_frontend`) picks
the prefix. Lines go to the ``"nndct"`` logger.
"""

from __future__ import annotations

from .catalogue import CATALOGUE as CATALOGUE
from .catalogue import GUIDE_CODES as GUIDE_CODES
from .catalogue import all_messages as all_messages
from .catalogue import lookup as lookup
from .catalogue import resolve_id as resolve_id
from .emit import LOGGER_NAME as LOGGER_NAME
from .emit import VaiqConsoleHandler as VaiqConsoleHandler
from .emit import error as error
from .emit import install_console_handler as install_console_handler
from .emit import note as note
from .emit import render as render
from .emit import reset_warn_once as reset_warn_once
from .emit import warn as warn
from .emit import warn_once as warn_once
from .entry import Frontend as Frontend
from .entry import Level as Level
from .entry import MessageDef as MessageDef
from .errors import (
    ERROR_CLASSES as ERROR_CLASSES,
    ArgumentError as ArgumentError,
    DataError as DataError,
    DeviceError as DeviceError,
    ExportError as ExportError,
    KernelImportError as KernelImportError,
    MissingFileError as MissingFileError,
    ModelStructureError as ModelStructureError,
    ModelTypeError as ModelTypeError,
    NndctError as NndctError,
    OutputDirError as OutputDirError,
    QuantConfigError as QuantConfigError,
    QuantInfoError as QuantInfoError,
    QuantModeError as QuantModeError,
    UnsupportedOpError as UnsupportedOpError,
    VersionMismatchError as VersionMismatchError,
    WorkflowError as WorkflowError,
    XmodelFormatError as XmodelFormatError,
)
from .formatting import VaiqFormatter as VaiqFormatter
from .formatting import format_line as format_line
from .formatting import stream_supports_color as stream_supports_color
from .frontend import current_frontend as current_frontend
from .frontend import use_frontend as use_frontend
