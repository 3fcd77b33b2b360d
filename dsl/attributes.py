"""Declared attributes: `attribute account.risk_score: float { header "x-risk-score" }`.

Each well-formed declaration becomes a row of the field table (`dsl.schema.Field`,
`declared=True`) with its sources; the checker then types expressions against the
built-in fields plus these (`dsl.schema.with_attributes`). Problems are reported
through `report(code, message, span, hint)`; a declaration with an error is left out.
"""

from __future__ import annotations

from collections.abc import Callable

from dsl import ast as A
from dsl.diagnostics import did_you_mean
from dsl.schema import (
    ATTRIBUTE_SECTIONS,
    ATTRIBUTE_SOURCES,
    ATTRIBUTE_TYPES_DOC,
    BY_PATH,
    SCHEMA,
    Field,
    attribute_type,
)
from dsl.types import STRING, MapType, Type

Report = Callable[[str, str, A.Span | None, str | None], None]


def check_attributes(decls: list[A.Attribute], report: Report) -> tuple[Field, ...]:
    """The well-formed declarations as field rows, in source order (duplicates reported)."""
    out: list[Field] = []
    seen: dict[str, A.Attribute] = {}
    for d in decls:
        prev = seen.get(d.name)
        if prev is not None:
            where = f"{prev.name_span.source.name}:{prev.name_span.line}:{prev.name_span.column}"
            report("E0209", f"attribute `{d.name}` declared twice", d.name_span, f"first declared at {where}")
            continue
        seen[d.name] = d
        f = _field(d, report)
        if f is not None:
            out.append(f)
    return tuple(out)


def _field(d: A.Attribute, report: Report) -> Field | None:
    ok = _path_ok(d, report)
    t = attribute_type(d.type_text)
    if t is None:
        base = d.type_text.split("<", 1)[0]
        hint = did_you_mean(base, ("string", "int", "float", "bool", "ip", "set", "map"))
        report("E0213", f"unknown attribute type `{d.type_text}`", d.type_span, hint or f"types: {ATTRIBUTE_TYPES_DOC}")
        ok = False
    values: dict[str, tuple[str, ...]] = {}
    for c in d.clauses:
        args = _source_ok(c, t, report)
        if args is None:
            ok = False
        elif c.kind in values:
            report(
                "E0211",
                f"`{c.kind}` given twice in attribute `{d.name}`",
                c.span,
                "an attribute has one of each source",
            )
            ok = False
        else:
            values[c.kind] = args
    if not ok or t is None:
        return None
    meta = values.get("envoy_metadata")
    return Field(
        d.section,
        d.field,
        t,
        0,
        declared=True,
        header=_one(values, "header"),
        claim=_one(values, "jwt"),
        api=_one(values, "api") or d.name,
        all_headers="headers" in values,
        metadata=(meta[0], meta[1]) if meta else None,
        context_extension=_one(values, "context_extension"),
        asgi=_one(values, "asgi"),
    )


def _one(values: dict[str, tuple[str, ...]], word: str) -> str | None:
    args = values.get(word)
    return args[0] if args else None


def _path_ok(d: A.Attribute, report: Report) -> bool:
    section = d.section
    if section not in SCHEMA:
        hint = did_you_mean(section, ATTRIBUTE_SECTIONS) or "sections: " + ", ".join(ATTRIBUTE_SECTIONS)
        report("E0202", f"`{section}` is not a section of the request", d.name_span, hint)
        return False
    if section not in ATTRIBUTE_SECTIONS:
        report(
            "E0212",
            f"attributes cannot be declared in `{section}`",
            d.name_span,
            f"`{section}` is filled by usage reports; declare it in " + ", ".join(ATTRIBUTE_SECTIONS),
        )
        return False
    if d.name in BY_PATH:
        report(
            "E0209", f"`{d.name}` is a built-in field and cannot be declared again", d.name_span, "choose another name"
        )
        return False
    return True


def _source_ok(c: A.Clause, t: Type | None, report: Report) -> tuple[str, ...] | None:
    """The source's arguments, or None after reporting what is wrong with it."""
    src = ATTRIBUTE_SOURCES.get(c.kind)
    where = c.text_span or c.span
    if src is None:
        hint = did_you_mean(c.kind, ATTRIBUTE_SOURCES) or "sources: " + ", ".join(ATTRIBUTE_SOURCES)
        report("E0213", f"unknown attribute source `{c.kind}`", where, hint)
        return None
    args = tuple(str(e.value) for e in c.exprs if isinstance(e, A.Literal))
    if len(args) != len(src.params):
        wanted = " ".join(f"<{p}>" for p in src.params)
        n = len(src.params)
        report(
            "E0204",
            f"`{c.kind}` takes {n} argument{'s' * (n != 1)}, got {len(args)}",
            c.span,
            f"write `{c.kind}{' ' + wanted if wanted else ''}`: {src.doc}",
        )
        return None
    for e, value in zip(c.exprs, args):
        if not value.strip() or any(ch.isspace() for ch in value):
            report("E0213", f"invalid {c.kind} argument {value!r}", e.span, "a name without spaces")
            return None
    if t is None:
        return args
    if c.kind == "headers" and t != MapType(STRING, STRING):
        report(
            "E0205",
            f"`headers` gives a map<string, string>, not {t}",
            c.span,
            "declare the attribute as map<string, string>",
        )
        return None
    if src.scalar_only and isinstance(t, MapType):
        report(
            "E0205",
            f"`{c.kind}` gives text, which cannot be read as a {t}",
            c.span,
            "a map comes from `headers` (map<string, string>), jwt, envoy_metadata, api or asgi",
        )
        return None
    if c.kind == "header":
        args = (args[0].lower(),)
    return args
