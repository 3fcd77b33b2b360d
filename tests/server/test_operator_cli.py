"""`policyctl client` and `policyctl admin` against `policyctl serve --admin-port`, as
processes, on memory, Redis and Redis Cluster: check, report, status; a key's state,
a dry run that counts nothing, a reset; the admin service's access rules and audit log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from policy_engine.server.admin import is_loopback_peer
from policy_engine.server.app import free_port
from server_harness import POLICY, write_policy

POLICYCTL = str(Path(sys.executable).with_name("policyctl"))
# per_minute and the measure count over a day here: a sliding window weighs the previous
# bucket less as time goes on, and a test that crossed a minute's (or an hour's) boundary
# would read 2.96 of 3.
MEASURED = (
    POLICY.replace("window 1m", "window 1d")
    + """
measure seen {
  key account.id
  count
  window 1d
}
"""
)
ACCOUNT = ["--account", "acct-1"]


def ctl(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    run = subprocess.run([POLICYCTL, *args], capture_output=True, text=True, timeout=60)
    if ok:
        assert run.returncode == 0, run.stderr + run.stdout
    return run


def flat(text: str) -> str:
    """Readable output with its column padding collapsed."""
    return " ".join(text.split())


def js(*args: str) -> Any:
    return json.loads(ctl(*args, "--json").stdout)


def _request(tmp_path: Path) -> str:
    path = tmp_path / "req.json"
    path.write_text(
        json.dumps(
            {
                "account": {"id": "acct-1", "age_days": 30, "verification": "kyc", "tier": "pro"},
                "request": {"model": "m", "prompt": "hello", "max_tokens": 500},
            }
        )
    )
    return str(path)


def _per_minute(check: dict[str, Any]) -> dict[str, Any]:
    return next(lim for lim in check["limits"] if lim["limit_id"] == "per_minute")


@pytest.mark.parametrize("store", ["memory", "redis", "redis-cluster"])
def test_client_and_admin_commands(serve: Any, tmp_path: Path, store: str, request: pytest.FixtureRequest) -> None:
    flags: list[str] = []
    if store == "redis":
        flags = ["--store", request.getfixturevalue("redis_factory")().url]
    elif store == "redis-cluster":
        nodes = request.getfixturevalue("redis_cluster")
        flags = ["--store", nodes[0].url.replace("redis://", "redis+cluster://")]
    admin_port = free_port("127.0.0.1")
    s = serve("--policies", str(write_policy(tmp_path / "p", MEASURED)), "--admin-port", str(admin_port), *flags)
    api, admin = ["--server", s.target], ["--server", f"127.0.0.1:{admin_port}"]
    req = _request(tmp_path)
    if store != "memory":  # a shared store outlives servers: start from a clean key
        ctl("admin", "reset", "per_minute", "acct-1", *admin)
        ctl("admin", "reset", "seen", "acct-1", *admin)

    first = js("client", "check", "-r", req, "--request-id", "req-1", *api)
    assert (first["effect"], first["request_id"], _per_minute(first)["remaining"]) == ("allow", "req-1", 2)
    assert js("client", "check", "-r", req, *api)["effect"] == "allow"
    text = flat(ctl("client", "check", "-r", req, "--explain", *api).stdout)  # the readable form
    assert "decision allow 200" in text and "per_minute [acct-1] used 3 of 3, 0 left" in text

    st = js("admin", "state", "per_minute", "acct-1", *admin)
    assert (st["block"], st["kind"], st["used"], st["max"], st["remaining"], st["full"]) == (
        "limit",
        "count",
        3,
        3,
        0,
        True,
    )
    assert st["window_seconds"] == 86400 and st["reset_seconds"] > 0 and st["clear_seconds"] >= st["reset_seconds"]
    seen = js("admin", "state", "seen", "acct-1", *admin)
    assert (seen["block"], seen["used"], seen["max"]) == ("measure", 3, None)
    text = flat(ctl("admin", "state", "per_minute", "acct-1", *admin).stdout)
    assert "used 3 of 3, 0 left FULL: one more would be over" in text

    for _ in range(2):  # a dry run decides as Check would, and counts nothing
        dry = js("admin", "dry-run", "-r", req, *admin)
        assert (dry["effect"], dry["http_status"], dry["rule_ids"]) == ("throttle", 429, ["per_minute"])
        assert _per_minute(dry)["used"] == 3 and dry["explanation"]
        assert [m["value"] for m in dry["measures"]] == [4]  # what the policy would read, with this request
    assert js("admin", "state", "per_minute", "acct-1", *admin)["used"] == 3
    assert js("admin", "state", "seen", "acct-1", *admin)["used"] == 3
    assert "[dry run: nothing counted]" in ctl("admin", "dry-run", *ACCOUNT, *admin).stdout

    reset = js("admin", "reset", "per_minute", "acct-1", *admin)
    assert reset["existed"] is True and reset["before"]["used"] == 3
    assert js("admin", "reset", "per_minute", "acct-1", *admin)["existed"] is False
    assert js("admin", "state", "per_minute", "acct-1", *admin)["used"] == 0
    assert js("client", "check", "-r", req, *api)["effect"] == "allow"  # the window started afresh

    assert js("client", "report", "req-1", "--prompt-tokens", "10", "--completion-tokens", "20", *api)["applied"]
    assert "nothing to reconcile" in ctl("client", "report", "req-1", "--prompt-tokens", "1", *api).stdout

    status = js("client", "status", *api)
    assert status["healthy"] is True and status["policy"]["store"]["state"] == "ok"
    assert status["health"]["policy_engine.store"] == "SERVING"

    missing = ctl("admin", "state", "nope", "x", *admin, ok=False)
    assert missing.returncode == 1 and "NOT_FOUND: no limit or measure `nope`" in missing.stderr
    assert s.stop() == 0
    log = s.log.read_text()
    assert "admin ResetState name='per_minute' key='acct-1' by ipv4:127.0.0.1:" in log
    assert "reset (used was 3)" in log and "admin DryRunCheck account=acct-1" in log


def test_status_exits_1_when_degraded(serve: Any, tmp_path: Path, redis_factory: Any) -> None:
    rp = redis_factory()
    rp.stop()  # nothing listens: the store fails
    s = serve("--policies", str(write_policy(tmp_path / "p")), "--store", rp.url)
    run = ctl("client", "status", "--server", s.target, ok=False)
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"store redis {rp.url} FAILING" in flat(run.stdout)
    assert "policy_engine.store NOT_SERVING" in flat(run.stdout)
    check = flat(ctl("client", "check", *ACCOUNT, "--server", s.target).stdout)
    assert "per_minute [acct-1] max 3: STORE FAILED (redis store: ConnectionError" in check
    assert "failed open" in check and "x-ratelimit" not in check
    down = ctl("client", "status", "--server", f"127.0.0.1:{free_port('127.0.0.1')}", "--timeout", "1", ok=False)
    assert down.returncode == 1 and "UNAVAILABLE" in down.stderr


def test_admin_is_off_by_default_and_loopback_only(serve: Any, tmp_path: Path) -> None:
    s = serve("--policies", str(write_policy(tmp_path / "p")))
    assert "admin service" not in s.log.read_text()
    out = serve(
        "--policies", str(write_policy(tmp_path / "q")), "--admin-port", "0", "--admin-host", "0.0.0.0", wait=False
    )
    assert out.proc.wait(30) == 2
    assert "admin_host 0.0.0.0: the admin service binds loopback" in out.log.read_text()
    assert is_loopback_peer("ipv4:127.0.0.1:5000") and is_loopback_peer("ipv6:[::1]:5000")
    assert not is_loopback_peer("ipv4:10.1.2.3:5000") and not is_loopback_peer("ipv6:[2001:db8::1]:443")


def test_admin_over_mutual_tls(serve: Any, tmp_path: Path) -> None:
    from test_server_tls import Pki

    pki = Pki(tmp_path)
    key, cert = pki.client
    (tmp_path / "client.key").write_bytes(key)
    (tmp_path / "client.pem").write_bytes(cert)
    admin_port = free_port("127.0.0.1")
    f = pki.files
    s = serve(
        "--policies",
        str(write_policy(tmp_path / "p")),
        "--admin-port",
        str(admin_port),
        "--tls-cert",
        str(f["tls_cert"]),
        "--tls-key",
        str(f["tls_key"]),
        "--tls-client-ca",
        str(f["tls_client_ca"]),
        wait=False,
    )
    tls = ["--tls-ca", str(f["tls_client_ca"]), "--tls-server-name", "localhost"]
    mtls = [*tls, "--tls-cert", str(tmp_path / "client.pem"), "--tls-key", str(tmp_path / "client.key")]
    admin = ["--server", f"127.0.0.1:{admin_port}"]
    for _ in range(100):
        run = ctl("client", "status", "--server", s.target, *mtls, ok=False)
        if run.returncode == 0:
            break
    assert run.returncode == 0, run.stderr + s.log.read_text()
    assert js("admin", "state", "per_minute", "acct-1", *admin, *mtls)["used"] == 0
    refused = ctl("admin", "state", "per_minute", "acct-1", *admin, *tls, ok=False)  # no client certificate
    assert refused.returncode == 1 and "UNAVAILABLE" in refused.stderr
    assert s.stop() == 0
    assert "admin GetState name='per_minute' key='acct-1' by ipv4:127.0.0.1:" in s.log.read_text()
    assert "(certificate CN=gateway-1)" in s.log.read_text()


def test_client_check_sends_declared_attributes(serve: Any, tmp_path: Path) -> None:
    declared = 'attribute account.risk_score: float\n\nrule risky {\n  deny when account.risk_score > 0.8\n  reason "account under review"\n}\n'
    s = serve("--policies", str(write_policy(tmp_path / "p", POLICY + declared)))
    api = ["--server", s.target, *ACCOUNT]
    denied = js("client", "check", "--attribute", "account.risk_score=0.93", *api)
    assert (denied["effect"], denied["rule_ids"], denied["notes"]) == ("deny", ["risky"], [])
    text = flat(ctl("client", "check", "--attribute", "account.risk_score=high", "--attribute", "x=1", *api).stdout)
    assert "decision allow 200" in text
    assert "notes attribute account.risk_score: ignored 'high': expected a number" in text
    assert "attribute 'x' is not declared by the policy: ignored" in text
    run = ctl("client", "check", "--attribute", "risk", *api, ok=False)
    assert run.returncode == 2 and "expected KEY=VALUE" in run.stderr


def test_bad_input_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"account": {"id": "a", "verification": "bogus"}}))
    run = ctl("client", "check", "-r", str(bad), ok=False)
    assert run.returncode == 2 and "$.account.verification" in run.stderr
    run = ctl("client", "check", "--tls-cert", str(bad), ok=False)
    assert run.returncode == 2 and "needs both --tls-cert and --tls-key" in run.stderr
    run = ctl("client", "report", "r-1", ok=False)
    assert run.returncode == 2 and "--prompt-tokens" in run.stderr
