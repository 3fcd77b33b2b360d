"""`policyctl serve` as a real process on a free loopback port: the `serve` fixture.

Imported by the tests that run the command (fixtures included):
`from process_harness import serve` (the process: `served.Served`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from policy_engine.server.app import free_port
from served import Served

ACCOUNT = {"age_days": 30, "verification": "kyc", "tier": "pro"}


def ctx(account: str) -> dict[str, Any]:
    return {"account": {**ACCOUNT, "id": account}, "request": {"model": "m", "prompt": "hello"}}


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    started: list[Served] = []

    def start(*args: str, wait: bool = True) -> Served:
        port = free_port("127.0.0.1")
        log = tmp_path / f"serve-{port}.log"
        s = Served(list(args), port, log, cwd=tmp_path)
        started.append(s)
        if wait:
            s.wait_ready()
        return s

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(10)
