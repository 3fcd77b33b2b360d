"""Decision logs off the box: batches shipped to an HTTP endpoint or to OTLP logs.

The decision log's writer thread formats each record once (the same masking as
the file: the prompt's fingerprint and length, its text only with
`decision_log_prompts`) and offers the formatted records to each shipper. A
shipper keeps them in a bounded queue (`max_queue`; past it, records are
dropped and counted, never waited for) and a thread of its own sends batches
of at most `batch` records. A batch that fails for a reason that may pass (the
receiver down, 5xx, 429, a timeout, gRPC UNAVAILABLE) is sent again after a
back-off that doubles from `backoff` up to `max_backoff` seconds, while new
records queue behind it; one the receiver refuses for good (another 4xx) is
dropped and counted. On shutdown a shipper has `close_timeout` seconds to send
what is left; the rest is counted as dropped.

    HttpShipper("https://logs.example/ingest")   POST application/x-ndjson, one JSON object a line
    OtlpLogShipper("http://collector:4317")      OTLP/gRPC logs: the JSON as the body, a few attributes
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from typing import Any

log = logging.getLogger("policy_engine.server")


class RetryableError(Exception):
    """The batch may go through later."""


class PermanentError(Exception):
    """The receiver refuses the batch: sending it again would not help."""


class Shipper:
    """A bounded queue and a sending thread; subclasses define `send(batch)`."""

    name = "shipper"

    def __init__(
        self,
        target: str,
        *,
        batch: int = 500,
        max_queue: int = 10_000,
        interval: float = 0.2,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        close_timeout: float = 5.0,
    ) -> None:
        self.target = target
        self.batch = batch
        self.max_queue = max_queue
        self.interval = interval
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.close_timeout = close_timeout
        self.shipped = 0
        self.dropped = 0
        self.retries = 0
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name=f"decision-log-{self.name}", daemon=True)
        self._thread.start()

    def offer(self, records: list[dict[str, Any]]) -> None:
        """From the decision log's writer: queue what fits, count the rest as dropped."""
        with self._lock:
            room = self.max_queue - len(self._queue)
            if room < len(records):
                self.dropped += len(records) - max(room, 0)
                records = records[: max(room, 0)]
            self._queue.extend(records)
        if len(self._queue) >= self.batch:
            self._wake.set()

    def counts(self) -> tuple[int, int, int]:
        """(shipped, dropped, retries)."""
        return self.shipped, self.dropped, self.retries

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(self.close_timeout + 1.0)
        with self._lock:
            left = len(self._queue)
            self._queue.clear()
            self.dropped += left
        if left:
            log.error("decision log: %d records not shipped to %s before shutdown", left, self.target)

    # -- the sending thread ---------------------------------------------------------
    def _drop(self, n: int) -> None:
        with self._lock:
            self.dropped += n

    def _take(self) -> list[dict[str, Any]]:
        with self._lock:
            n = min(self.batch, len(self._queue))
            return [self._queue.popleft() for _ in range(n)]

    def _run(self) -> None:
        deadline: float | None = None
        while True:
            if not self._stop.is_set():
                self._wake.wait(self.interval)
                self._wake.clear()
            elif deadline is None:
                deadline = time.monotonic() + self.close_timeout
            batch = self._take()
            while batch:
                if not self._ship(batch, deadline):
                    return
                batch = self._take()
            if self._stop.is_set():
                return

    def _ship(self, batch: list[dict[str, Any]], deadline: float | None) -> bool:
        """Send one batch, again and again while it may pass. False: shutdown ran out of time."""
        delay = self.backoff
        while True:
            try:
                self.send(batch)
            except PermanentError as e:
                self._drop(len(batch))
                log.error("decision log: %s refused %d records for good: %s", self.target, len(batch), e)
                return True
            except RetryableError as e:
                self.retries += 1
                if not self._failing:
                    self._failing = True
                    log.warning(
                        "decision log: cannot ship to %s (%s); retrying with back-off, records queue up to %d",
                        self.target,
                        e,
                        self.max_queue,
                    )
                if deadline is not None and time.monotonic() + delay > deadline:
                    self._drop(len(batch))
                    return False
                # a stop cuts the wait short, and then the deadline above applies
                if self._stop.wait(delay) and deadline is None:
                    deadline = time.monotonic() + self.close_timeout
                delay = min(delay * 2, self.max_backoff)
                continue
            self.shipped += len(batch)
            if self._failing:
                self._failing = False
                log.warning("decision log: shipping to %s works again", self.target)
            return True

    def send(self, batch: list[dict[str, Any]]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class HttpShipper(Shipper):
    """POST batches as newline-delimited JSON (what Vector, Fluent Bit, Loki's and most
    log pipelines' HTTP inputs take)."""

    name = "http"

    def __init__(self, url: str, *, timeout: float = 5.0, **kwargs: Any) -> None:
        self.timeout = timeout
        super().__init__(url, **kwargs)

    def send(self, batch: list[dict[str, Any]]) -> None:
        body = ("\n".join(json.dumps(r, separators=(",", ":"), default=str) for r in batch) + "\n").encode()
        req = urllib.request.Request(
            self.target, data=body, method="POST", headers={"content-type": "application/x-ndjson"}
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - a configured URL
                resp.read()
        except urllib.error.HTTPError as e:
            if e.code in (408, 429) or e.code >= 500:
                raise RetryableError(f"HTTP {e.code}") from None
            raise PermanentError(f"HTTP {e.code}") from None
        except (urllib.error.URLError, OSError) as e:
            raise RetryableError(str(getattr(e, "reason", e))) from None


class OtlpLogShipper(Shipper):
    """OTLP/gRPC logs (`http://host:4317` plaintext, `https://` TLS): one log record per
    decision, its body the JSON, the effect, api, request id and policy version as
    attributes. Needs the otel extra."""

    name = "otlp"

    def __init__(
        self, endpoint: str, *, service_name: str = "policy-engine", timeout: float = 5.0, **kwargs: Any
    ) -> None:
        import grpc
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as ls
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as ls_grpc
        from opentelemetry.proto.common.v1 import common_pb2
        from opentelemetry.proto.logs.v1 import logs_pb2

        self._grpc, self._ls, self._common, self._logs = grpc, ls, common_pb2, logs_pb2
        host = endpoint.split("://", 1)[1].rstrip("/")
        self._channel = (
            grpc.secure_channel(host, grpc.ssl_channel_credentials())
            if endpoint.startswith("https://")
            else grpc.insecure_channel(host)
        )
        self._stub = ls_grpc.LogsServiceStub(self._channel)
        self.service_name = service_name
        self.timeout = timeout
        super().__init__(endpoint, **kwargs)

    def _request(self, batch: list[dict[str, Any]]) -> Any:
        c, lg = self._common, self._logs
        records = []
        for r in batch:
            attrs = [
                c.KeyValue(key=f"policy_engine.{k}", value=c.AnyValue(string_value=str(r[k])))
                for k in ("effect", "api", "request_id", "policy_version")
                if r.get(k) is not None
            ]
            records.append(
                lg.LogRecord(
                    time_unix_nano=int(float(r.get("ts", time.time())) * 1e9),
                    severity_text="INFO",
                    severity_number=lg.SEVERITY_NUMBER_INFO,
                    event_name="policy_engine.decision",
                    body=c.AnyValue(string_value=json.dumps(r, separators=(",", ":"), default=str)),
                    attributes=attrs,
                )
            )
        resource = self._resource()
        scope = lg.ScopeLogs(scope=c.InstrumentationScope(name="policy_engine.decisions"), log_records=records)
        return self._ls.ExportLogsServiceRequest(resource_logs=[lg.ResourceLogs(resource=resource, scope_logs=[scope])])

    def _resource(self) -> Any:
        from opentelemetry.proto.resource.v1 import resource_pb2

        c = self._common
        return resource_pb2.Resource(
            attributes=[c.KeyValue(key="service.name", value=c.AnyValue(string_value=self.service_name))]
        )

    def send(self, batch: list[dict[str, Any]]) -> None:
        grpc = self._grpc
        try:
            self._stub.Export(self._request(batch), timeout=self.timeout)
        except grpc.RpcError as e:
            code = e.code()
            retry = {
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                grpc.StatusCode.ABORTED,
                grpc.StatusCode.CANCELLED,
                grpc.StatusCode.INTERNAL,
            }
            err = f"{code.name}: {e.details()}"
            raise (RetryableError(err) if code in retry else PermanentError(err)) from None

    def close(self) -> None:
        super().close()
        self._channel.close()
