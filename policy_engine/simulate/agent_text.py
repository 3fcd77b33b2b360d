"""Text of coding-agent sessions: tool system prompts and growing transcripts.

Every user of one agent tool sends the tool's system prompt, byte for byte,
then the conversation: the task, then assistant tool calls and tool results,
growing with each step until the tool compacts it into a summary. A gateway
reads only the head of a large body, so a request's text is the first
`PROMPT_CHAR_CAP` characters of its prompt and `context_tokens` counts all of
it (see docs/simulation.md).
"""

from __future__ import annotations

import json
import random

from policy_engine.simulate.prompts import CODE_LANGS, CODE_LINES

PROMPT_CHAR_CAP = 4000  # what the simulated gateway reads of a prompt (its body limit)

AGENT_TOOLS: tuple[str, ...] = ("forge", "pairpilot", "codewright", "termcoder", "patchbot", "shipwright")

_TOOL_DEFS = (
    (
        "read_file",
        "Read a file from the workspace.",
        {"path": "string", "start_line": "integer", "end_line": "integer"},
    ),
    ("write_file", "Create or overwrite a file.", {"path": "string", "content": "string"}),
    ("edit_file", "Replace an exact snippet in a file.", {"path": "string", "old": "string", "new": "string"}),
    (
        "run_command",
        "Run a shell command in the workspace and return its output.",
        {"command": "string", "timeout_s": "integer"},
    ),
    ("search", "Search the repository with a regular expression.", {"pattern": "string", "glob": "string"}),
    ("list_dir", "List a directory.", {"path": "string"}),
    ("run_tests", "Run the project's tests, optionally filtered.", {"filter": "string"}),
    ("web_fetch", "Fetch a URL and return its text.", {"url": "string"}),
)
_RULES = (
    "Make the smallest change that solves the task.",
    "Never commit secrets.",
    "Prefer editing over rewriting files.",
    "Run the tests after every change.",
    "Ask before deleting files.",
    "Keep the user's code style.",
    "Explain what you changed in one short paragraph at the end.",
    "Do not invent APIs; read the code first.",
    "Stop and ask if the task is ambiguous.",
    "Use the search tool before reading whole directories.",
)


def tool_system_prompt(tool: str) -> str:
    """The system prompt an agent tool sends with every request (fixed per tool)."""
    rng = random.Random(f"agent-tool|{tool}")  # the same text in every world: it is the tool's
    tools = rng.sample(_TOOL_DEFS, rng.randint(5, len(_TOOL_DEFS)))
    defs = [
        {
            "name": n,
            "description": d,
            "parameters": {"type": "object", "properties": {k: {"type": t} for k, t in props.items()}},
        }
        for n, d, props in tools
    ]
    rules = "\n".join(f"- {r}" for r in rng.sample(_RULES, 6))
    return (
        f"system: You are {tool.capitalize()}, an autonomous coding agent working in the user's repository. "
        'You can call tools by answering with a JSON object {"tool": NAME, "arguments": {...}}. '
        f"Think before each call.\nRules:\n{rules}\nTools:\n{json.dumps(defs, indent=1)}\n"
    )


_REPOS = (
    "payments-service",
    "web-frontend",
    "ml-pipeline",
    "cli-tool",
    "infra-terraform",
    "mobile-app",
    "data-warehouse",
    "auth-gateway",
    "search-indexer",
    "billing-worker",
)
_FEATURES = (
    "add retry with exponential backoff to the HTTP client",
    "fix the flaky test in tests/test_scheduler.py",
    "migrate the settings module from dicts to pydantic models",
    "add pagination to the /orders endpoint",
    "upgrade the ORM to the next major version and fix the deprecations",
    "add a dark mode toggle",
    "write unit tests for the invoice parser",
    "find out why memory grows during the nightly import",
    "rename the `user_id` column to `account_id` everywhere",
    "add structured logging to the worker",
    "port the bash deploy script to Python",
    "implement CSV export for the reports page",
)
_PATHS = (
    "src/{m}/client.py",
    "src/{m}/models.py",
    "tests/test_{m}.py",
    "app/{m}/views.ts",
    "lib/{m}.go",
    "src/{m}/handlers.rs",
    "config/{m}.yaml",
    "README.md",
)
_MODULES = ("orders", "billing", "auth", "search", "scheduler", "reports", "export", "settings", "http")
_OUTPUTS = (
    "===== 142 passed, 1 failed in 8.31s =====\nFAILED tests/test_{m}.py::test_retry - AssertionError: 3 != 4",
    'Traceback (most recent call last):\n  File "src/{m}/client.py", line {k}, in send\nTimeoutError',
    "src/{m}/models.py:{k}:5: error: Incompatible types in assignment",
    "{k} files changed, {k2} insertions(+), {k3} deletions(-)",
    "ok  \tgithub.com/acme/{m}\t0.{k}s",
)


def session_task(rng: random.Random) -> str:
    return f"user: In the {rng.choice(_REPOS)} repo, {rng.choice(_FEATURES)}. {rng.choice(CODE_LANGS)} codebase."


def transcript(rng: random.Random, head: str, chars: int) -> str:
    """`head` (system prompt and task) followed by agent steps, at least `chars` long
    or until the cap: what the gateway reads of a session's later requests."""
    parts = [head]
    size = len(head)
    target = min(chars, PROMPT_CHAR_CAP)
    while size < target:
        m = rng.choice(_MODULES)
        path = rng.choice(_PATHS).format(m=m)
        call = json.dumps(
            {"tool": rng.choice(("read_file", "run_command", "search", "edit_file")), "arguments": {"path": path}}
        )
        out = rng.choice(_OUTPUTS).format(m=m, k=rng.randint(10, 400), k2=rng.randint(1, 90), k3=rng.randint(1, 40))
        step = f"assistant: Let me look at {path}.\n{call}\ntool: {out}\n{rng.choice(CODE_LINES)}\n"
        parts.append(step)
        size += len(step)
    return "".join(parts)[:PROMPT_CHAR_CAP]


def compaction_head(rng: random.Random, system: str) -> str:
    """The head after the tool compacted a long context: system prompt and a summary."""
    return (
        system + "user: Summary of the conversation so far: we are working on "
        f"{rng.choice(_FEATURES)}; {rng.randint(2, 9)} files changed, tests {rng.choice(('pass', 'fail'))}. "
        "Continue from where you left off.\n"
    )


# Distillation dressed as agent sessions: a catalogue of self-contained tasks,
# swept in order, each asking for complete code.
_CAMPAIGN_TASKS = (
    "implement {thing} from scratch with full test coverage",
    "write the complete {thing} module, production quality, with docstrings",
    "re-implement {thing} without third-party libraries and explain every design decision",
    "solve the following task end to end and show your full reasoning: {thing}",
)
_THINGS = (
    "a B-tree with range queries",
    "a Raft consensus node",
    "a regex engine with backtracking",
    "an HTTP/1.1 server",
    "a SQL query planner for joins",
    "a JSON parser with error recovery",
    "a garbage collector for a toy VM",
    "a compiler front end for a C subset",
    "a vector database with HNSW",
    "a rate limiter service",
    "a distributed task queue",
    "a CRDT text editor",
    "a ray tracer",
    "a chess engine with alpha-beta search",
    "an LSM-tree storage engine",
    "a TLS handshake parser",
)


def campaign_task(rng: random.Random, k: int) -> str:
    thing = _THINGS[k % len(_THINGS)]
    return (
        f"user: In the {rng.choice(_REPOS)} repo, "
        f"{_CAMPAIGN_TASKS[(k // len(_THINGS)) % len(_CAMPAIGN_TASKS)].format(thing=thing)}. "
        f"{rng.choice(CODE_LANGS)} codebase."
    )
