"""Which front end (PyTorch or Keras) is reporting, so that shared code gets the right ID prefix.

Code in ``nndct_shared`` (the config loader, quant_info reader, xmodel writer, ...) does not know
whether a torch or a TF user called it. It reports by *code* (``"QUANT_CONFIG_VALUE"``) and the
catalogue turns the code into ``QUANTIZER_TORCH_...`` or ``QUANTIZER_TF_...`` from the front end
current in this context. The default is torch (the guide's tool); ``tf_nndct`` wraps its public
entry points in ``with use_frontend("tf"):``. A ContextVar keeps threads and asyncio tasks apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .entry import Frontend

_CURRENT: ContextVar[Frontend] = ContextVar("nndct_frontend", default=Frontend.TORCH)


def as_frontend(value: Frontend | str) -> Frontend:
    """`value` as a `Frontend`; accepts "torch"/"pytorch" and "tf"/"tensorflow"/"keras"."""
    if isinstance(value, Frontend):
        return value
    aliases = {"torch": Frontend.TORCH, "pytorch": Frontend.TORCH, "tf": Frontend.TF,
               "tensorflow": Frontend.TF, "keras": Frontend.TF}
    try:
        return aliases[str(value).lower()]
    except KeyError:
        raise ValueError(
            f"unknown front end {value!r}; use 'torch' or 'tf'"
        ) from None


def current_frontend() -> Frontend:
    """The front end whose IDs neutral codes resolve to in this context."""
    return _CURRENT.get()


@contextmanager
def use_frontend(frontend: Frontend | str) -> Iterator[Frontend]:
    """Within the block, neutral message codes resolve to `frontend`'s IDs."""
    token = _CURRENT.set(as_frontend(frontend))
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)
