"""The constant folder: the value of an expression made of literals, through `let`s.

The checker folds windows and wholly constant conditions, the lint pass folds
conjuncts and maxima, the lowering folds windows to seconds: all with these two
functions, so that they agree on what is constant. Numbers are ints and floats,
never bools; arithmetic folds `+ - *` and unary minus (division and modulo
are left to run time, where a zero divisor is null).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping

from dsl import ast as A
from dsl.parser import MAX_EXPR_DEPTH

# Deeper than any valid expression with its lets expanded (E0105): only a cycle
# of lets (E0215) goes this deep, and it folds to "not constant".
MAX_DEPTH = MAX_EXPR_DEPTH + 1

_ARITH: dict[str, Callable[[float, float], float]] = {"+": operator.add, "-": operator.sub, "*": operator.mul}
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

Lets = Mapping[str, A.Let]


def is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))


def _let(e: A.Expr, lets: Lets) -> A.Expr | None:
    if isinstance(e, A.Name) and e.id in lets:
        return lets[e.id].expr
    return None


def const_value(e: A.Expr, lets: Lets, depth: int = 0) -> tuple[bool, object]:
    """(True, value) for a literal or constant arithmetic (through lets), else (False, None)."""
    if depth > MAX_DEPTH:
        return False, None
    inner = _let(e, lets)
    if inner is not None:
        return const_value(inner, lets, depth + 1)
    if isinstance(e, A.Literal):
        return True, e.value
    if isinstance(e, A.Unary) and e.op == "-":
        ok, v = const_value(e.operand, lets, depth + 1)
        return (True, -v) if ok and is_number(v) else (False, None)  # type: ignore[operator]
    if isinstance(e, A.Binary) and e.op in _ARITH:
        ok1, a = const_value(e.left, lets, depth + 1)
        ok2, b = const_value(e.right, lets, depth + 1)
        if ok1 and ok2 and is_number(a) and is_number(b):
            return True, _ARITH[e.op](a, b)  # type: ignore[arg-type]
    return False, None


def fold_bool(e: A.Expr, lets: Lets, depth: int = 0) -> bool | None:
    """True/False for a condition made of constants (through lets), else None."""
    if depth > MAX_DEPTH:
        return None
    inner = _let(e, lets)
    if inner is not None:
        return fold_bool(inner, lets, depth + 1)
    if isinstance(e, A.Literal) and isinstance(e.value, bool):
        return e.value
    if isinstance(e, A.Unary) and e.op == "not":
        v = fold_bool(e.operand, lets, depth + 1)
        return None if v is None else not v
    if isinstance(e, A.Binary) and e.op in ("and", "or"):
        a, b = fold_bool(e.left, lets, depth + 1), fold_bool(e.right, lets, depth + 1)
        if e.op == "and":
            return False if False in (a, b) else (True if a is True and b is True else None)
        return True if True in (a, b) else (False if a is False and b is False else None)
    if isinstance(e, A.Binary) and e.op in COMPARE:
        ok1, x = const_value(e.left, lets, depth + 1)
        ok2, y = const_value(e.right, lets, depth + 1)
        if ok1 and ok2 and is_number(x) and is_number(y):
            return COMPARE[e.op](x, y)  # type: ignore[arg-type]
    return None
