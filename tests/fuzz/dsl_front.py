"""The language front end run end to end on one input, as `policyctl lint` and
`fmt` would: parse, check, format (and compile when it checks). Shared by the
hypothesis tests and the atheris harness.

Anything but a diagnostic or success is a bug: an exception escaping here
fails the fuzzer."""

from __future__ import annotations

import tempfile
from pathlib import Path

from dsl.checker import check
from dsl.diagnostics import Diagnostic, PolicyError
from dsl.formatter import format_source
from dsl.parser import parse


def front_end(text: str, folder: Path | None = None) -> list[Diagnostic]:
    """Every diagnostic for `text` as one policy file; raises only on a front-end bug."""
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="pe-fuzz-") as tmp:
            return front_end(text, Path(tmp))
    module, diags = parse(text, "fuzz.policy")
    _, cdiags = check([module], folder)
    diags = diags + cdiags
    try:
        out = format_source(text, "fuzz.policy")
    except PolicyError as e:
        assert e.diagnostics, "PolicyError without diagnostics"  # never an empty error list
        # The formatter refuses only what does not parse; anything else is its own bug.
        assert any(d.is_error for d in diags if d.code.startswith("E01")), e
    else:
        # What the formatter writes must format to itself.
        assert format_source(out, "fuzz.policy") == out
    if not any(d.is_error for d in diags):
        _compile(text, folder)
    return diags


def _compile(text: str, folder: Path) -> None:
    """A policy the checker accepts must compile: the compiler has no errors of its own."""
    from policy_engine.policyset import load_policy_set

    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return  # lone surrogates cannot be written to a file; the checker already took them
    (folder / "fuzz.policy").write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_policy_set(folder)
    finally:
        (folder / "fuzz.policy").unlink()
