"""Hostile policy text: the parser, checker, formatter and compiler answer every
input with diagnostics or success, never a traceback, and within a per-input time
bound (hypothesis' deadline); size and nesting limits give clear errors."""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsl.typecheck import MAX_LITERAL_ITEMS
from dsl.parser import MAX_EXPR_DEPTH, MAX_NESTING, MAX_SOURCE_BYTES, parse
from dsl_front import front_end

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "policies").glob("*.policy"))
# Per input: a hang bound, not a speed check. The machines are shared, and a
# first call may pay one-off costs (grammar build, geo data), so it is wide.
DEADLINE_MS = 60_000
FUZZ = settings(max_examples=150, deadline=DEADLINE_MS, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pe-fuzz-") as tmp:
        yield Path(tmp)


def codes(text: str, folder: Path) -> set[str]:
    return {d.code for d in front_end(text, folder)}


# --- arbitrary and grammar-shaped text -----------------------------------------------------


@FUZZ
@given(st.text(max_size=400))
def test_arbitrary_text(folder: Path, text: str) -> None:
    front_end(text, folder)


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_as_latin1_and_utf8(folder: Path, raw: bytes) -> None:
    front_end(raw.decode("latin-1"), folder)
    front_end(raw.decode("utf-8", "replace"), folder)


KEYWORDS = [
    "policy",
    "rule",
    "limit",
    "measure",
    "let",
    "data",
    "deny",
    "throttle",
    "flag",
    "when",
    "unless",
    "reason",
    "status",
    "header",
    "shadow",
    "key",
    "count",
    "sum",
    "distinct",
    "usage",
    "window",
    "max",
    "record",
    "on_error",
    "block",
    "exempt",
    "and",
    "or",
    "not",
    "in",
    "matches",
    "if",
    "then",
    "else",
    "null",
    "true",
    "false",
    "owner",
    "retry_after",
    "admitted",
    "attempts",
    "open",
    "closed",
]
NAMES = [
    "account.id",
    "account.age_days",
    "account.tier",
    "account.labels",
    "account.verification",
    "request.prompt",
    "request.max_tokens",
    "client.ip",
    "client.asn",
    "usage.prompt_tokens",
    "api_key.scopes",
    "measures.x",
    "measures",
    "x",
    "lower",
    "len",
    "fingerprint",
    "template_id",
    "ip_prefix",
    "strings",
    "cidrs",
    "patterns",
    "__import__",
    "open",
    "eval",
    "exec",
    "os",
    "sys",
    "__class__",
    "__builtins__",
]
PUNCT = [
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ".",
    ":",
    "=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "??",
    "?",
    "!",
    "#",
    '"',
    "\\",
    "\n",
    "\n",
    "  ",
]
LITERALS = [
    "0",
    "1",
    "-1",
    "10k",
    "2M",
    "1e309",
    "0.5",
    "1_000",
    "5y",
    "1d",
    "30s",
    "99999999999999999999999",
    '"a"',
    '""',
    '"\\u0000"',
    '"\\x"',
    'r"\\d+"',
    'r"(a*)*"',
    '"10.0.0.0/8"',
    '"kyc"',
    '"\\n"',
    "'x'",
]
TOKEN = st.sampled_from(KEYWORDS + NAMES + PUNCT + LITERALS)


@FUZZ
@given(st.lists(TOKEN, max_size=80))
def test_grammar_shaped_token_soup(folder: Path, tokens: list[str]) -> None:
    front_end(" ".join(tokens), folder)


@settings(max_examples=200, deadline=DEADLINE_MS, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.sampled_from(SHIPPED), st.randoms(use_true_random=False), st.integers(1, 6))
def test_mutated_shipped_policies(folder: Path, path: Path, rnd: random.Random, edits: int) -> None:
    """Delete, duplicate or splice spans of a real policy: mostly almost-valid text."""
    text = path.read_text()
    for _ in range(edits):
        i = rnd.randrange(len(text) + 1)
        j = min(len(text), i + rnd.randrange(1, 40))
        op = rnd.randrange(4)
        if op == 0:
            text = text[:i] + text[j:]
        elif op == 1:
            text = text[:i] + text[i:j] * 2 + text[j:]
        elif op == 2:
            text = text[:i] + rnd.choice(KEYWORDS + NAMES + PUNCT + LITERALS) + text[i:]
        else:
            k = rnd.randrange(len(text) + 1)
            text = text[:k] + text[i:j] + text[k:]
    # Data paths point into a folder without the data files: E0214, not a crash.
    front_end(text, folder)


def test_shipped_policies_pass_the_front_end(tmp_path: Path) -> None:
    data = tmp_path / "p"
    shutil.copytree(ROOT / "policies", data, ignore=shutil.ignore_patterns("*.policy"))
    text = "\n".join(path.read_text() for path in SHIPPED)  # one namespace, as in the folder
    assert not [d for d in front_end(text, data) if d.is_error]


# --- limits: clear errors, no recursion, no hang --------------------------------------------


def _rule(cond: str) -> str:
    return f'rule r {{\n  deny when {cond}\n  reason "r"\n}}\n'


CHAINS = {
    "or": lambda n: " or ".join(['account.id == "a"'] * n),
    "and": lambda n: " and ".join(["(account.age_days ?? 0) > 1"] * n),
    "plus": lambda n: "+".join(["1"] * n) + " > 0",
    "mul": lambda n: "*".join(["(account.age_days ?? 1)"] * n) + " > 0",
    "coalesce": lambda n: "(" + " ?? ".join(["account.age_days"] * n) + ") > 0",
    "not": lambda n: "not " * n + 'account.id == "a"',
    "if": lambda n: "if true then " * n + "true" + " else false" * n,
    "field": lambda n: "account" + ".id" * n + ' == "a"',
    "index": lambda n: "account.labels" + "[0]" * n + ' == "a"',
}


@pytest.mark.parametrize("kind", sorted(CHAINS))
def test_long_chains_are_refused_with_e0105_not_a_recursion_error(folder: Path, kind: str) -> None:
    assert "E0105" in codes(_rule(CHAINS[kind](1000)), folder)


@pytest.mark.parametrize("kind", ["or", "and", "plus", "mul", "coalesce", "if"])
def test_at_the_depth_limit_every_accepted_policy_compiles(folder: Path, kind: str) -> None:
    """front_end compiles what checks: the limit keeps generated code within CPython's own."""
    n = MAX_EXPR_DEPTH - 3
    assert "E0105" not in codes(_rule(CHAINS[kind](n)), folder)
    # Depth spread over a chain of lets (the compiler inlines them): the longest accepted
    # chain compiles too (front_end compiles whatever checks).
    base = CHAINS[kind](8)

    def accepted(k: int) -> bool:
        lets = "".join(f"let l{i} = if l{i + 1} then true else false\n" for i in range(k))
        return "E0105" not in codes(lets + f"let l{k} = {base}\n" + _rule("l0"), folder)

    lo, hi = 1, MAX_EXPR_DEPTH  # bisect for the longest accepted chain
    assert accepted(lo) and not accepted(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if accepted(mid) else (lo, mid)
    assert lo >= MAX_EXPR_DEPTH // 4


def test_let_chain_of_thousands_is_refused(folder: Path) -> None:
    lets = "".join(f"let l{i} = l{i + 1}\n" for i in range(2000)) + "let l2000 = 1\n"
    diags = front_end(lets + _rule("l0 > 0"), folder)
    deep = [d for d in diags if d.code == "E0105"]
    assert len(deep) == 1 and "once the `let`s it uses are expanded" in deep[0].message


def test_let_cycles_still_reported(folder: Path) -> None:
    assert "E0215" in codes("let a = b + 1\nlet b = a + 1\n" + _rule("a > 0"), folder)


def test_brackets_and_size(folder: Path) -> None:
    assert codes(_rule("(" * 100_000 + "true" + ")" * 100_000), folder) == {"E0105"}
    assert codes("#" * (MAX_SOURCE_BYTES + 1), folder) == {"E0105"}
    assert "E0105" not in codes(_rule("(" * (MAX_NESTING - 2) + "true" + ")" * (MAX_NESTING - 2)), folder)


def test_literal_size_limits(folder: Path) -> None:
    items = ", ".join(f'"a{i}"' for i in range(MAX_LITERAL_ITEMS + 1))
    assert "E0105" in codes(_rule(f"account.id in [{items}]"), folder)
    entries = ", ".join(f'"k{i}": {i}' for i in range(MAX_LITERAL_ITEMS + 1))
    assert "E0105" in codes(_rule(f'({{{entries}}}[account.id ?? ""] ?? 0) > 1'), folder)
    items = ", ".join(f'"a{i}"' for i in range(MAX_LITERAL_ITEMS))
    assert "E0105" not in codes(_rule(f"account.id in [{items}]"), folder)


def test_regex_literals_are_checked_at_lint_time(folder: Path) -> None:
    assert "E0206" in codes(_rule('request.prompt matches "' + "a" * 3000 + '"'), folder)  # too long
    assert "E0206" in codes(_rule('request.prompt matches "(a"'), folder)
    assert "E0206" in codes(_rule(r'request.prompt matches "(a)\\1"'), folder)  # backreference: not RE2
    # Catastrophic for backtracking engines, linear in RE2: accepted and compiled.
    assert "E0206" not in codes(_rule('request.prompt matches "(a*)*b"'), folder)


def test_many_comments_parse_in_linear_time(folder: Path) -> None:
    # Line numbers of comments were counted from the file start for each comment (quadratic).
    text = "# note\n" * 40_000 + _rule("true")
    assert "E0101" not in codes(text, folder)


@pytest.mark.parametrize("path", ["data/a\x00b.txt", "\x00", "a\\u0000b"])
def test_data_path_with_nul_is_a_diagnostic(folder: Path, path: str) -> None:
    # Found by the atheris harness: a NUL in a data path escaped the checker as ValueError.
    text = f'data names = strings("{path}")\n' + _rule("account.id in names")
    assert "E0214" in codes(text, folder)


def test_a_lone_carriage_return_ends_a_line_as_in_files(tmp_path: Path) -> None:
    """Found by atheris: a CR inside a comment. In memory the comment ran on past
    the CR; read back from a file (universal newlines) the CR ended the line and
    the rest became code. Both now read the CR as a line end."""
    text = '# Layer 3: cross\raccount coordination\nrule x {\r\n  deny when true\r  reason "r"\n}\n'
    front_end(text, tmp_path)
    module, diags = parse(text, "cr.policy")
    assert [d.code for d in diags] == ["E0101"]  # `account coordination` is code after the CR
    assert diags[0].line == 2
