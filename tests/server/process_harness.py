"""`policyctl serve` as a real process on a free loopback port: the `serve` fixture.

Imported by the tests that run the command (fixtures included):
`from process_harness import serve, Served`.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from policy_engine.server.app import free_port

POLICYCTL = [sys.executable, "-m", "policy_engine.cli.main"]
ACCOUNT = {"age_days": 30, "verification": "kyc", "tier": "pro"}


def ctx(account: str) -> dict[str, Any]:
    return {"account": {**ACCOUNT, "id": account}, "request": {"model": "m", "prompt": "hello"}}


class Served:
    def __init__(self, proc: subprocess.Popen[str], port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.target) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log.read_text()}")
                try:
                    if (
                        stub.Check(health_pb2.HealthCheckRequest(), timeout=0.5).status
                        == health_pb2.HealthCheckResponse.SERVING
                    ):
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        raise AssertionError(f"server not ready in {timeout}s:\n{self.log.read_text()}")

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    started: list[Served] = []

    def start(*args: str, wait: bool = True) -> Served:
        port = free_port("127.0.0.1")
        log = tmp_path / f"serve-{port}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [*POLICYCTL, "serve", "--port", str(port), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=tmp_path,
            )
        s = Served(proc, port, log)
        started.append(s)
        if wait:
            s.wait_ready()
        return s

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(10)
