"""Front-end-neutral definition of a catalogue entry, expanded into one `MessageDef` per front end.

Most messages mean the same for PyTorch and Keras models; only the ID prefix
(``QUANTIZER_TORCH_`` / ``QUANTIZER_TF_``) and sometimes the wording ("torch.nn.Module" vs
"keras.Model") differ. A `Spec` states the message once and lists the front ends that have it;
``tf_template`` / ``tf_fix`` / ``tf_meaning`` override the wording for the TF entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from .entry import Frontend, Level, MessageDef
from .errors import NndctError

BOTH: tuple[Frontend, ...] = (Frontend.TORCH, Frontend.TF)
TORCH_ONLY: tuple[Frontend, ...] = (Frontend.TORCH,)
TF_ONLY: tuple[Frontend, ...] = (Frontend.TF,)


@dataclass(frozen=True)
class Spec:
    """A message stated once for all the front ends in `frontends`."""

    code: str
    level: Level
    meaning: str
    template: str
    fix: str = ""
    exc: type[NndctError] | None = None
    frontends: tuple[Frontend, ...] = BOTH
    tf_template: str | None = None
    tf_fix: str | None = None
    tf_meaning: str | None = None

    def expand(self) -> list[MessageDef]:
        """One `MessageDef` per front end, with the TF wording where it differs."""
        out = []
        for fe in self.frontends:
            is_tf = fe is Frontend.TF
            out.append(
                MessageDef(
                    msg_id=fe.id_prefix + self.code,
                    code=self.code,
                    level=self.level,
                    frontend=fe,
                    meaning=(self.tf_meaning if is_tf and self.tf_meaning else self.meaning),
                    template=(self.tf_template if is_tf and self.tf_template else self.template),
                    fix=(self.tf_fix if is_tf and self.tf_fix is not None else self.fix),
                    exc_type=self.exc,
                )
            )
        return out


def error(code: str, meaning: str, template: str, fix: str, exc: type[NndctError], **kw) -> Spec:
    """An error entry: `exc` is the exception class the catalogue raises for it."""
    return Spec(code, Level.ERROR, meaning, template, fix, exc, **kw)


def warning(code: str, meaning: str, template: str, fix: str = "", **kw) -> Spec:
    """A warning entry: logged as ``[VAIQ_WARN][ID]: text``; the flow continues."""
    return Spec(code, Level.WARNING, meaning, template, fix, None, **kw)


def note(code: str, meaning: str, template: str, **kw) -> Spec:
    """A note entry: logged as ``[VAIQ_NOTE]: text`` (notes show no ID)."""
    return Spec(code, Level.NOTE, meaning, template, "", None, **kw)
