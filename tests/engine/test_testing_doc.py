"""docs/testing.md cannot drift from `policyctl test`: its policy and test files
are written out in order, every `$ policyctl test` block must print what the
page shows, every other test file must pass, and every key of the format is
documented and used by an example that runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from policy_engine.cli.main import app
from policy_engine.testfile import Bound, Case, Expect, LimitExpect, Step, TestFile, Usage

DOC = Path(__file__).parents[2] / "docs" / "testing.md"
_FENCE = re.compile(r"^```(policy|yaml|json|text)\n(.*?)^```\s*$", re.M | re.S)
_NAMED = re.compile(r"`(checkout/[^`]+)`:\s*$")  # the line before a ```json block names its file
POLICY = Path("checkout/main.policy")


def blocks() -> list[tuple[str, int, str]]:
    """(kind, line, text) of each fenced block; a json block's text starts with `# <its path>`
    taken from the line before it, as a YAML block's does."""
    text = DOC.read_text(encoding="utf-8")
    out = []
    for m in _FENCE.finditer(text):
        body = m.group(2)
        if m.group(1) == "json":
            named = _NAMED.search(text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1])
            assert named, f"docs/testing.md:{text.count(chr(10), 0, m.start()) + 1}: name the file before a json block"
            body = f"# {named.group(1)}\n{body}"
        out.append((m.group(1), text.count("\n", 0, m.start()) + 2, body))
    return out


def _yaml_path(text: str) -> Path:
    first = text.splitlines()[0]
    assert first.startswith("# checkout/"), f"a test file example starts with `# <its path>`: {first!r}"
    return Path(first[2:].strip())


def _untimed(text: str) -> str:
    return re.sub(r" in \d+\.\d\ds ", " in 0.00s ", text)


def policyctl(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(app, args)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout


def test_every_example_runs_as_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    seen = blocks()
    assert [k for k, _, _ in seen].count("policy") == 1
    shown_after: set[int] = set()  # yaml blocks whose output the page shows
    for i, (kind, _, text) in enumerate(seen):
        if kind == "text" and text.startswith("$ policyctl test ") and i > 0 and seen[i - 1][0] == "yaml":
            shown_after.add(i - 1)
    ran = 0
    for i, (kind, line, text) in enumerate(seen):
        if kind == "policy":
            POLICY.parent.mkdir(parents=True, exist_ok=True)
            POLICY.write_text(text, encoding="utf-8")
        elif kind == "json":
            path = _yaml_path(text)
            path.write_text(text.split("\n", 1)[1], encoding="utf-8")
        elif kind == "yaml":
            path = _yaml_path(text)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            if i not in shown_after:
                code, out = policyctl(["test", str(path)])
                assert code == 0, f"docs/testing.md:{line}: the example does not pass\n{out}"
                ran += 1
        elif kind == "text" and text.startswith("$ policyctl "):
            command, _, shown = text.partition("\n")
            code, out = policyctl(command.split()[2:])
            assert _untimed(out) == _untimed(shown), f"docs/testing.md:{line}: `{command}` prints\n{out}"
            ran += 1
    assert ran >= 8


def _keys(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


@pytest.mark.parametrize("model", [TestFile, Case, Step, Expect, LimitExpect, Bound, Usage], ids=lambda m: m.__name__)
def test_every_key_is_documented_and_used_in_an_example(model: type[BaseModel]) -> None:
    doc = DOC.read_text(encoding="utf-8")
    examples = "\n".join(text for kind, _, text in blocks() if kind == "yaml")
    undocumented = [k for k in _keys(model) if not re.search(rf"`[^`\n]*\b{k}\b[^`\n]*`", doc)]
    assert not undocumented, f"docs/testing.md does not describe {undocumented}"
    unused = [k for k in _keys(model) if not re.search(rf"\b{k}:", examples)]
    assert not unused, f"no example in docs/testing.md uses {unused}"


def _test_file_code_examples() -> list[tuple[str, str]]:
    """(code, test file text) for each ```yaml block under a `### T04xx` heading of docs/diagnostics.md."""
    doc = (DOC.parent / "diagnostics.md").read_text(encoding="utf-8")
    out = []
    for section in re.split(r"^### ", doc, flags=re.M)[1:]:
        code = section.split(":", 1)[0].strip()
        for block in re.findall(r"^```yaml\n(.*?)^```", section, flags=re.M | re.S):
            out.append((code, block))
    return out


def test_every_test_file_code_has_an_example() -> None:
    from dsl.diagnostics import CODES

    assert {c for c, _ in _test_file_code_examples()} == {c for c in CODES if c.startswith("T")}


@pytest.mark.parametrize("code,text", _test_file_code_examples(), ids=[c for c, _ in _test_file_code_examples()])
def test_documented_test_file_mistake_gives_its_code(
    code: str, text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    policy = next(t for k, _, t in blocks() if k == "policy")
    POLICY.parent.mkdir(parents=True)
    POLICY.write_text(policy, encoding="utf-8")
    (POLICY.parent / "example.test.yaml").write_text(text, encoding="utf-8")
    status, out = policyctl(["test", "checkout/example.test.yaml"])
    assert status == 1
    assert re.findall(r"error\[(T\d+)\]", out) == [code], out
