"""Typed exceptions raised through the message catalogue.

Every exception carries the catalogue ID (``msg_id``) and the "how to fix" hint, so a user who
reads only the traceback still gets both. Each subclass ALSO derives from the built-in exception a
user would naturally catch (``ValueError`` for bad values, ``TypeError`` for wrong types,
``OSError`` for file-system problems, ...): code written against the reference tools, which raised
plain built-ins, keeps working.

The catalogue entry (not the call site) decides which class an error ID raises; see
``catalogue_guide.py`` / ``catalogue_project.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class NndctError(Exception):
    """Base of every error the quantizer raises on purpose.

    Attributes:
        msg_id: the catalogue ID, e.g. ``"QUANTIZER_TORCH_QUANT_CONFIG_VALUE"`` (None only when the
            exception was built by hand without the catalogue).
        text: the rendered message without the ``[VAIQ_ERROR][ID]:`` prefix and without the fix.
        fix: the rendered "how to fix" hint ("" when the entry has none).
        fields: the values the message was rendered from, for programmatic inspection.
    """

    def __init__(
        self,
        message: str = "",
        *,
        msg_id: str | None = None,
        text: str | None = None,
        fix: str = "",
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.msg_id = msg_id
        self.text = message if text is None else text
        self.fix = fix
        self.fields: dict[str, Any] = dict(fields or {})

    def __str__(self) -> str:
        # OSError formats its args specially; always show the catalogue line we built.
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions cross process boundaries (DataLoader workers, multiprocessing); the default
        # reduce would call cls(*args) and drop msg_id / fix.
        return (
            _rebuild,
            (type(self), str(self), self.msg_id, self.text, self.fix, self.fields),
        )


def _rebuild(
    cls: type[NndctError],
    message: str,
    msg_id: str | None,
    text: str,
    fix: str,
    fields: Mapping[str, Any],
) -> NndctError:
    return cls(message, msg_id=msg_id, text=text, fix=fix, fields=fields)


class QuantConfigError(NndctError, ValueError):
    """The quantization configuration (JSON file, dict or objects) is invalid or conflicting."""


class QuantModeError(NndctError, ValueError):
    """``quant_mode`` is not one of the supported modes."""


class ArgumentError(NndctError, ValueError):
    """An API argument has a value the function does not accept (e.g. an image format)."""


class ModelTypeError(NndctError, TypeError):
    """The object passed as the model is of the wrong type (not an nn.Module / keras.Model, ...)."""


class ModelStructureError(NndctError, RuntimeError):
    """The model is of the right type but its structure cannot be quantized as is."""


class QuantInfoError(NndctError, ValueError):
    """quant_info.json (or another calibration result) is corrupt or does not fit the model."""


class ExportError(NndctError, RuntimeError):
    """Exporting (xmodel, ONNX, TorchScript, dumps) failed or was called at the wrong time."""


class WorkflowError(NndctError, RuntimeError):
    """API calls were made in an order the workflow does not allow (e.g. no calibration run)."""


class UnsupportedOpError(NndctError, NotImplementedError):
    """An operation or layer configuration the quantizer does not implement."""


class DataError(NndctError, ValueError):
    """Input or calibration data is unusable (NaN/inf, wrong shape, wrong batch size)."""


class DeviceError(NndctError, TypeError):
    """Model, data and quantizer are on different devices (the reference raised TypeError)."""


class OutputDirError(NndctError, OSError):
    """The output directory cannot be created or written."""


class MissingFileError(NndctError, FileNotFoundError):
    """A file the flow needs (config, state dict, calibration result) does not exist."""


class XmodelFormatError(NndctError, ValueError):
    """A file that should be an xmodel is truncated, corrupt or not an XIR graph."""


class KernelImportError(NndctError, ImportError):
    """The compiled kernel extension could not be imported."""


class VersionMismatchError(NndctError, RuntimeError):
    """An installed framework or library version is not supported for the requested feature."""


#: Every concrete error class, for tests and documentation.
ERROR_CLASSES: tuple[type[NndctError], ...] = (
    QuantConfigError,
    QuantModeError,
    ArgumentError,
    ModelTypeError,
    ModelStructureError,
    QuantInfoError,
    ExportError,
    WorkflowError,
    UnsupportedOpError,
    DataError,
    DeviceError,
    OutputDirError,
    MissingFileError,
    XmodelFormatError,
    KernelImportError,
    VersionMismatchError,
)
