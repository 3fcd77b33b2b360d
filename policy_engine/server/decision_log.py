"""The decision log: one JSON line per decision, written off the request path.

`submit` appends a tuple of references (no formatting, no I/O) to a bounded
deque, or counts a drop when the writer has fallen behind: a decision is never
delayed by its log record. A writer thread wakes every `flush_interval`,
formats the pending records (prompt fingerprint and length; the prompt text
only when configured) and writes them with one call.
"""

from __future__ import annotations

import collections
import json
import logging
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

from policy_engine.context import Context
from policy_engine.decision import Decision
from policy_engine.server.log_shipping import Shipper
from policy_engine.signals.prompt import fingerprint

log = logging.getLogger("policy_engine.server")

# (unix time, api, context, decision, server-side seconds)
Record = tuple[float, str, Context, Decision, float]


class DecisionLog:
    """`target`: a file, "-" (standard output) or None (only shippers); `shippers`: where
    formatted records also go (server/log_shipping.py), each with its own queue."""

    def __init__(
        self,
        target: str | None,
        *,
        max_pending: int = 10_000,
        include_prompt: bool = False,
        flush_interval: float = 0.05,
        shippers: Sequence[Shipper] = (),
    ) -> None:
        self.target = target
        self.max_pending = max_pending
        self.include_prompt = include_prompt
        self.flush_interval = flush_interval
        self.shippers = list(shippers)
        self.dropped = 0
        self.written = 0
        self._pending: collections.deque[Record] = collections.deque()
        self._stop = threading.Event()
        self._out: IO[str] | None = (
            None if target is None else sys.stdout if target == "-" else open(target, "a", encoding="utf-8")
        )  # noqa: SIM115
        self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
        self._thread.start()

    def submit(self, api: str, ctx: Context, decision: Decision, seconds: float) -> None:
        """Called on the event loop for every decision: O(1), never blocks."""
        if len(self._pending) >= self.max_pending:
            self.dropped += 1
            return
        self._pending.append((time.time(), api, ctx, decision, seconds))

    def counts(self) -> tuple[int, int]:
        return self.dropped, self.written

    def close(self, timeout: float = 5.0) -> None:
        """Write what is pending, then stop the writer."""
        self._stop.set()
        self._thread.join(timeout)
        for shipper in self.shippers:
            shipper.close()
        if self._out is not None and self._out is not sys.stdout:
            try:
                self._out.close()
            except OSError as e:  # a full disk fails the final flush too; shutdown goes on
                log.error("decision log: cannot flush %s on close: %s", self.target, e)

    # -- writer thread ----------------------------------------------------------
    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(self.flush_interval)
            self._drain()
            if stopping:
                return

    def _drain(self) -> None:
        pending = self._pending
        lines = []
        records = []
        while pending:
            rec = pending.popleft()
            try:
                formatted = self.format(rec)
                lines.append(json.dumps(formatted, separators=(",", ":"), default=str))
                records.append(formatted)
            except Exception:  # noqa: BLE001 - one odd record must not stop the log
                log.exception("decision log: cannot format a record")
        if not lines:
            return
        for shipper in self.shippers:
            shipper.offer(records)
        if self._out is None:
            self.written += len(lines)
            return
        try:
            self._out.write("\n".join(lines) + "\n")
            self._out.flush()
            self.written += len(lines)
        except OSError as e:
            self.dropped += len(lines)
            log.error("decision log: cannot write to %s: %s", self.target, e)

    def format(self, rec: Record) -> dict[str, Any]:
        ts, api, c, d, seconds = rec
        out: dict[str, Any] = {"ts": round(ts, 6), "api": api, **d.head()}
        if d.shadow:  # what each would have done, not only its name: a shadow deny is not an allow
            del out["shadow_rules"]
            out["shadow"] = [m.to_dict() for m in d.shadow]
        if d.limits:
            out["limits"] = [
                {
                    "limit": s.limit,
                    "key": s.key,
                    "used": s.used,
                    "max": s.max,
                    "remaining": s.remaining,
                    "over": s.over,
                    **({"error": s.error} if s.error else {}),
                }
                for s in d.limits
            ]
        if d.measures:
            out["measures"] = [m.to_dict() for m in d.measures]
        out["policy_version"] = d.policy_version
        out["latency_us"] = round(seconds * 1e6, 1)
        out["account"] = {"id": c.account_id, "org": c.account_org, "tier": c.account_tier}
        out["api_key"] = {"id": c.api_key_id}
        out["client"] = {"ip": c.client_ip, "country": c.client_country, "asn": c.client_asn}
        req: dict[str, Any] = {
            "model": c.request_model,
            "max_tokens": c.request_max_tokens,
            "prompt_tokens": c.request_prompt_tokens,
        }
        prompt = c.request_prompt
        if prompt is not None:
            req["prompt_fingerprint"] = fingerprint(prompt)
            req["prompt_length"] = len(prompt)
            if self.include_prompt:
                req["prompt"] = prompt
        out["request"] = req
        return out
