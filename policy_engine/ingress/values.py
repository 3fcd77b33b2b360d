"""Raw header, claim and descriptor values -> typed request-context values, by the field table."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from dsl.schema import BY_PATH, FIELDS, Field
from dsl.types import BOOL, FLOAT, INT, IP, STRING, VERIFICATION, MapType, SetType, Type
from policy_engine.context import VERIFICATION_RANK
from policy_engine.ingress.network import parse_ip


def check_paths(mapping: dict[str, str], where: str) -> None:
    """ValueError unless every value of `mapping` names a request-context field."""
    for key, path in mapping.items():
        if path not in BY_PATH:
            raise ValueError(f"{where}: {key!r} maps to {path!r}, which is not a request context field")


def _split_list(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [p for p in re.split(r"[,\s]+", str(value)) if p]


def _at_least(f: Field, value: float, what: str) -> None:
    if f.minimum is not None and value < f.minimum:
        raise ValueError(f"expected a non-negative {what}" if f.minimum == 0 else f"expected a {what} >= {f.minimum}")


def _integer(f: Field) -> Callable[[Any], int]:
    def read(raw: Any) -> int:
        if isinstance(raw, bool):
            raise ValueError("expected an integer")
        try:
            value = int(raw.strip()) if isinstance(raw, str) else int(raw)
        except ValueError:
            raise ValueError("expected an integer") from None
        if isinstance(raw, float) and raw != value:
            raise ValueError("expected an integer")
        _at_least(f, value, "integer")
        return value

    return read


def _number(f: Field) -> Callable[[Any], float]:
    def read(raw: Any) -> float:
        if isinstance(raw, bool):
            raise ValueError("expected a number")
        try:
            number = float(raw)
        except ValueError:
            raise ValueError("expected a number") from None
        if not math.isfinite(number):
            raise ValueError("expected a finite number")
        _at_least(f, number, "number")
        return number

    return read


def _verification(raw: Any) -> str:
    level = str(raw).strip().lower()
    if level not in VERIFICATION_RANK:
        raise ValueError(f"expected one of {list(VERIFICATION_RANK)}")
    return level


def _ip(raw: Any) -> str:
    ip = parse_ip(str(raw))
    if ip is None:
        raise ValueError("not an IP address")
    return ip


def _string(raw: Any) -> str:
    if isinstance(raw, (dict, list)):
        raise ValueError("expected a string")
    return str(raw)


_TRUE, _FALSE = frozenset({"true", "1", "yes", "on"}), frozenset({"false", "0", "no", "off"})


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower() if isinstance(raw, (str, int)) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected true or false")


def _map(f: Field, value_type: Type) -> Callable[[Any], dict[str, Any]]:
    read_value = coercer(Field(f.section, f.name, value_type, 0))

    def read(raw: Any) -> dict[str, Any]:
        if not isinstance(raw, Mapping):
            raise ValueError("expected a map")
        return {str(k): read_value(v) for k, v in raw.items() if v is not None}

    return read


def coercer(f: Field) -> Callable[[Any], Any]:
    """The reader of raw values for field `f`, chosen once by its type."""
    t = f.type
    if isinstance(t, SetType):
        return _split_list if not f.declared else lambda raw: frozenset(_split_list(raw))
    if isinstance(t, MapType):
        return _map(f, t.value)
    if t == INT:
        return _integer(f)
    if t == FLOAT:
        return _number(f)
    return {VERIFICATION: _verification, IP: _ip, STRING: _string, BOOL: _bool}[t]


# Field path -> its reader: chosen once here, not per value.
COERCERS: dict[str, Callable[[Any], Any]] = {f.path: coercer(f) for f in FIELDS}


def coerce(f: Field, raw: Any) -> Any:
    """The typed value of field `f` for a raw (string or claim) value, or ValueError saying why not."""
    return COERCERS[f.path](raw)


def coerce_or_none(path: str, raw: Any) -> Any:
    try:
        return coerce(BY_PATH[path], raw)
    except (ValueError, TypeError, OverflowError):
        return None


def put(ctx: dict[str, Any], path: str, raw: Any, warnings: list[str], source: str) -> None:
    """Set field `path` of the request-context dict from a raw value; an unusable value is
    left out, with a warning naming its source."""
    f = BY_PATH[path]
    try:
        value = COERCERS[path](raw)
    except (ValueError, TypeError, OverflowError) as e:
        warnings.append(f"{source}: ignored {raw!r} for {path}: {e}")
        return
    ctx.setdefault(f.section, {})[f.name] = value


def get(ctx: dict[str, Any], path: str) -> Any:
    f = BY_PATH[path]
    return ctx.get(f.section, {}).get(f.name)
