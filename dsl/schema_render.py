"""The field table (`dsl.schema`) written out where it cannot be imported: the proto and the docs.

`scripts/gen_fields` rewrites each region below between its BEGIN and END
lines; tests/dsl/test_schema.py fails when a committed file is out of date.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dsl.schema import FIELDS, SECTIONS
from dsl.types import FLOAT, INT, IP, STRING, VERIFICATION, SetType, Type

ROOT = Path(__file__).resolve().parent.parent


def _type_name(t: Type) -> str:
    if isinstance(t, SetType):
        return f"set of {_type_name(t.elem)}s"
    names = {STRING: "string", INT: "int", FLOAT: "float", VERIFICATION: "level", IP: "IP address"}
    return names[t]


def markdown_fields() -> str:
    """docs/language.md: field, type, note; fields of a section with the same type and note share a row."""
    rows: dict[tuple[str, str, str], list[str]] = {}
    for f in FIELDS:
        rows.setdefault((f.section, _type_name(f.type), f.note), []).append(f"`{f.path}`")
    lines = ["| field | type | |", "| --- | --- | --- |"]
    lines += [f"| {', '.join(paths)} | {t} |{' ' + note if note else ''} |" for (_, t, note), paths in rows.items()]
    return "\n".join(lines)


def markdown_gateway_fields() -> str:
    """docs/grpc.md: where the gateways read each field by default."""

    def code(names: tuple[str, ...] | list[str]) -> str:
        return ", ".join(f"`{n}`" for n in names)

    lines = [
        "| field | header (`headers.*` key) | JWT claim | rate-limit descriptor keys |",
        "| --- | --- | --- | --- |",
    ]
    for f in FIELDS:
        key = f.header_setting
        header = "" if key is None else f"{code([f.header]) if f.header else 'none'} (`{key}`)"
        lines.append(f"| `{f.path}` | {header} | {code([f.claim]) if f.claim else ''} | {code(f.descriptors)} |")
    return "\n".join(lines)


def _proto_comment(text: str, indent: str) -> list[str]:
    return [f"{indent}// {text}."] if text else []


def proto_messages() -> str:
    """The request-context messages of grpc/policyengine/v1/policy.proto."""
    out: list[str] = []
    for s in SECTIONS:
        out += _proto_comment(s.doc, "")
        out.append(f"message {s.message} {{")
        for f in FIELDS:
            if f.section != s.name:
                continue
            note = f.note.replace("`", "")
            out += _proto_comment(note, "  ")
            label = "" if f.proto_type == "StringList" else "optional "
            out.append(f"  {label}{f.proto_type} {f.name} = {f.number};")
        out += ["}", ""]
    return "\n".join(out[:-1])


@dataclass(frozen=True, slots=True)
class Region:
    path: str  # relative to the repository root
    name: str
    comment: tuple[str, str]  # how the file comments a line: (opening, closing)
    render: Callable[[], str]

    def _marker(self, word: str) -> str:
        what = f"{word} GENERATED: {self.name}" + (
            " (scripts/gen_fields, from dsl/schema.py)" if word == "BEGIN" else ""
        )
        return f"{self.comment[0]}{what}{self.comment[1]}"

    def apply(self, text: str) -> str:
        """`text` with the region rewritten; ValueError when its markers are missing."""
        begin, end = self._marker("BEGIN"), self._marker("END")
        pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.S)
        if not pattern.search(text):
            raise ValueError(f"{self.path}: no region {begin!r} ... {end!r}")
        return pattern.sub(lambda _: f"{begin}\n{self.render()}\n{end}", text, count=1)


REGIONS: tuple[Region, ...] = (
    Region("grpc/policyengine/v1/policy.proto", "request fields", ("// ", ""), proto_messages),
    Region("docs/language.md", "request fields", ("<!-- ", " -->"), markdown_fields),
    Region("docs/grpc.md", "gateway fields", ("<!-- ", " -->"), markdown_gateway_fields),
)
