"""Decision logs shipped off the box, through the real server, to receivers started here
that fail and recover: an HTTP endpoint (newline-delimited JSON) and an OTLP/gRPC logs
receiver. Batches are retried with back-off, the queue is bounded and its drops
counted, and the records are masked as the file is (no prompt text unless asked)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from collections.abc import Callable

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as ls
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as ls_grpc

from policy_engine.client import PolicyClient
from server_harness import ServerThread

SECRET = "the secret prompt text"
ACCOUNT = {"id": "acct-s", "age_days": 30, "verification": "kyc", "tier": "pro"}


class Receiver:
    """An HTTP log endpoint: answers `status` (200 when healthy) and keeps what it accepted."""

    def __init__(self) -> None:
        self.status = 200
        self.lines: list[dict[str, Any]] = []
        self.attempts = 0
        self.content_types: set[str] = set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.attempts += 1
                outer.content_types.add(self.headers["content-type"])
                if outer.status == 200:
                    outer.lines += [json.loads(x) for x in body.decode().splitlines()]
                self.send_response(outer.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/ingest"

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _wait(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _checks(st: ServerThread, n: int, prefix: str) -> None:
    with PolicyClient(st.target, timeout=5) as pe:
        for i in range(n):
            pe.check(
                {
                    "account": {**ACCOUNT, "id": f"acct-{i}"},
                    "request": {"id": f"{prefix}-{i}", "model": "m", "prompt": SECRET},
                }
            )


def _metric(st: ServerThread, name: str) -> float:
    assert st.app is not None
    text = st.app.metrics.render().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def test_http_receiver_fails_then_recovers(start_server: Callable[..., ServerThread], receiver: Receiver) -> None:
    receiver.status = 503
    st = start_server(decision_log_http=receiver.url, decision_log_batch=7)
    _checks(st, 20, "h")
    _wait(lambda: receiver.attempts >= 3, "the shipper retries")
    assert receiver.lines == []
    receiver.status = 200
    _wait(lambda: len(receiver.lines) == 20, f"every record arrives ({len(receiver.lines)})")
    assert sorted(x["request_id"] for x in receiver.lines) == sorted(f"h-{i}" for i in range(20))  # once each
    assert receiver.content_types == {"application/x-ndjson"}
    first = receiver.lines[0]
    assert first["request"]["prompt_length"] == len(SECRET) and "prompt" not in first["request"]
    assert SECRET not in json.dumps(receiver.lines)  # the file's masking
    assert _metric(st, 'policy_engine_decision_log_shipped_total{sink="http"}') == 20
    assert _metric(st, 'policy_engine_decision_log_ship_retries_total{sink="http"}') >= 2
    assert _metric(st, 'policy_engine_decision_log_ship_dropped_total{sink="http"}') == 0
    _checks(st, 3, "late")
    st.stop()  # shutdown ships what is still queued
    assert {f"late-{i}" for i in range(3)} <= {x["request_id"] for x in receiver.lines}


def test_bounded_queue_counts_drops(start_server: Callable[..., ServerThread], receiver: Receiver) -> None:
    receiver.status = 503
    st = start_server(decision_log_http=receiver.url, decision_log_ship_queue=5, decision_log_batch=5)
    _checks(st, 30, "q")
    _wait(
        lambda: _metric(st, 'policy_engine_decision_log_ship_dropped_total{sink="http"}') >= 20,
        "records past the queue are dropped and counted",
    )
    receiver.status = 200
    _wait(lambda: _metric(st, 'policy_engine_decision_log_shipped_total{sink="http"}') > 0, "the rest is shipped")
    st.stop()
    shipped = len(receiver.lines)
    assert 0 < shipped <= 10  # at most one batch in flight and a full queue
    assert len({x["request_id"] for x in receiver.lines}) == shipped


def test_a_refusal_is_dropped_not_retried(start_server: Callable[..., ServerThread], receiver: Receiver) -> None:
    receiver.status = 400
    st = start_server(decision_log_http=receiver.url, decision_log_batch=50)
    _checks(st, 4, "r")
    _wait(lambda: _metric(st, 'policy_engine_decision_log_ship_dropped_total{sink="http"}') == 4, "dropped")
    assert receiver.attempts == 1 and _metric(st, 'policy_engine_decision_log_ship_retries_total{sink="http"}') == 0


class LogsReceiver(ls_grpc.LogsServiceServicer):
    def __init__(self) -> None:
        self.unavailable = 2  # refuse the first exports
        self.records: list[Any] = []
        self.resources: list[Any] = []

    def Export(self, request: ls.ExportLogsServiceRequest, context: Any) -> ls.ExportLogsServiceResponse:
        if self.unavailable:
            self.unavailable -= 1
            context.abort(grpc.StatusCode.UNAVAILABLE, "collector restarting")
        for rl in request.resource_logs:
            self.resources.append(rl.resource)
            for sl in rl.scope_logs:
                self.records.extend(sl.log_records)
        return ls.ExportLogsServiceResponse()


def test_otlp_logs_receiver_fails_then_recovers(start_server: Callable[..., ServerThread]) -> None:
    logs = LogsReceiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    ls_grpc.add_LogsServiceServicer_to_server(logs, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        st = start_server(decision_log_otlp=f"http://127.0.0.1:{port}", decision_log_prompts=True, decision_log_batch=4)
        _checks(st, 10, "o")
        _wait(lambda: len(logs.records) == 10, f"every record arrives ({len(logs.records)})")
        assert _metric(st, 'policy_engine_decision_log_ship_retries_total{sink="otlp"}') >= 2
        st.stop()
    finally:
        server.stop(0)
    bodies = [json.loads(r.body.string_value) for r in logs.records]
    assert sorted(b["request_id"] for b in bodies) == sorted(f"o-{i}" for i in range(10))
    assert all(b["request"]["prompt"] == SECRET for b in bodies)  # asked for with decision_log_prompts
    attrs = {kv.key: kv.value.string_value for kv in logs.records[0].attributes}
    assert attrs["policy_engine.effect"] == "allow" and attrs["policy_engine.api"] == "check"
    assert logs.records[0].time_unix_nano > 1_700_000_000 * 10**9
    assert logs.resources[0].attributes[0].value.string_value == "policy-engine"


def test_metrics_are_served(start_server: Callable[..., ServerThread], receiver: Receiver) -> None:
    st = start_server(decision_log_http=receiver.url, metrics_port=0)
    _checks(st, 2, "m")
    _wait(lambda: len(receiver.lines) == 2, "shipped")
    assert st.app is not None and st.app.metrics_port
    text = urllib.request.urlopen(f"http://127.0.0.1:{st.app.metrics_port}/metrics", timeout=5).read().decode()
    assert 'policy_engine_decision_log_shipped_total{sink="http"} 2.0' in text
