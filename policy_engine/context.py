"""The request context: pydantic models at the boundary, a flat object inside.

Both are derived from the field table (`dsl.schema.FIELDS`), so a field is
declared once. `RequestContext` validates what users and gateways send
(unknown fields are rejected, missing optional ones are null). `Context` is
what compiled policies read: one slot per field (`account_age_days`, ...),
verification as its rank, label sets as frozensets, and a per-request cache
for signals, so that generated code reads attributes instead of walking
models. The readers that fill a `Context` (from a model, a validated dict, a
protobuf message) are generated once, at import, as straight-line code: no
loop or getattr per request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, ValidationError, create_model, with_config
from typing_extensions import TypedDict

from dsl.schema import FIELDS as SCHEMA_FIELDS
from dsl.schema import SECTIONS, VERIFICATION_LEVELS, Section
from dsl.schema import Field as FieldSpec
from dsl.types import FLOAT, INT, IP, STRING, VERIFICATION, SetType, Type

Verification = Literal["none", "email", "phone", "kyc"]
VERIFICATION_RANK: dict[str, int] = {v: i for i, v in enumerate(VERIFICATION_LEVELS)}

# Flat slot names, in table order.
FIELDS: tuple[str, ...] = tuple(f.flat for f in SCHEMA_FIELDS)
# The request context's map of declared attributes (JSON key, CheckRequest field).
ATTRIBUTES = "attributes"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


def _python_type(t: Type) -> Any:
    if isinstance(t, SetType):
        return list[_python_type(t.elem)]  # type: ignore[misc]
    if t == VERIFICATION:
        return Verification
    simple = {STRING: str, IP: str, FLOAT: float, INT: int}.get(t)
    if simple is None:
        raise TypeError(f"no Python type for request field type {t}")
    return simple


def _section_model(section: Section) -> type[_Section]:
    fields: dict[str, Any] = {}
    for f in SCHEMA_FIELDS:
        if f.section == section.name:
            default = Field(default=None, ge=f.minimum) if f.minimum is not None else None
            fields[f.name] = (_python_type(f.type) | None, default)
    return create_model(f"{section.message}Info", __base__=_Section, **fields)


SECTION_MODELS: dict[str, type[_Section]] = {s.name: _section_model(s) for s in SECTIONS}


def _request_context_model() -> type[_Section]:
    fields: dict[str, Any] = {}
    for s in SECTIONS:
        model = SECTION_MODELS[s.name]
        fields[s.name] = (model | None, None) if s.nullable else (model, model())
    # The policy's declared attributes, by their API key (the path unless the policy renames
    # it), as sent: the engine types them by the declarations of the policy that decides.
    fields[ATTRIBUTES] = (dict[str, JsonValue] | None, None)
    return create_model("RequestContext", __base__=_Section, **fields)


if TYPE_CHECKING:
    RequestContext = _Section
else:
    RequestContext = _request_context_model()


def _typed_dict_of(model: type[BaseModel]) -> Any:
    """The same schema as `model`, as a TypedDict: pydantic validates JSON into
    plain dicts about three times faster than into models, which matters on
    the replay and server paths. Derived, not written twice."""
    fields: dict[str, Any] = {}
    for name, f in model.model_fields.items():
        ann = f.annotation
        sub = next((a for a in getattr(ann, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            sub = ann
        if sub is not None:
            fields[name] = _typed_dict_of(sub) | None
        else:
            fields[name] = Annotated[ann, *f.metadata] if f.metadata else ann
    td = TypedDict(model.__name__ + "Dict", fields, total=False)  # type: ignore[misc]  # its name is made, not literal
    return with_config(ConfigDict(extra="forbid"))(td)


FAST_VALIDATOR: TypeAdapter[Any] = TypeAdapter(_typed_dict_of(RequestContext))


# --- generated readers ----------------------------------------------------------------

# The shared empty map of a request without attributes: read, never written.
_EMPTY: dict[str, Any] = {}


@dataclass(frozen=True, slots=True)
class Source:
    """How generated code reads one kind of input (`m`) section by section.

    `section` is the expression for a section's object; `present`, for a
    nullable section, the condition (on `m`) that it was sent; `value` the
    expression for a field's raw value in the section object `s` (a list
    field's value must be iterable). With `checked`, the reader also checks
    what the input type cannot constrain (verification levels, minimums of
    signed numbers) and returns None when a value does not fit."""

    section: Callable[[Section], str]
    value: Callable[[FieldSpec], str]
    present: Callable[[Section], str] | None = None
    checked: bool = False
    attributes: str = "_EMPTY"  # the expression for the attributes map as sent (never mutated)


_SIGNED = frozenset({"double", "float", "int64", "int32", "sint64", "sint32"})


def _assign(f: FieldSpec, raw: str, checked: bool) -> list[str]:
    target = f"c.{f.flat}"
    if f.type == VERIFICATION:
        if checked:
            return [
                f"v = {raw}",
                "if v is not None:",
                "    v = _RANK.get(v)",
                "    if v is None:",
                "        return None",
                f"{target} = v",
            ]
        return [f"v = {raw}", f"{target} = None if v is None else _RANK[v]"]
    if isinstance(f.type, SetType):
        return [f"v = {raw}", f"{target} = None if v is None else frozenset(v)"]
    if checked and f.minimum is not None and f.proto_type in _SIGNED:
        # `not v >= min` also refuses NaN.
        return [f"v = {raw}", f"if v is not None and not v >= {f.minimum!r}:", "    return None", f"{target} = v"]
    return [f"{target} = {raw}"]


def reader_source(name: str, src: Source) -> str:
    """The text of `def name(m)`, returning a Context (or None: a value that does not fit)."""
    body = ["c = _new(_Context)", "c.cache = {}", f"c.attributes = {src.attributes}", "c.attrs = _EMPTY"]
    for section in SECTIONS:
        fields = [f for f in SCHEMA_FIELDS if f.section == section.name]
        lines = [line for f in fields for line in _assign(f, src.value(f), src.checked)]
        if section.nullable and src.present is not None:
            nulls = " = ".join(f"c.{f.flat}" for f in fields) + " = None"
            body += [
                f"if {src.present(section)}:",
                f"    s = {src.section(section)}",
                *("    " + line for line in lines),
                "else:",
                f"    {nulls}",
            ]
        else:
            body += [f"s = {src.section(section)}", *lines]
    body.append("return c")
    return f"def {name}(m):\n" + "".join(f"    {line}\n" for line in body)


def compile_reader(name: str, src: Source, env: dict[str, Any] | None = None) -> Callable[[Any], Any]:
    scope: dict[str, Any] = {
        "_new": object.__new__,
        "_Context": Context,
        "_RANK": VERIFICATION_RANK,
        "_EMPTY": _EMPTY,
        **(env or {}),
    }
    exec(compile(reader_source(name, src), f"<context reader {name}>", "exec"), scope)  # noqa: S102
    return scope[name]


class Context:
    """The flat, per-request view that compiled policies read."""

    # `measures`: the policy's measure values, by measure index. The engine sets it
    # (only for a policy that has measures) before anything that reads one runs.
    # `attributes`: declared attributes as sent, by API key; `attrs`: the same typed by the
    # deciding policy's declarations, by path (the engine sets it; compiled code reads it).
    __slots__ = FIELDS + ("cache", "measures", "attributes", "attrs")

    def __init__(self, attributes: dict[str, Any] | None = None, **values: Any) -> None:
        for name in FIELDS:
            setattr(self, name, values.get(name))
        self.cache: dict[Any, Any] = {}
        self.measures: list[float | None] = []
        self.attributes: dict[str, Any] = attributes or _EMPTY
        self.attrs: dict[str, Any] = _EMPTY

    if TYPE_CHECKING:  # the field slots come from the table, so the type checker cannot list them

        def __getattr__(self, name: str) -> Any: ...

        def __setattr__(self, name: str, value: Any) -> None: ...

    @classmethod
    def from_model(cls, m: RequestContext) -> Context:
        return _from_model(m)

    @classmethod
    def from_json(cls, text: str | bytes) -> Context:
        """Validate and flatten one JSON request context. Raises pydantic's
        ValidationError (same messages and paths as RequestContext)."""
        return _from_valid_dict(FAST_VALIDATOR.validate_json(text))

    @classmethod
    def from_valid_dict(cls, d: dict[str, Any]) -> Context:
        """Flatten a request-context dict that has passed FAST_VALIDATOR."""
        return _from_valid_dict(d)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Context:
        """Validate (unknown fields, types, minimums) and flatten a request-context dict."""
        return _from_valid_dict(FAST_VALIDATOR.validate_python(data))

    @classmethod
    def from_mapped(cls, data: dict[str, Any]) -> Context:
        """Flatten a dict an ingress mapper built (known fields only, each value coerced to
        its field's type by `ingress.values.put`): the generated reader checks what
        coercion leaves open (verification levels, minimums) and pydantic runs only to
        explain a refusal. Equal to `from_dict` on such dicts (tests/server/test_ingress.py)."""
        if data.get(ATTRIBUTES):  # values of any shape, as sent: pydantic checks they are JSON
            return cls.from_dict(data)
        c = _from_mapped(data)
        return c if c is not None else cls.from_dict(data)


_from_model = compile_reader(
    "from_model",
    Source(
        section=lambda s: f"m.{s.name}",
        present=lambda s: f"m.{s.name} is not None",
        value=lambda f: f"s.{f.name}",
        attributes=f"m.{ATTRIBUTES} or _EMPTY",
    ),
)
_from_valid_dict = compile_reader(
    "from_valid_dict",
    Source(
        section=lambda s: f'm.get("{s.name}") or _EMPTY',
        value=lambda f: f's.get("{f.name}")',
        attributes=f'm.get("{ATTRIBUTES}") or _EMPTY',
    ),
)


_from_mapped = compile_reader(
    "from_mapped",
    Source(
        section=lambda s: f'm.get("{s.name}") or _EMPTY',
        value=lambda f: f's.get("{f.name}")',
        checked=True,
    ),
)


def describe_validation_error(err: ValidationError) -> str:
    """One line per problem, each naming the JSON path at fault."""
    lines = []
    for e in err.errors():
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"])
        msg = "unknown field" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"{path}: {msg}")
    return "\n".join(lines)
