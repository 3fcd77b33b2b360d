"""Diagnostics for CI systems: GitHub workflow annotations and SARIF 2.1.0."""

from __future__ import annotations

from typing import Any

from dsl.diagnostics import CODES, Diagnostic

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_prop(text: str) -> str:
    return _escape(text).replace(":", "%3A").replace(",", "%2C")


def github(diags: list[Diagnostic]) -> str:
    """`::error file=...,line=...,col=...,title=...::message` lines."""
    out = []
    for d in diags:
        level = "error" if d.is_error else "warning"
        msg = d.message + (f" ({d.hint})" if d.hint else "")
        props = f"file={_escape_prop(d.filename)},line={d.line},col={d.column}"
        if d.span is not None:
            props += f",endLine={d.span.end_line},endColumn={d.span.end_column}"
        props += f",title={_escape_prop(d.code)}"
        out.append(f"::{level} {props}::{_escape(msg)}")
    return "".join(line + "\n" for line in out)


def sarif(diags: list[Diagnostic]) -> dict[str, Any]:
    used = sorted({d.code for d in diags})
    rules = [
        {
            "id": code,
            "name": CODES.get(code, code).replace(" ", "-"),
            "shortDescription": {"text": CODES.get(code, code)},
            "helpUri": f"docs/diagnostics.md#{code.lower()}",
        }
        for code in used
    ]
    index = {code: i for i, code in enumerate(used)}
    results = []
    for d in diags:
        region: dict[str, int] = {"startLine": d.line, "startColumn": d.column}
        if d.span is not None:
            region["endLine"] = d.span.end_line
            region["endColumn"] = (
                max(d.span.end_column, d.column + 1) if d.span.end_line == d.line else d.span.end_column
            )
        text = d.message + (f" Help: {d.hint}" if d.hint else "")
        results.append(
            {
                "ruleId": d.code,
                "ruleIndex": index[d.code],
                "level": "error" if d.is_error else "warning",
                "message": {"text": text},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": d.filename.replace("\\", "/")},
                            "region": region,
                        }
                    }
                ],
            }
        )
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "policyctl",
                        "version": "0.1.0",
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
