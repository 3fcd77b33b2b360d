"""Prometheus metrics, served on their own port (loopback by default).

The request path only bumps plain ints in dicts and lists (one event loop, no
locks, no label lookups); a collector turns them into Prometheus families when
/metrics is scraped. Reads from the scrape thread may see one decision counted
in a histogram bucket a moment before its sum: harmless for monitoring.

    policy_engine_decisions_total{api, effect}
    policy_engine_rule_matches_total{rule}              enforced rules and limits that matched
    policy_engine_shadow_matches_total{rule}
    policy_engine_decision_seconds{api}                 histogram of the server-side time per call
    policy_engine_store_errors_total                    limit-store failures (fail mode applied)
    policy_engine_fail_open_decisions_total             requests admitted while a limit could not be checked
    policy_engine_store_up                              1 while the limit store answers (0 failing)
    policy_engine_store_outages_total                   times the store went from answering to failing
    policy_engine_invalid_requests_total{api}
    policy_engine_reloads_total{result}                 ok | error | unchanged
    policy_engine_policy_info{version}                  1 for the serving version
    policy_engine_last_reload_error                     1 while the last reload failed
    policy_engine_decision_log_dropped_total            records dropped because the log queue was full
    policy_engine_decision_log_written_total
    policy_engine_decision_log_shipped_total{sink}       records shipped off the box (http, otlp)
    policy_engine_decision_log_ship_dropped_total{sink}  records a destination never got (queue full, refused)
    policy_engine_decision_log_ship_retries_total{sink}  batches sent again after a failure

With local-first limits (`--store-sync batched:<N>ms`), the rounds with the shared store:

    policy_engine_local_first_rounds_total{result}      ok | failed (Redis did not answer)
    policy_engine_local_first_keys_sent_total           keys whose changes a round sent and pulled back
    policy_engine_local_first_dropped_keys_total        pending changes dropped in an outage (max_pending_keys)
    policy_engine_local_first_pending_keys              keys with changes not sent yet
    policy_engine_local_first_last_round_seconds        how long the last successful round took
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from policy_engine.decision import ShadowMatch
from policy_engine.state.local_first import LocalFirstStore

# Seconds; a Check takes ~100 us in-process, a store round trip a few hundred.
BUCKETS: tuple[float, ...] = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)


class _Histogram:
    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # last one is +Inf
        self.sum = 0.0


class Metrics:
    def __init__(self, policy_version: str = "") -> None:
        self.decisions: dict[tuple[str, str], int] = {}
        self.rules: dict[str, int] = {}
        self.shadow: dict[str, int] = {}
        self.latency: dict[str, _Histogram] = {}
        self.store_errors = 0
        self.fail_open_decisions = 0
        # Filled in by the server: () -> (up, outages) of the limit store.
        self.store_state: Callable[[], tuple[bool, int]] | None = None
        self.invalid: dict[str, int] = {}
        self.reloads: dict[str, int] = {"ok": 0, "error": 0, "unchanged": 0}
        self.policy_version = policy_version  # the initial load is not a reload: no count
        self.last_reload_failed = False
        # Filled in by the server: () -> (dropped, written) of the decision log.
        self.decision_log_counts: Callable[[], tuple[int, int]] | None = None
        # () -> {sink: (shipped, dropped, retries)} of the decision-log shippers.
        self.decision_log_sinks: Callable[[], dict[str, tuple[int, int, int]]] | None = None
        self.local_first: LocalFirstStore | None = None  # its round statistics, when local-first
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        self._http: Any = None

    # -- request path ---------------------------------------------------------
    def observe(
        self, api: str, effect: str, rules: list[str], shadow: Sequence[ShadowMatch], store_errors: int, seconds: float
    ) -> None:
        key = (api, effect)
        d = self.decisions
        d[key] = d.get(key, 0) + 1
        if rules:
            r = self.rules
            for rule in rules:
                r[rule] = r.get(rule, 0) + 1
        if shadow:
            s = self.shadow
            for m in shadow:
                s[m.rule] = s.get(m.rule, 0) + 1
        if store_errors:
            self.store_errors += store_errors
        h = self.latency.get(api)
        if h is None:
            h = self.latency[api] = _Histogram()
        h.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        h.sum += seconds

    def invalid_request(self, api: str) -> None:
        self.invalid[api] = self.invalid.get(api, 0) + 1

    # -- reloads ----------------------------------------------------------------
    def reloaded(self, result: str, version: str) -> None:
        self.reloads[result] = self.reloads.get(result, 0) + 1
        self.policy_version = version
        self.last_reload_failed = result == "error"

    # -- exposition -------------------------------------------------------------
    def serve(self, host: str, port: int) -> int:
        """Start the /metrics HTTP server in a daemon thread; returns the bound port."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        self._http = (server, thread)
        return int(server.server_address[1])

    def close(self) -> None:
        if self._http is not None:
            server, thread = self._http
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            self._http = None

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _Collector(Collector):
    def __init__(self, m: Metrics) -> None:
        self.m = m
        self._lock = threading.Lock()  # one scrape at a time

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            yield from self._families()

    def _families(self) -> Iterable[Metric]:
        m = self.m
        yield _counter("policy_engine_decisions", "Decisions by API and effect.", ["api", "effect"], m.decisions)
        yield _counter("policy_engine_rule_matches", "Enforced rules and limits that matched.", ["rule"], m.rules)
        yield _counter("policy_engine_shadow_matches", "Shadow rules and limits that matched.", ["rule"], m.shadow)
        hist = HistogramMetricFamily("policy_engine_decision_seconds", "Server-side time per decision.", labels=["api"])
        for api, h in list(m.latency.items()):
            counts = list(h.counts)
            cumulative, buckets = 0, []
            for bound, n in zip((*BUCKETS, float("inf")), counts):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            hist.add_metric([api], buckets, h.sum)
        yield hist
        yield CounterMetricFamily(
            "policy_engine_store_errors", "Limit-store failures (fail mode applied).", value=m.store_errors
        )
        yield CounterMetricFamily(
            "policy_engine_fail_open_decisions",
            "Requests admitted while a limit could not be checked (failed open).",
            value=m.fail_open_decisions,
        )
        up, outages = m.store_state() if m.store_state else (True, 0)
        yield GaugeMetricFamily(
            "policy_engine_store_up", "1 while the limit store answers, 0 while it fails.", value=1 if up else 0
        )
        yield CounterMetricFamily(
            "policy_engine_store_outages", "Times the limit store went from answering to failing.", value=outages
        )
        yield _counter("policy_engine_invalid_requests", "Requests refused as malformed.", ["api"], m.invalid)
        yield _counter("policy_engine_reloads", "Policy reloads by result.", ["result"], m.reloads)
        info = GaugeMetricFamily("policy_engine_policy_info", "The serving policy version.", labels=["version"])
        info.add_metric([m.policy_version], 1)
        yield info
        yield GaugeMetricFamily(
            "policy_engine_last_reload_error",
            "1 while the most recent reload failed.",
            value=1 if m.last_reload_failed else 0,
        )
        dropped, written = m.decision_log_counts() if m.decision_log_counts else (0, 0)
        yield CounterMetricFamily(
            "policy_engine_decision_log_dropped", "Decision-log records dropped (queue full).", value=dropped
        )
        yield CounterMetricFamily("policy_engine_decision_log_written", "Decision-log records written.", value=written)
        sinks = m.decision_log_sinks() if m.decision_log_sinks else {}
        for i, (name, doc) in enumerate(
            (
                ("policy_engine_decision_log_shipped", "Decision-log records shipped off the box."),
                ("policy_engine_decision_log_ship_dropped", "Decision-log records a destination never got."),
                ("policy_engine_decision_log_ship_retries", "Decision-log batches sent again after a failure."),
            )
        ):
            yield _counter(name, doc, ["sink"], {sink: counts[i] for sink, counts in sinks.items()})
        if m.local_first is not None:
            yield from _local_first(m.local_first)


def _local_first(store: LocalFirstStore) -> Iterable[Metric]:
    st = store.stats
    yield _counter(
        "policy_engine_local_first_rounds",
        "Local-first rounds with the shared store, by result.",
        ["result"],
        {"ok": st.rounds, "failed": st.failed_rounds},
    )
    yield CounterMetricFamily(
        "policy_engine_local_first_keys_sent", "Keys whose changes a round sent and pulled back.", value=st.keys_sent
    )
    yield CounterMetricFamily(
        "policy_engine_local_first_dropped_keys",
        "Pending changes dropped during an outage (max_pending_keys).",
        value=st.dropped_keys,
    )
    yield GaugeMetricFamily(
        "policy_engine_local_first_pending_keys", "Keys with changes not sent yet.", value=store.pending_keys
    )
    yield GaugeMetricFamily(
        "policy_engine_local_first_last_round_seconds",
        "How long the last successful round took.",
        value=st.last_round_seconds,
    )


def _counter(name: str, documentation: str, labels: list[str], counts: Mapping[Any, int]) -> CounterMetricFamily:
    """A labelled counter family from one of the request path's count dicts (keyed by the
    label value, or by a tuple of them); read from a snapshot, since the loop keeps adding."""
    fam = CounterMetricFamily(name, documentation, labels=labels)
    for key, n in list(counts.items()):
        fam.add_metric(list(key) if isinstance(key, tuple) else [key], n)
    return fam
