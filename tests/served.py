"""`policyctl serve` as a real process on a loopback port, output captured to a file.

Shared by the server tests (`process_harness`) and the reliability suite
(`rel_harness`); importable from any test since `tests/` is on the path.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

POLICYCTL = [sys.executable, "-m", "policy_engine.cli.main"]


class Served:
    def __init__(
        self,
        args: list[str],
        port: int,
        log: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.port, self.log = port, log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                [*POLICYCTL, "serve", "--port", str(port), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
                cwd=cwd,
            )

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30.0) -> Served:
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
                        return self
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        raise AssertionError(f"server not ready in {timeout}s:\n{self.log.read_text()}")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise
