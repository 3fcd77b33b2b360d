"""Usage from proxies' JSON access logs: the three shapes, and following a file that grows, rotates and is cut."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from policy_engine.ingress.usage import Usage, UsageHeaders, usage_block, usage_from_json, usage_from_log
from policy_engine.server.usage_logs import MAX_LINE, LogFollower, UsageLogs

NGINX = {"request_id": "pe-1", "prompt_tokens": "7", "completion_tokens": "300"}
CADDY = {
    "level": "info",
    "msg": "handled request",
    "policy_request_id": "pe-2",
    "resp_headers": {"X-Usage-Prompt-Tokens": ["7"], "X-Usage-Completion-Tokens": ["300"]},
}
TRAEFIK = {
    "request_X-Request-Id": "pe-3",
    "origin_X-Usage-Prompt-Tokens": "7",
    "origin_X-Usage-Completion-Tokens": "300",
    "downstream_X-Usage-Prompt-Tokens": "7",
}


def test_each_proxys_shape() -> None:
    for doc, rid in ((NGINX, "pe-1"), (CADDY, "pe-2"), (TRAEFIK, "pe-3")):
        found = usage_from_log(doc)
        assert found is not None and (found.request_id, found.usage) == (rid, Usage(7, 300))


def test_entries_without_an_id_or_usage_are_skipped() -> None:
    assert usage_from_log({**NGINX, "request_id": ""}) is None
    assert usage_from_log({**NGINX, "request_id": "-"}) is None  # nginx's empty variable
    assert usage_from_log({"request_id": "pe-1", "prompt_tokens": "", "completion_tokens": ""}) is None
    assert usage_from_log(["not", "an", "object"]) is None
    partial = usage_from_log({"request_id": "pe-1", "completion_tokens": "12"})
    assert partial is not None and partial.usage == Usage(None, 12)


def test_header_names_are_configurable_and_caseless() -> None:
    doc = {"request_id": "pe-1", "resp_headers": {"X-Tokens-In": ["4"], "x-tokens-out": ["5"]}}
    found = usage_from_log(doc, UsageHeaders("x-tokens-in", "X-TOKENS-OUT"))
    assert found is not None and found.usage == Usage(4, 5)


def test_token_classes_and_the_model_in_each_proxys_shape() -> None:
    classes = {"cached_input_tokens": "5", "reasoning_tokens": "200", "model": "frontier-large-2026-06"}
    nginx = {**NGINX, **classes}
    caddy = {
        **CADDY,
        "resp_headers": {
            **CADDY["resp_headers"],  # type: ignore[dict-item]
            "X-Usage-Cached-Input-Tokens": ["5"],
            "X-Usage-Reasoning-Tokens": ["200"],
            "X-Usage-Model": ["frontier-large-2026-06"],
        },
    }
    traefik = {
        **TRAEFIK,
        "origin_X-Usage-Cached-Input-Tokens": "5",
        "origin_X-Usage-Reasoning-Tokens": "200",
        "origin_X-Usage-Model": "frontier-large-2026-06",
    }
    for doc in (nginx, caddy, traefik):
        found = usage_from_log(doc)
        assert found is not None and found.usage == Usage(7, 300, 5, 200, "frontier-large-2026-06")
    # A model alone is no usage; a bad count is none.
    assert usage_from_log({"request_id": "pe-1", "model": "m"}) is None
    bad = usage_from_log({"request_id": "pe-1", "completion_tokens": "3", "reasoning_tokens": "-1", "model": "-"})
    assert bad is not None and bad.usage == Usage(None, 3)


def test_json_usage_blocks_of_each_api() -> None:
    chat = {
        "model": "frontier-large-2026-06",
        "usage": {
            "prompt_tokens": 1000,
            "completion_tokens": 500,
            "prompt_tokens_details": {"cached_tokens": 800},
            "completion_tokens_details": {"reasoning_tokens": 300},
        },
    }
    assert usage_from_json(chat) == Usage(1000, 500, 800, 300, "frontier-large-2026-06")
    responses = {
        "model": "m",
        "usage": {
            "input_tokens": 1000,
            "output_tokens": 500,
            "input_tokens_details": {"cached_tokens": 800},
            "output_tokens_details": {"reasoning_tokens": 300},
        },
    }
    assert usage_from_json(responses) == Usage(1000, 500, 800, 300, "m")
    # Anthropic counts cache reads and writes apart from input_tokens: totals mean one thing here.
    anthropic = {
        "model": "c",
        "usage": {
            "input_tokens": 100,
            "cache_read_input_tokens": 800,
            "cache_creation_input_tokens": 100,
            "output_tokens": 50,
        },
    }
    assert usage_from_json(anthropic) == Usage(1000, 50, 800, None, "c")
    flat = {"prompt_tokens": 3, "cached_input_tokens": 1, "reasoning_tokens": 2, "model": "x" * 300}
    assert usage_block(flat) == Usage(3, None, 1, 2, None)  # a 300-character model is no model name


def test_follower_reads_appended_lines_from_where_it_started(tmp_path: Path) -> None:
    log = tmp_path / "access.jsonl"
    log.write_text(json.dumps(NGINX) + "\n")  # before the engine started: not replayed
    f = LogFollower(log)
    assert asyncio.run(f.poll()) == []
    with log.open("a") as out:
        out.write(json.dumps(CADDY) + "\n" + '{"half": ')
    assert [json.loads(x) for x in asyncio.run(f.poll())] == [CADDY]
    with log.open("a") as out:
        out.write('"line"}\n')
    assert [json.loads(x) for x in asyncio.run(f.poll())] == [{"half": "line"}]


def test_follower_follows_rotation_truncation_and_a_file_that_appears_later(tmp_path: Path) -> None:
    log = tmp_path / "access.jsonl"
    f = LogFollower(log)  # not there yet: read from its start when it appears
    log.write_text("a\n")
    assert asyncio.run(f.poll()) == [b"a"]
    log.rename(tmp_path / "access.jsonl.1")
    log.write_text("b\n")  # a new file under the name
    assert asyncio.run(f.poll()) == [b"b"]
    log.write_text("")  # truncated in place (seen as a size below the offset)
    assert asyncio.run(f.poll()) == []
    log.write_text("c\n")
    assert asyncio.run(f.poll()) == [b"c"]


def test_an_over_long_line_is_dropped_whole(tmp_path: Path) -> None:
    log = tmp_path / "access.jsonl"
    log.write_text("")
    f = LogFollower(log, max_read=1024)
    with log.open("a") as out:
        out.write("x" * (MAX_LINE + 10) + "\nok\n")
    got: list[bytes] = []
    for _ in range(200):
        got += asyncio.run(f.poll())
    assert got == [b"ok"]


def test_usage_logs_report_each_line(tmp_path: Path) -> None:
    log = tmp_path / "access.jsonl"
    log.write_text("")
    reported: list[tuple[str, int | None, int | None]] = []

    async def report(rid: str, usage: Usage) -> bool:
        reported.append((rid, usage.prompt_tokens, usage.completion_tokens))
        return rid != "pe-3"

    async def run() -> UsageLogs:
        logs = UsageLogs([log], report, poll_seconds=0.01)
        logs.start()
        with log.open("a") as out:
            for doc in (NGINX, {"no": "usage"}, CADDY, TRAEFIK):
                out.write(json.dumps(doc) + "\n")
            out.write("not json\n")
        for _ in range(500):
            if logs.skipped + len(reported) >= 5:
                break
            await asyncio.sleep(0.01)
        await logs.close()
        return logs

    logs = asyncio.run(run())
    assert reported == [("pe-1", 7, 300), ("pe-2", 7, 300), ("pe-3", 7, 300)]
    assert (logs.applied, logs.skipped) == (2, 2)
