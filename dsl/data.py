"""Data lists beside a policy: read, validated and typed at check time.

A policy reads only files inside its own folder: a path that escapes it (`..`,
an absolute path, a link pointing out) is an error, so a policy can never be
used to read arbitrary files of the machine that runs it.
"""

from __future__ import annotations

import csv
import ipaddress
import io
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import re2

from dsl.types import CIDR_SET, FLOAT, INT, PRICES, REGEX_SET, STRING, MapType, SetType, Type

MAX_DATA_BYTES = 64 << 20
MAX_ENTRIES = 1_000_000
MAX_PATTERN_LEN = 2_000


class DataError(Exception):
    """A problem with a data file; `line` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True, slots=True)
class DataValue:
    type: Type
    value: Any  # frozenset, dict, or list[str] for cidrs and patterns
    path: Path


def resolve_inside(base: Path, rel: str) -> Path:
    if "\x00" in rel:  # the OS cannot take it (found by fuzzing: it escaped as ValueError)
        raise DataError("data path contains a NUL character")
    if Path(rel).is_absolute():
        raise DataError(f"data path `{rel}` is absolute; give a path inside the policy folder")
    base_r = base.resolve()
    target = (base_r / rel).resolve()
    if target != base_r and base_r not in target.parents:
        raise DataError(f"data path `{rel}` leaves the policy folder")
    return target


def load(loader: str, base: Path, rel: str) -> DataValue:
    path = resolve_inside(base, rel)
    if not path.is_file():
        raise DataError(f"data file `{rel}` not found beside the policy")
    if path.stat().st_size > MAX_DATA_BYTES:
        raise DataError(f"data file `{rel}` is larger than {MAX_DATA_BYTES >> 20} MiB")
    text = path.read_text(encoding="utf-8")
    fn = _LOADERS[loader]
    return fn(text, path)


def _lines(text: str) -> list[tuple[int, str]]:
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if line:
            out.append((n, line))
    if len(out) > MAX_ENTRIES:
        raise DataError(f"more than {MAX_ENTRIES} entries")
    return out


def _strings(text: str, path: Path) -> DataValue:
    return DataValue(SetType(STRING), frozenset(v for _, v in _lines(text)), path)


def _ints(text: str, path: Path) -> DataValue:
    values = set()
    for n, v in _lines(text):
        try:
            values.add(int(v.replace("_", "")))
        except ValueError:
            raise DataError(f"`{v}` is not an integer", n) from None
    return DataValue(SetType(INT), frozenset(values), path)


def _cidrs(text: str, path: Path) -> DataValue:
    nets = []
    for n, v in _lines(text):
        try:
            nets.append(str(ipaddress.ip_network(v, strict=False)))
        except ValueError:
            raise DataError(f"`{v}` is not a CIDR or an IP address", n) from None
    return DataValue(CIDR_SET, nets, path)


def check_pattern(p: str) -> str | None:
    """The RE2 error for a pattern, or None when it compiles."""
    if len(p) > MAX_PATTERN_LEN:
        return f"pattern longer than {MAX_PATTERN_LEN} characters"
    try:
        re2.compile(p)
    except re2.error as e:
        msg = e.args[0] if e.args else str(e)
        return msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)
    return None


def _patterns(text: str, path: Path) -> DataValue:
    pats = []
    for n, raw in enumerate(text.splitlines(), 1):
        p = raw.strip()
        if not p or p.startswith("#"):
            continue
        err = check_pattern(p)
        if err:
            raise DataError(f"invalid RE2 pattern `{p}`: {err}", n)
        pats.append(p)
    return DataValue(REGEX_SET, pats, path)


def _number(v: str) -> int | float | str:
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return v


def _csv(text: str, path: Path) -> DataValue:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise DataError("empty CSV file")
    body = [r for r in rows[1:] if r and not r[0].startswith("#")]
    out: dict[str, Any] = {}
    for i, r in enumerate(body, 2):
        if len(r) < 2:
            raise DataError("a row needs two columns, key and value", i)
        out[r[0].strip()] = _number(r[1].strip())
    return DataValue(MapType(STRING, _value_type(out.values())), out, path)


def _value_type(values: Any) -> Type:
    vs = list(values)
    if vs and all(isinstance(v, int) and not isinstance(v, bool) for v in vs):
        return INT
    if vs and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vs):
        return FLOAT
    if all(isinstance(v, str) for v in vs):
        return STRING
    raise DataError("values must be all numbers or all strings")


def _json(text: str, path: Path) -> DataValue:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"invalid JSON: {e.msg}", e.lineno) from None
    if isinstance(doc, dict):
        return DataValue(MapType(STRING, _value_type(doc.values())), doc, path)
    if isinstance(doc, list):
        t = _value_type(doc)
        return DataValue(SetType(t), frozenset(doc), path)
    raise DataError("a JSON data file holds an object or an array")


# --- price tables -------------------------------------------------------------

PRICE_CLASSES = ("input", "cached_input", "output", "reasoning")
DEFAULT_ROW = "*"  # the row a model the table does not list is priced by
PER_TOKENS = 1_000_000  # a table's prices are per million tokens, as providers list them
MAX_PRICE = Decimal(1_000_000)  # per million tokens: a larger one is a typo


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Prices per model (or model group) and token class, per token, with each row's
    blanks filled from its group's row. `price` and `model_group` read it."""

    classes: tuple[str, ...]  # the token classes the table prices, in PRICE_CLASSES order
    per_token: dict[str, dict[str, float]]  # class -> model or group -> price of one token
    groups: dict[str, str]  # model -> its group (a group row and a model without one: itself)
    default: dict[str, float] | None  # class -> price of the `*` row, if the table has one

    def price(self, model: str, cls: str) -> float | None:
        p = self.per_token[cls].get(model)
        if p is None and self.default is not None:
            return self.default[cls]
        return p


def _decimal(cell: str, line: int, cls: str) -> Decimal:
    try:
        v = Decimal(cell)
    except InvalidOperation:
        raise DataError(f"`{cell}` is not a price (a decimal number of dollars per million tokens)", line) from None
    if not v.is_finite() or v < 0 or v > MAX_PRICE:
        raise DataError(f"the {cls} price `{cell}` is out of range (0 to {MAX_PRICE} per million tokens)", line)
    return v


def _prices(text: str, path: Path) -> DataValue:
    rows = [(n, r) for n, r in enumerate(csv.reader(io.StringIO(text)), 1) if r and not r[0].lstrip().startswith("#")]
    if not rows:
        raise DataError("empty price table: give a header row `model,group,input,cached_input,output,reasoning`")
    head_line, header = rows[0]
    cols = [c.strip() for c in header]
    for c in cols:
        if c not in ("model", "group", *PRICE_CLASSES):
            hint = ", ".join(("model", "group", *PRICE_CLASSES))
            raise DataError(f"unknown column `{c}` (columns: {hint})", head_line)
    if len(set(cols)) != len(cols) or "model" not in cols:
        raise DataError("the header names each column once, `model` among them", head_line)
    classes = tuple(c for c in PRICE_CLASSES if c in cols)
    if not classes:
        raise DataError("the header names no token class: " + ", ".join(PRICE_CLASSES), head_line)
    raw: dict[str, tuple[int, str, dict[str, Decimal]]] = {}  # model -> (line, group, prices given)
    for n, r in rows[1:]:
        if len(r) > len(cols):
            raise DataError(f"{len(r)} cells in a row of {len(cols)} columns", n)
        cells = dict(zip(cols, (c.strip() for c in r)))
        model = cells.get("model", "")
        if not model:
            raise DataError("a row needs a model (or group) name", n)
        if model in raw:
            raise DataError(f"model `{model}` is listed twice (first on line {raw[model][0]})", n)
        given = {c: _decimal(cells[c], n, c) for c in classes if cells.get(c)}
        raw[model] = (n, cells.get("group", ""), given)
    if len(raw) > MAX_ENTRIES:
        raise DataError(f"more than {MAX_ENTRIES} entries")
    per_token: dict[str, dict[str, float]] = {c: {} for c in classes}
    groups: dict[str, str] = {}
    for model, (n, group, given) in raw.items():
        if group:
            if group not in raw:
                raise DataError(f"group `{group}` has no row of its own", n)
            if raw[group][1]:
                raise DataError(f"group `{group}` belongs to a group itself: groups are one level deep", n)
        inherited = raw[group][2] if group else {}
        for c in classes:
            price = given.get(c, inherited.get(c))
            if price is None:
                where = f" nor its group `{group}`" if group else ""
                raise DataError(f"model `{model}`{where} gives no {c} price", n)
            per_token[c][model] = float(price / PER_TOKENS)
        if model != DEFAULT_ROW:
            groups[model] = group or model
    default = {c: per_token[c].pop(DEFAULT_ROW) for c in classes} if DEFAULT_ROW in raw else None
    return DataValue(PRICES, PriceTable(classes, per_token, groups, default), path)


_LOADERS = {
    "strings": _strings,
    "ints": _ints,
    "cidrs": _cidrs,
    "patterns": _patterns,
    "csv": _csv,
    "json": _json,
    "prices": _prices,
}
