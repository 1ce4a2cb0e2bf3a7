"""Rounding-method names and codes: the one table of the project.

Why a separate module: the reference tools pass bare integers (2..5) whose meaning is easy to
mix up, and silently produced all-zero tensors for an unknown code. Every public kernel goes
through :func:`resolve_method`, so names and codes are checked in one place and an unknown
method is a ``ValueError`` that lists the valid ones. The other spellings of a rounding rule
resolve here too: the config's ``round_mode`` values (``RoundMode``: std_round, half_up, ...)
are method names, the xmodel fix op's ``round_mode`` (DPU_ROUND, STD_ROUND, PY3_ROUND) are
names in upper case, and ``CODE_NAMES`` gives the name of any core code.
"""
from __future__ import annotations

import numbers

# Codes understood by the C++ core (nndct::Method). 2..5 are the reference's numeric codes;
# 6 and 7 follow the later vai_q_pytorch numbering; 8 has no reference code.
DPU_ROUND = 2
STD_ROUND = 3
FLOOR = 4
OLD_RNN = 5
HALF_DOWN = 6
CEIL = 7
HALF_EVEN = 8

#: Numeric codes a caller may pass directly (the reference's codes).
PUBLIC_METHOD_CODES: tuple[int, ...] = (DPU_ROUND, STD_ROUND, FLOOR, OLD_RNN)

#: Lower-case method names and the core code each one selects.
METHOD_NAMES: dict[str, int] = {
    "dpu_round": DPU_ROUND,  # ties toward +inf
    "half_up": DPU_ROUND,  # same rule as dpu_round
    "std_round": STD_ROUND,  # ties away from zero (C round)
    "floor": FLOOR,
    "old_rnn": OLD_RNN,  # negative ties -> ceil, positive ties -> half-even
    "half_even": HALF_EVEN,  # banker's rounding
    "py3_round": HALF_EVEN,  # Python 3 round() is half-even
    "half_down": HALF_DOWN,  # ties toward zero
    "ceil": CEIL,
}

#: The canonical name of every core code (the kernel API takes names for codes 6..8).
CODE_NAMES: dict[int, str] = {
    DPU_ROUND: "dpu_round",
    STD_ROUND: "std_round",
    FLOOR: "floor",
    OLD_RNN: "old_rnn",
    HALF_DOWN: "half_down",
    CEIL: "ceil",
    HALF_EVEN: "half_even",
}


def _valid_methods_text() -> str:
    names = ", ".join(repr(n) for n in METHOD_NAMES)
    codes = ", ".join(str(c) for c in PUBLIC_METHOD_CODES)
    return f"codes {codes} or names {names}"


def resolve_method(method: int | str) -> int:
    """Return the core method code for a reference code (2..5) or a method name.

    Names are case-insensitive. Anything else raises ``ValueError`` (or ``TypeError`` for a
    value that is neither an integer nor a string) naming the valid methods.
    """
    if isinstance(method, str):
        code = METHOD_NAMES.get(method.strip().lower())
        if code is None:
            raise ValueError(f"unknown rounding method {method!r}; valid methods are {_valid_methods_text()}")
        return code
    if isinstance(method, bool) or not isinstance(method, numbers.Integral):
        raise TypeError(
            f"method must be an int code or a name, got {type(method).__name__}; valid methods are "
            f"{_valid_methods_text()}"
        )
    code = int(method)
    if code not in PUBLIC_METHOD_CODES:
        raise ValueError(f"unknown rounding method code {code}; valid methods are {_valid_methods_text()}")
    return code


#: The codes `method_code` accepts: every rounding rule but the RNN-only OLD_RNN (the rules
#: the CNN flow's fake quantization implements, in the kernels and in torch).
FIX_METHOD_CODES: tuple[int, ...] = (DPU_ROUND, STD_ROUND, FLOOR, HALF_DOWN, CEIL, HALF_EVEN)


def method_code(method: int | str) -> int:
    """The kernel code of a rounding method (name or reference code); ValueError otherwise."""
    code = resolve_method(method)
    if code not in FIX_METHOD_CODES:
        raise ValueError(f"rounding method {method!r} is not a fake-quantization rounding method")
    return code
