"""Diagnostics for CI systems: GitHub workflow annotations and SARIF 2.1.0.

CI runs lint from the repository root; both formats name files relative to the
working directory (the repository), whatever form the paths were given in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dsl.diagnostics import CODES, Diagnostic

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
# Where docs/ is published: SARIF's helpUri must be an absolute URI (3.49.12).
# `policyctl lint --docs-url` or POLICY_ENGINE_DOCS_URL points it at your own copy.
DOCS_URL = "https://github.com/policy-engine/policy-engine/blob/main/docs/"
DOCS_URL_ENV = "POLICY_ENGINE_DOCS_URL"


def is_absolute_url(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.scheme) and (bool(parts.netloc) or parts.scheme == "file")


def help_uri(code: str, docs_url: str = DOCS_URL) -> str:
    """The absolute address of a code's section in docs/diagnostics.md."""
    return f"{docs_url.rstrip('/')}/diagnostics.md#{code.lower()}"


def relative_path(name: str, cwd: Path | None = None) -> str:
    """`name` with `/` separators, relative to the working directory when it is an
    absolute path inside it."""
    p = Path(name)
    if p.is_absolute():
        try:
            return p.resolve().relative_to((cwd or Path.cwd()).resolve()).as_posix()
        except ValueError:
            pass
    return p.as_posix()


def artifact_uri(name: str, cwd: Path | None = None) -> str:
    """A SARIF artifact location: a relative reference inside the working
    directory, a file URI outside it."""
    rel = relative_path(name, cwd)
    return Path(rel).as_uri() if Path(rel).is_absolute() else rel


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
        props = f"file={_escape_prop(relative_path(d.filename))},line={d.line},col={d.column}"
        if d.span is not None:
            props += f",endLine={d.span.end_line},endColumn={d.span.end_column}"
        props += f",title={_escape_prop(d.code)}"
        out.append(f"::{level} {props}::{_escape(msg)}")
    return "".join(line + "\n" for line in out)


def sarif(diags: list[Diagnostic], docs_url: str = DOCS_URL) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one rule per code used (with its documentation's absolute
    address and a help text), one result per diagnostic. A result's message is the
    diagnostic's message alone; its hint is the result's `help` property."""
    used = sorted({d.code for d in diags})
    rules = [_rule(code, docs_url) for code in used]
    index = {code: i for i, code in enumerate(used)}
    results = []
    for d in diags:
        region: dict[str, int] = {"startLine": d.line, "startColumn": d.column}
        if d.span is not None:
            region["endLine"] = d.span.end_line
            region["endColumn"] = (
                max(d.span.end_column, d.column + 1) if d.span.end_line == d.line else d.span.end_column
            )
        result: dict[str, Any] = {
            "ruleId": d.code,
            "ruleIndex": index[d.code],
            "level": "error" if d.is_error else "warning",
            "message": {"text": d.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": artifact_uri(d.filename)},
                        "region": region,
                    }
                }
            ],
        }
        if d.hint:
            result["properties"] = {"help": d.hint}
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "policyctl",
                        "version": "0.1.0",
                        "informationUri": docs_url,
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }


def _rule(code: str, docs_url: str) -> dict[str, Any]:
    what = CODES.get(code, code)
    uri = help_uri(code, docs_url)
    return {
        "id": code,
        "name": what.replace(" ", "-"),
        "shortDescription": {"text": what},
        "helpUri": uri,
        "help": {
            "text": f"{code}: {what}. What it means, an example and the fix: {uri}",
            "markdown": f"**{code}: {what}.** [What it means, an example and the fix]({uri}).",
        },
    }
