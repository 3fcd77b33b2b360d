"""A short run of the gRPC load benchmark (tests/benchmarks/load_grpc.py): every call that
h2load sent was answered and decided. The figures themselves live in BENCHMARKS.md."""

from __future__ import annotations

import shutil

import pytest

from load_grpc import bench, default_policies

pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load (nghttp2-client) is not installed")
def test_load_benchmark_runs_end_to_end() -> None:
    results = bench(["noop", "memory", "redis"], default_policies(), requests=1500, rate_requests=300)
    for name, entry in results["targets"].items():
        for run in ("saturation", "at_1000_rps"):
            assert entry[run]["ok"] == entry[run]["requests"] > 0, (name, run, entry[run])
        if name != "noop":
            assert entry["decided"] == entry["sent"], (name, entry)  # grpc-status OK for every call
    assert set(results["targets"]["memory"]) >= {"throughput_vs_noop", "p99_at_1000_vs_noop"}


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load (nghttp2-client) is not installed")
def test_ext_authz_and_local_first_targets_run() -> None:
    """Envoy's ext_authz Check against the no-op and a local-first server: every call decided."""
    results = bench(["noop", "local"], default_policies(), requests=1500, rate_requests=300, api="ext_authz")
    assert results["api"] == "/envoy.service.auth.v3.Authorization/Check"
    for name, entry in results["targets"].items():
        for run in ("saturation", "at_1000_rps"):
            assert entry[run]["ok"] == entry[run]["requests"] > 0, (name, run, entry[run])
    assert results["targets"]["local"]["decided"] == results["targets"]["local"]["sent"]


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load (nghttp2-client) is not installed")
def test_a_busy_noop_spends_its_handler_cost_on_every_call() -> None:
    """`noop+N`: the no-op whose handler first spends N µs of CPU (the ceiling a handler
    of that cost can reach). Its server CPU per call is at least N above the no-op's."""
    results = bench(["noop", "noop+300"], default_policies(), requests=1500, rate_requests=300, api="ext_authz")
    plain, busy = results["targets"]["noop"], results["targets"]["noop+300"]
    for entry in (plain, busy):
        assert entry["saturation"]["ok"] == entry["saturation"]["requests"] > 0
    # /proc counts CPU in 10 ms ticks: over 1,500 calls that is ~7 µs a call of slack
    assert busy["server_cpu_us_per_call"] >= plain["server_cpu_us_per_call"] + 280, (plain, busy)
