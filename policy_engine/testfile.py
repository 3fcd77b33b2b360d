"""Policy test files: YAML read with positions, validated into typed cases.

Every problem is a `Diagnostic` (codes T04xx, docs/diagnostics.md) pointing at
what the author wrote: a one-step case has no `steps:` in the file, so its
errors never name `steps[0]`; `expect: allowed` is reported at `allowed`, not
at an `effect` key the author never typed. The format itself is documented in
docs/testing.md.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from collections.abc import Iterable

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from dsl.ast import Source, Span
from dsl.diagnostics import Diagnostic, did_you_mean
from dsl.parser import parse_duration
from policy_engine.context import SECTION_MODELS

MAX_REPEAT = 100_000
SECTIONS = ("request", "account", "api_key", "client", "attributes")
EFFECTS = ("allow", "flag", "throttle", "deny")

# Diagnostic codes of test files (dsl.diagnostics.CODES documents them).
T_YAML, T_UNKNOWN_KEY, T_VALUE, T_MISSING, T_UNKNOWN_NAME, T_ALWAYS, T_POLICY = (
    "T0401",
    "T0402",
    "T0403",
    "T0404",
    "T0405",
    "T0406",
    "T0407",
)


def _seconds(v: Any) -> float:
    """A duration: a number of seconds or a policy duration such as `30s`, `5m`."""
    if isinstance(v, bool):
        raise ValueError("expected a duration such as 30s, or a number of seconds")
    if isinstance(v, (int, float)):
        if v < 0:
            raise ValueError("a duration cannot be negative")
        return float(v)
    if isinstance(v, str) and re.fullmatch(r"\d+(\.\d+)?(ms|s|m|h|d|w)", v.strip()):
        return parse_duration(v.strip())
    raise ValueError(f"{v!r} is not a duration: write e.g. 500ms, 30s, 5m, 1h, 1d or a number of seconds")


def _instant(v: Any) -> float:
    """A point in time: seconds since the epoch, or an ISO 8601 date-time with its
    UTC offset (`2026-01-31T23:30:00+01:00`, `2026-02-01T00:00:00Z`)."""
    if isinstance(v, bool):
        raise ValueError("expected a time: seconds since the epoch, or e.g. 2026-01-31T23:30:00+01:00")
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, datetime.datetime):  # YAML reads an unquoted date-time itself
        if v.tzinfo is None:
            raise ValueError(f"{v.isoformat()} has no UTC offset: add one, e.g. Z or +01:00")
        return v.timestamp()
    if isinstance(v, str):
        try:
            t = datetime.datetime.fromisoformat(v.strip())
        except ValueError:
            raise ValueError(f"{v!r} is not a time: write e.g. 2026-01-31T23:30:00+01:00") from None
        return _instant(t)
    raise ValueError(f"{v!r} is not a time: write e.g. 2026-01-31T23:30:00+01:00")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bound(_Model):
    """`{at_least: 4}`, `{at_most: 10}` or both: a range for a value."""

    at_least: float | None = None
    at_most: float | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> Bound:
        if self.at_least is None and self.at_most is None:
            raise ValueError("give at_least, at_most or both")
        return self

    def holds(self, v: float | None) -> bool:
        return (
            v is not None
            and (self.at_least is None or v >= self.at_least)
            and (self.at_most is None or v <= self.at_most)
        )

    def show(self) -> dict[str, float]:
        return {k: v for k, v in (("at_least", self.at_least), ("at_most", self.at_most)) if v is not None}


def _number_or_bound(v: Any) -> Any:
    """One error for a value that is neither a number, null nor a range (a union
    would report one per alternative)."""
    if v is None or isinstance(v, Bound) or (isinstance(v, (int, float)) and not isinstance(v, bool)):
        return v
    if isinstance(v, dict):
        unknown = sorted(str(k) for k in v if k not in ("at_least", "at_most"))
        if unknown:
            raise PydanticCustomError(
                "bound_key",
                "unknown key `{key}` in a range",
                {
                    "key": unknown[0],
                    "hint": did_you_mean(unknown[0], ("at_least", "at_most"))
                    or "a range is {at_least: N}, {at_most: N} or both",
                },
            )
        for k, x in v.items():
            if x is not None and (isinstance(x, bool) or not isinstance(x, (int, float))):
                raise ValueError(f"{k} must be a number, not {x!r}")
        if all(x is None for x in v.values()):
            raise PydanticCustomError(
                "value_error", "a range needs a bound", {"hint": "give at_least, at_most or both"}
            )
        return Bound(**v)
    raise ValueError(f"expected a number, null or a range such as {{at_least: 2}}, not {v!r}")


# An expected value: exact (a number, or null), or a range.
Expected = Annotated[float | Bound | None, BeforeValidator(_number_or_bound)]


def value_matches(want: float | Bound | None, got: float | None) -> bool:
    if isinstance(want, Bound):
        return want.holds(got)
    if want is None or got is None:
        return want is got
    return abs(got - want) <= 1e-9 * max(1.0, abs(want))  # sliding windows give fractions


def show_expected(v: Any) -> Any:
    return v.show() if isinstance(v, Bound) else v


class LimitExpect(_Model):
    """A limit's state after the request, as `policyctl eval` reports it: `used`
    (including this request when it was counted), `remaining`, `max` (each exact
    or a range), `over` and `key`."""

    used: Expected = None
    remaining: Expected = None
    max: Expected = None
    over: bool | None = None
    key: str | None = None

    @model_validator(mode="after")
    def _something(self) -> LimitExpect:
        if not self.model_fields_set:
            raise PydanticCustomError(
                "always_holds",
                "an empty limit expectation asserts nothing",
                {"hint": "give used, remaining, max, over or key; `null` asserts the limit did not apply"},
            )
        return self

    def mismatched(self, state: Any) -> bool:
        for name in ("used", "remaining", "max"):
            if name in self.model_fields_set and not value_matches(getattr(self, name), getattr(state, name)):
                return True
        return (self.over is not None and self.over != state.over) or (self.key is not None and self.key != state.key)

    def show(self) -> dict[str, Any]:
        return {k: show_expected(getattr(self, k)) for k in type(self).model_fields if k in self.model_fields_set}


_CONTAINS_HINT = {
    "rules": "to assert that no rule or limit fired, write `no_rules: true`; for the exact list, `rules_exactly`",
    "flags": "to assert that no flag fired, list the rules that did with `rules_exactly` (or `no_rules: true`)",
    "shadow_rules": "to assert that no shadow rule would have fired, write `shadow_rules_exactly: []`",
}


class Expect(_Model):
    """What a step's decision must be. `rules`, `shadow_rules` and `flags` are
    'contains', the `_exactly` forms exact (as sets); headers, measures and
    limits a subset of what the decision reports."""

    effect: Literal["allow", "flag", "throttle", "deny"]
    status: int | None = None
    reason: str | None = None
    rules: list[str] | None = None
    rules_exactly: list[str] | None = None
    no_rules: bool | None = None
    shadow_rules: list[str] | None = None
    shadow_rules_exactly: list[str] | None = None
    flags: list[str] | None = None
    headers: dict[str, str] | None = None
    measures: dict[str, Expected] | None = None
    limits: dict[str, LimitExpect | None] | None = None
    exempt: list[str] | None = None  # exactly the exemptions the request matched (`[]`: none)

    @field_validator("headers", mode="before")
    @classmethod
    def _header_text(cls, v: Any) -> Any:
        # `retry-after: 57` in YAML is an int; headers are text on the wire.
        if isinstance(v, dict):
            return {str(k).lower(): str(x) for k, x in v.items()}
        return v

    @field_validator("rules", "flags", "shadow_rules")
    @classmethod
    def _not_empty(cls, v: list[str] | None, info: Any) -> list[str] | None:
        if v == []:
            raise PydanticCustomError(
                "always_holds",
                "`{field}: []` always holds: it lists what the decision must contain",
                {"field": info.field_name, "hint": _CONTAINS_HINT[info.field_name]},
            )
        return v

    @field_validator("no_rules")
    @classmethod
    def _no_rules_true(cls, v: bool | None) -> bool | None:
        if v is False:
            raise PydanticCustomError(
                "always_holds",
                "`no_rules: false` asserts nothing",
                {"hint": "leave it out, or list what must fire with `rules`"},
            )
        return v

    @model_validator(mode="after")
    def _one_form(self) -> Expect:
        given = [k for k in ("rules", "rules_exactly", "no_rules") if getattr(self, k) is not None]
        if len(given) > 1:
            raise PydanticCustomError(
                "value_error",
                "give one of `{a}` and `{b}`",
                {
                    "a": given[0],
                    "b": given[1],
                    "hint": "`rules` must be among the rules that fired, `rules_exactly` must be all of them, "
                    "`no_rules: true` says none fired",
                },
            )
        if self.shadow_rules is not None and self.shadow_rules_exactly is not None:
            raise PydanticCustomError("value_error", "give one of `shadow_rules` and `shadow_rules_exactly`", {})
        return self

    def named_rules(self) -> Iterable[tuple[str, list[str]]]:
        """(key, names) of every list that names rules or limits."""
        for k in ("rules", "rules_exactly", "shadow_rules", "shadow_rules_exactly", "flags"):
            names = getattr(self, k)
            if names:
                yield k, names


class Usage(_Model):
    prompt_tokens: int | None = Field(default=None, ge=0)
    completion_tokens: int | None = Field(default=None, ge=0)
    cached_input_tokens: int | None = Field(default=None, ge=0)
    reasoning_tokens: int | None = Field(default=None, ge=0)
    model: str | None = None


# The request sections, typed by the same models that validate a request, so a
# misspelt field is reported where it is written (with its line), not when a step runs.
RequestSection = SECTION_MODELS["request"]
AccountSection = SECTION_MODELS["account"]
ApiKeySection = SECTION_MODELS["api_key"]
ClientSection = SECTION_MODELS["client"]


class Sections(_Model):
    request: RequestSection | None = None  # type: ignore[valid-type]
    account: AccountSection | None = None  # type: ignore[valid-type]
    api_key: ApiKeySection | None = None  # type: ignore[valid-type]
    client: ClientSection | None = None  # type: ignore[valid-type]
    attributes: dict[str, JsonValue] | None = None  # the policy's declared attributes, by path

    def given(self) -> dict[str, dict[str, Any]]:
        return sections_given(self)


def sections_given(m: BaseModel) -> dict[str, dict[str, Any]]:
    """The sections and fields the author wrote (null included), as plain dicts."""
    out: dict[str, dict[str, Any]] = {}
    for s in SECTIONS:
        v = getattr(m, s, None)
        if isinstance(v, BaseModel):
            out[s] = v.model_dump(exclude_unset=True)
        elif v is not None:
            out[s] = dict(v)
    return out


class Step(_Model):
    name: str | None = None
    request: RequestSection | None = None  # type: ignore[valid-type]
    account: AccountSection | None = None  # type: ignore[valid-type]
    api_key: ApiKeySection | None = None  # type: ignore[valid-type]
    client: ClientSection | None = None  # type: ignore[valid-type]
    attributes: dict[str, JsonValue] | None = None  # the policy's declared attributes, by path
    usage: Usage | None = None  # reported after the step (engine.report_sync)
    repeat: int = Field(default=1, ge=1, le=MAX_REPEAT)
    every: float = 0.0  # clock advance between repetitions
    after: float = 0.0  # clock advance before the step
    at: float | None = None  # the clock for the step (after `after`): an instant
    expect: Expect | None = None  # None: the step only builds state

    @field_validator("every", "after", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        return _seconds(v)

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, v: Any) -> float | None:
        return None if v is None else _instant(v)

    @field_validator("expect", mode="before")
    @classmethod
    def _effect_only(cls, v: Any) -> Any:
        return {"effect": v} if isinstance(v, str) else v


CASE_KEYS = ("name", "defaults", "start")


class Case(_Model):
    name: str
    defaults: Sections | None = None
    start: float | None = None
    steps: list[Step] = Field(min_length=1)

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, v: Any) -> float | None:
        return None if v is None else _instant(v)

    @model_validator(mode="before")
    @classmethod
    def _single_step(cls, data: Any) -> Any:
        """A case without `steps` is one step: its other keys are the step's."""
        if isinstance(data, dict) and "steps" not in data:
            own = {k: data[k] for k in CASE_KEYS if k in data}
            step = {k: v for k, v in data.items() if k not in own}
            return {**own, "steps": [step]}
        return data


class TestFile(_Model):
    __test__ = False  # not a pytest class

    policy: str | None = None  # the policy folder or file, relative to this file
    defaults: Sections | None = None
    cases: list[Case] = Field(min_length=1)


# -------------------------------------------------------- YAML with positions


@dataclass(frozen=True, slots=True)
class Pos:
    """Where a YAML node is in the text (1-based lines and columns)."""

    line: int
    column: int
    end_line: int
    end_column: int
    start: int
    end: int


def _pos(node: yaml.Node) -> Pos:
    s, e = node.start_mark, node.end_mark
    return Pos(s.line + 1, s.column + 1, e.line + 1, e.column + 1, s.index, e.index)


class YamlMap(dict):
    """A mapping that remembers where it, each key and each value are."""

    line = 0
    at: Pos | None = None
    keys_at: dict[Any, Pos]
    values_at: dict[Any, Pos]


class YamlList(list):
    line = 0
    at: Pos | None = None
    items_at: list[Pos]


class _Loader(yaml.SafeLoader):
    """A safe loader whose mappings and sequences remember their positions."""


def _map(loader: _Loader, node: yaml.MappingNode) -> Iterable[YamlMap]:
    d = YamlMap()
    d.at, d.line, d.keys_at, d.values_at = _pos(node), node.start_mark.line + 1, {}, {}
    yield d
    d.update(loader.construct_mapping(node))
    for k_node, v_node in node.value:
        k = loader.construct_object(k_node)
        d.keys_at[k], d.values_at[k] = _pos(k_node), _pos(v_node)


def _seq(loader: _Loader, node: yaml.SequenceNode) -> Iterable[YamlList]:
    s = YamlList()
    s.at, s.line, s.items_at = _pos(node), node.start_mark.line + 1, [_pos(n) for n in node.value]
    yield s
    s.extend(loader.construct_sequence(node))


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _seq)


def written_path(raw: Any, loc: Iterable[Any]) -> list[Any]:
    """The part of a pydantic error location that exists in the file as written:
    parts the model added (a one-step case's `steps`, 0) are left out, and the
    path stops at a scalar the model expanded (`expect: allow`)."""
    node, path = raw, []
    for part in loc:
        if isinstance(node, dict):
            if part in node:
                path.append(part)
                node = node[part]
            continue
        if isinstance(node, list):
            if isinstance(part, int) and 0 <= part < len(node):
                path.append(part)
                node = node[part]
            continue
        break
    return path


def place(raw: Any, path: list[Any], *, key: bool = False) -> Pos | None:
    """Where the node at `path` is written: its value, or (`key`) its key."""
    if not path:
        return getattr(raw, "at", None)
    node = raw
    for part in path[:-1]:
        node = node[part]
    last = path[-1]
    if isinstance(node, YamlMap):
        return (node.keys_at if key else node.values_at).get(last)
    if isinstance(node, YamlList) and isinstance(last, int) and last < len(node.items_at):
        return node.items_at[last]
    return None


def line_of(raw: Any, path: list[Any]) -> int:
    p = place(raw, path)
    return p.line if p is not None else getattr(raw, "line", 1) or 1


def show_path(path: list[Any]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "the file"


@dataclass
class TestFileText:
    """One test file: its text (for excerpts) and what it parsed to."""

    __test__ = False

    source: Source
    raw: Any = None

    def diag(
        self, code: str, message: str, path: list[Any], hint: str | None = None, *, key: bool = False
    ) -> Diagnostic:
        p = place(self.raw, path, key=key)
        if p is None:
            return Diagnostic(code, message, None, hint=hint, file=self.source.name)
        return Diagnostic(code, message, self.span(p), hint=hint)

    def span(self, p: Pos) -> Span:
        # A block value runs to the next key; point at its first line only.
        if p.end_line > p.line:
            first = self.source.line(p.line)
            return Span(self.source, p.line, p.column, p.line, len(first) + 1, p.start, p.start)
        return Span(self.source, p.line, p.column, p.end_line, p.end_column, p.start, p.end)


def read(name: str, text: str) -> tuple[TestFile | None, TestFileText, list[Diagnostic]]:
    """Parse and validate a test file: (the model or None, the file, problems)."""
    f = TestFileText(Source(name, text))
    try:
        f.raw = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        context, cmark = getattr(e, "context", None), getattr(e, "context_mark", None)
        if context and cmark is not None:
            problem += f" ({context} at line {cmark.line + 1})"
        span = None
        if mark is not None:
            span = Span(
                f.source, mark.line + 1, mark.column + 1, mark.line + 1, mark.column + 2, mark.index, mark.index
            )
        return None, f, [Diagnostic(T_YAML, f"invalid YAML: {problem}", span, file=name)]
    try:
        return TestFile.model_validate(f.raw), f, []
    except ValidationError as e:
        return None, f, _problems(f, e)


# ------------------------------------------------------------ pydantic errors


def _problems(f: TestFileText, err: ValidationError) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    seen: set[tuple[int, int, str]] = set()
    for e in err.errors():
        d = _problem(f, e)
        k = (d.line, d.column, d.message)
        if k not in seen:
            seen.add(k)
            out.append(d)
    return sorted(out, key=Diagnostic.sort_key)


def _problem(f: TestFileText, e: Any) -> Diagnostic:
    loc = list(e["loc"])
    kind = e["type"]
    ctx = e.get("ctx") or {}
    if kind == "extra_forbidden":
        return _unknown_key(f, loc)
    path = written_path(f.raw, loc)
    if kind == "missing":
        name = loc[-1]
        hint = (
            "`expect:` is an effect (allow, flag, throttle, deny) or a mapping with `effect:`"
            if name == "effect"
            else None
        )
        return f.diag(T_MISSING, f"missing `{name}` in {show_path(path)}", path, hint)
    if kind in ("always_holds",):
        return f.diag(T_ALWAYS, e["msg"], path, ctx.get("hint"))
    if kind == "literal_error" and loc[-1] == "effect":
        got = str(e["input"])
        hint = did_you_mean(got, EFFECTS) or "an effect is allow, flag, throttle or deny"
        return f.diag(T_VALUE, f"`{got}` is not an effect (allow, flag, throttle or deny)", path, hint)
    if kind in ("model_type", "dict_type"):
        if not path:
            return f.diag(T_VALUE, "a test file is a mapping with `cases:`", path, "see docs/testing.md")
        model = model_at(loc)
        keys = f"its keys: {', '.join(model.model_fields)}" if model is not None else None
        return f.diag(T_VALUE, f"{show_path(path)} should be a mapping, not {_kind_of(e['input'])}", path, keys)
    if kind == "value_error":
        msg = str(ctx.get("error", e["msg"]))
    else:
        msg = e["msg"]
    return f.diag(T_VALUE, f"{show_path(path)}: {msg[0].lower() + msg[1:] if msg else msg}", path, ctx.get("hint"))


def _kind_of(v: Any) -> str:
    if isinstance(v, list):
        return "a list"
    return "null" if v is None else f"`{v}`"


def _unknown_key(f: TestFileText, loc: list[Any]) -> Diagnostic:
    key = loc[-1]
    path = written_path(f.raw, loc)
    model = model_at(loc[:-1])
    fields = list(model.model_fields) if model is not None else []
    hint = None
    if model is Case and key in Step.model_fields:
        hint = f"a case with `steps:` takes `{key}` in a step" + (
            ", or under the case's `defaults:` for every step: `defaults: {" + f"{key}: ...}}`"
            if key in SECTIONS
            else ""
        )
        return f.diag(T_UNKNOWN_KEY, f"`{key}` beside `steps:`", path, hint, key=True)
    if model is Sections or (model is not None and model in SECTION_MODELS.values()):
        where = "a request section" if model is not Sections else "defaults"
        hint = did_you_mean(str(key), fields) or f"{where} takes {', '.join(fields)}"
        what = "section" if model is Sections else "field"
        return f.diag(T_UNKNOWN_KEY, f"unknown {what} `{key}`", path, hint, key=True)
    if fields:
        if model in (Case, Step):
            fields = list(dict.fromkeys([*CASE_KEYS, "steps", *Step.model_fields]))
        hint = did_you_mean(str(key), fields) or f"the keys here are {', '.join(fields)}"
    return f.diag(T_UNKNOWN_KEY, f"unknown key `{key}`", path, hint, key=True)


def model_at(loc: Iterable[Any]) -> type[BaseModel] | None:
    """The model a pydantic error location points into (TestFile at the root)."""
    t: Any = TestFile
    for part in loc:
        t = _inner(t)
        if isinstance(t, type) and issubclass(t, BaseModel):
            fld = t.model_fields.get(part) if isinstance(part, str) else None
            if fld is None:
                return None
            t = fld.annotation
        elif get_origin(t) is list and isinstance(part, int):
            t = get_args(t)[0]
        elif get_origin(t) is dict:
            t = get_args(t)[1]
        else:
            return None
    t = _inner(t)
    return t if isinstance(t, type) and issubclass(t, BaseModel) else None


def _inner(t: Any) -> Any:
    """`X | None`, `Annotated[X, ...]` -> X (the first alternative that is a model or container)."""
    while True:
        origin = get_origin(t)
        if origin is Annotated:
            t = get_args(t)[0]
        elif origin is Union or type(t).__name__ == "UnionType":
            args = [a for a in get_args(t) if a is not type(None)]
            t = next(
                (
                    a
                    for a in args
                    if (isinstance(a, type) and issubclass(a, BaseModel)) or get_origin(a) in (list, dict)
                ),
                args[0],
            )
        else:
            return t
