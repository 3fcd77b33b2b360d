"""Server-side faults under load: a policy reload every second, SIGTERM, and a
decision log on a full or unwritable disk."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any
from collections.abc import Callable

import grpc
import pytest

from latency_proxy import LatencyProxy
from policy_engine.server.app import ServerError, free_port
from rel_harness import Load, pct
from served import Served
from server_harness import ServerThread

VERSION = """\
rule {v}_first {{
  flag when true
  reason "{v}"
}}

rule {v}_second {{
  flag when account.id != ""
  reason "{v}"
}}

limit {v}_rate {{
  key account.id
  count
  window 1m
  max 1000000
  throttle
  reason "{v}"
}}
"""


def _write(folder: Path, v: str) -> None:
    tmp = folder / "main.policy.tmp"  # not a .policy file: the loader ignores it
    tmp.write_text(VERSION.format(v=v))
    os.replace(tmp, folder / "main.policy")  # atomic: the watcher never sees half a file


def test_reload_every_second_under_load(start_server: Callable[..., ServerThread], tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    _write(folder, "a")
    st = start_server(policies=folder, reload=False)  # reloads triggered here, once a second
    assert st.app is not None
    versions = {"a": st.app.engine.policy.version}
    with Load(st.target, threads=6, timeout=2.0) as load:
        for i in range(6):
            time.sleep(1.0)
            v = "b" if i % 2 == 0 else "a"
            _write(folder, v)
            assert st.call(st.app.reloader.reload_now())
            versions[v] = st.app.engine.policy.version
        time.sleep(0.5)
    calls = load.calls
    assert not [c for c in calls if c.error], {c.error for c in calls if c.error}
    by_version = {ver: v for v, ver in versions.items()}
    seen = set()
    for c in calls:  # every decision from one whole version: its rules, its limit, its version
        r = c.result
        assert r is not None
        v = by_version[r.policy_version]
        seen.add(v)
        assert r.rule_ids == [f"{v}_first", f"{v}_second"], (r.policy_version, r.rule_ids)
        assert [lim.limit_id for lim in r.limits] == [f"{v}_rate"]
    assert seen == {"a", "b"} and st.app.metrics.reloads["ok"] == 6
    print(
        f"\nMEASURED reload: calls={len(calls)} reloads=6 errors=0 mixed=0 "
        f"p99_ms={pct([c.seconds for c in calls], 0.99) * 1e3:.1f}"
    )


def test_sigterm_under_load_completes_calls_in_flight(tmp_path: Path, redis_factory: Any) -> None:
    """Calls that reached the server before SIGTERM complete (the store answers slowly, so
    many are in flight); later ones are refused cleanly (UNAVAILABLE); exit code 0."""
    rp = redis_factory()
    (tmp_path / "p").mkdir()
    _write(tmp_path / "p", "a")
    with LatencyProxy(rp.port, delay=0.15) as proxy:
        port = free_port("127.0.0.1")
        s = Served(
            [
                "--policies",
                str(tmp_path / "p"),
                "--redis",
                proxy.url,
                "--store-deadline-ms",
                "5000",
                "--grace-seconds",
                "10",
                "--no-reload",
            ],
            port,
            tmp_path / "serve.log",
        ).wait_ready()
        try:
            with Load(s.target, threads=12, timeout=10.0) as load:
                time.sleep(3.0)  # the first calls open connections through the slow proxy
                t_term = time.monotonic()
                s.proc.send_signal(signal.SIGTERM)
                code = s.proc.wait(30)
        finally:
            if s.proc.poll() is None:
                s.proc.kill()
    assert code == 0, s.log.read_text()
    calls = load.calls
    # Started 20 ms before the signal and still running at it: inside the server, waiting on
    # the store (each call takes >= 300 ms there). Every one of them must complete.
    inflight = [c for c in calls if c.start < t_term - 0.02 < t_term < c.start + c.seconds]
    assert len(inflight) >= 6 and all(c.error is None and c.result and c.result.allowed for c in inflight)
    assert all(c.error is None for c in calls if c.start < t_term - 0.02)
    late = [c for c in calls if c.start > t_term + 0.5]
    assert {c.error for c in late} <= {grpc.StatusCode.UNAVAILABLE}
    log = s.log.read_text()
    assert "draining calls in flight" in log and "stopped" in log
    print(
        f"\nMEASURED sigterm: calls={len(calls)} in_flight_at_signal={len(inflight)} lost=0 "
        f"refused_after={sum(1 for c in late if c.error)}"
    )


def test_decision_log_disk_full(start_server: Callable[..., ServerThread]) -> None:
    """/dev/full fails every write with ENOSPC: decisions go on, drops are counted."""
    st = start_server(decision_log="/dev/full", metrics_port=0)
    assert st.app is not None and st.app.decision_log is not None
    with Load(st.target, threads=4, timeout=1.0) as load:
        time.sleep(1.5)
    calls = load.calls
    assert calls and not [c for c in calls if c.error]
    dl = st.app.decision_log
    deadline = time.monotonic() + 5
    while dl.dropped < len(calls) and time.monotonic() < deadline:  # the writer drains every 50 ms
        time.sleep(0.05)
    assert dl.written == 0 and dl.dropped == len(calls)
    text = urllib.request.urlopen(f"http://127.0.0.1:{st.app.metrics_port}/metrics", timeout=5).read().decode()
    assert f"policy_engine_decision_log_dropped_total {float(len(calls))}" in text
    print(
        f"\nMEASURED log-disk-full: calls={len(calls)} errors=0 dropped={dl.dropped} "
        f"p99_ms={pct([c.seconds for c in calls], 0.99) * 1e3:.1f}"
    )


def test_decision_log_unwritable_at_start_is_a_clear_error(policy_dir: Path, tmp_path: Path) -> None:
    from policy_engine.server.settings import ServerSettings

    st = ServerThread(ServerSettings(policies=policy_dir, port=0, decision_log=str(tmp_path / "no" / "d.jsonl")))
    try:
        with pytest.raises(ServerError, match=r"--decision-log .*d.jsonl: No such file or directory"):
            st.start()
    finally:
        st.stop()


def test_decision_log_file_removed_while_serving(start_server: Callable[..., ServerThread], tmp_path: Path) -> None:
    """Deleting the log (or its folder) under the server loses those lines, never decisions."""
    path = tmp_path / "logs" / "d.jsonl"
    path.parent.mkdir()
    st = start_server(decision_log=str(path))
    with Load(st.target, threads=2, timeout=1.0) as load:
        time.sleep(0.5)
        path.unlink()
        path.parent.rmdir()
        time.sleep(0.5)
    assert load.calls and not [c for c in load.calls if c.error]
    assert st.app is not None and st.app.decision_log is not None
    time.sleep(0.2)
    assert st.app.decision_log.written + st.app.decision_log.dropped == len(load.calls)
    json.dumps(st.app.policy_info())  # the server still answers about itself
