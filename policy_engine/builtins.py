"""Run-time implementations of the language's functions and helpers that
generated code calls. Every function returns null (None) for a null argument,
which is how the language propagates missing fields."""

from __future__ import annotations

import datetime
import math
from typing import Any
from collections.abc import Callable

from dsl import zones
from dsl.data import PriceTable
from dsl.functions import WEEKDAYS


def _null_safe(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any) -> Any:
        for a in args:
            if a is None:
                return None
        return fn(*args)

    wrapper.__name__ = fn.__name__
    return wrapper


BUILTINS: dict[str, Callable[..., Any]] = {
    "lower": _null_safe(str.lower),
    "upper": _null_safe(str.upper),
    "trim": _null_safe(str.strip),
    "len": _null_safe(len),
    "contains": _null_safe(lambda s, sub: sub in s),
    "starts_with": _null_safe(str.startswith),
    "ends_with": _null_safe(str.endswith),
    "least": _null_safe(min),
    "greatest": _null_safe(max),
    "abs": _null_safe(abs),
    "floor": _null_safe(math.floor),
    "ceil": _null_safe(math.ceil),
}


def _local(ts: float, zone: str) -> datetime.datetime | None:
    tz = zones.zone(zone)
    if tz is None:  # the checker accepts only known zones: a zone the system lost since
        return None
    try:
        return datetime.datetime.fromtimestamp(ts, tz)
    except (OverflowError, OSError, ValueError):  # a time outside what a date can hold
        return None


def _local_part(fn: Callable[[datetime.datetime], Any]) -> Callable[[Any, Any], Any]:
    def part(ts: Any, zone: Any) -> Any:
        if ts is None or zone is None:
            return None
        t = _local(ts, zone)
        return None if t is None else fn(t)

    return part


BUILTINS.update(
    {
        "local_hour": _local_part(lambda t: t.hour),
        "local_weekday": _local_part(lambda t: WEEKDAYS[t.weekday()]),
        "local_date": _local_part(lambda t: t.date().isoformat()),
        "local_time": _local_part(lambda t: f"{t.hour:02d}:{t.minute:02d}"),
    }
)


# price() and model_group(): the compiler passes the policy's price table first.
def _price(table: PriceTable, model: Any, cls: str) -> float | None:
    return None if model is None else table.price(model, cls)


def _model_group(table: PriceTable, model: Any) -> str | None:
    return None if model is None else table.groups.get(model)


BUILTINS.update({"price": _price, "model_group": _model_group})


def implementation(name: str) -> Callable[..., Any]:
    """The callable behind a language function; signals are imported on first use
    so that a policy which calls none does not load their data."""
    if name in BUILTINS:
        return BUILTINS[name]
    from policy_engine.signals import SIGNALS

    return SIGNALS[name]


def render_key(value: Any) -> str:
    """A limit key component as text; null keys share the bucket "-"."""
    if value is None:
        return "-"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def safe_div(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


def safe_mod(a: float, b: float) -> float | None:
    return None if b == 0 else a % b


def safe_index(seq: Any, i: Any) -> Any:
    if isinstance(seq, dict):
        return seq.get(i)
    try:
        return seq[i]
    except (IndexError, TypeError, KeyError):
        return None
