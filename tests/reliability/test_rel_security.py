"""Security promises: a policy runs no code and reads nothing outside its folder;
health and metrics on loopback by default; no prompt text in the decision log
unless enabled; secrets never reach a log; a key flood cannot exhaust memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any
from collections.abc import Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dsl.diagnostics import PolicyError
from policy_engine.client import PolicyClient
from policy_engine.policyset import load_policy_set
from policy_engine.proto.envoy.service.auth.v3 import attribute_context_pb2 as attr
from policy_engine.proto.envoy.service.auth.v3 import external_auth_pb2 as authz
from policy_engine.proto.envoy.service.auth.v3 import external_auth_pb2_grpc as authz_grpc
from policy_engine.server.app import free_port
from policy_engine.server.settings import ServerSettings
from rel_harness import ctx
from served import Served
from server_harness import ServerThread, write_policy

RULE = 'rule r {{\n  deny when {cond}\n  reason "r"\n}}\n'


# --- a policy can neither run code nor read files outside its folder -----------------------


def _load(folder: Path, text: str) -> str:
    (folder / "main.policy").write_text(text)
    with pytest.raises(PolicyError) as info:
        load_policy_set(folder)
    return str(info.value)


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../outside.txt", "leaves the policy folder"),
        ("data/../../outside.txt", "leaves the policy folder"),
        ("/etc/passwd", "is absolute"),
        ("link_out.txt", "leaves the policy folder"),  # a symlink to a file outside
        ("linkdir/outside.txt", "leaves the policy folder"),  # a file reached through a linked folder
    ],
)
def test_data_paths_cannot_leave_the_folder(tmp_path: Path, path: str, why: str) -> None:
    (tmp_path / "outside.txt").write_text("secret-value\n")
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "link_out.txt").symlink_to(tmp_path / "outside.txt")
    (folder / "linkdir").symlink_to(tmp_path)
    msg = _load(folder, f'data names = strings("{path}")\n' + RULE.format(cond="account.id in names"))
    assert "E0214" in msg and why in msg and "secret-value" not in msg


@pytest.mark.parametrize(
    "cond",
    [
        '__import__("os").system("touch pwned") == 0',
        'eval("1") == 1',
        'exec("x") == null',
        'open("/etc/passwd") == ""',
        'account.__class__ == ""',
        'account.id.__class__ == ""',
        '"".join(["a"]) == "a"',
        'request.prompt.format(x=1) == ""',
        "__builtins__ == null",
    ],
)
def test_expressions_cannot_reach_python(tmp_path: Path, cond: str) -> None:
    msg = _load(tmp_path, RULE.format(cond=cond))
    assert "error[" in msg
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_strings_in_a_policy_stay_strings(tmp_path: Path) -> None:
    """Text that is Python in the generated code's eyes is only ever data."""
    evil = "\\\"); __import__('os').system('touch pwned'); (\\\""
    (tmp_path / "main.policy").write_text(RULE.format(cond=f'account.id == "{evil}"'))
    policy = load_policy_set(tmp_path)
    assert policy.rules and not (tmp_path / "pwned").exists() and not Path("pwned").exists()


# --- loopback by default --------------------------------------------------------------------


def _listening(port: int) -> set[str]:
    """Local addresses listening on `port`, from /proc/net/tcp{,6}."""
    out = set()
    for name in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.rsplit(":", 1)
            if int(p, 16) == port and state == "0A":  # LISTEN
                out.add(addr)
    return out


def test_grpc_and_metrics_bind_loopback_by_default(tmp_path: Path) -> None:
    s0 = ServerSettings(policies=tmp_path)
    assert (s0.host, s0.metrics_host, s0.metrics_port) == ("127.0.0.1", "127.0.0.1", None)
    port, metrics = free_port("127.0.0.1"), free_port("127.0.0.1")
    s = Served(
        ["--policies", str(write_policy(tmp_path / "p")), "--metrics-port", str(metrics)], port, tmp_path / "serve.log"
    ).wait_ready()
    try:
        # 127.0.0.1 (tcp) and ::ffff:127.0.0.1 (tcp6), as /proc writes them; never 0.0.0.0 or ::
        loopback = {"0100007F", "0000000000000000FFFF00000100007F"}
        for p in (port, metrics):
            assert _listening(p) and _listening(p) <= loopback, (p, _listening(p))
        urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5).read()
    finally:
        assert s.stop() == 0


# --- no prompt text in the decision log unless enabled --------------------------------------


def test_decision_log_has_no_prompt_from_any_api(start_server: Callable[..., ServerThread], tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    st = start_server(decision_log=str(path))
    secret = "SECRET-PROMPT-TEXT please explain step by step"
    with PolicyClient(st.target, timeout=5) as pe:
        pe.check(ctx("a", prompt=secret))
    body = json.dumps({"messages": [{"role": "user", "content": secret}]}).encode()
    http = attr.AttributeContext.HttpRequest(
        id="e-1", method="POST", path="/v1/chat/completions", headers={"x-account-id": "acct-e"}, raw_body=body
    )
    req = authz.CheckRequest()
    req.attributes.request.http.CopyFrom(http)
    with grpc.insecure_channel(st.target) as ch:
        authz_grpc.AuthorizationStub(ch).Check(req, timeout=5)
    st.stop()
    text = path.read_text()
    assert len(text.splitlines()) == 2 and "SECRET-PROMPT-TEXT" not in text and "step by step" not in text
    assert all("prompt_fingerprint" in json.loads(x)["request"] for x in text.splitlines())


# --- secrets never reach a log ----------------------------------------------------------------


def test_redis_password_never_reaches_logs_or_answers(tmp_path: Path, redis_factory: Any) -> None:
    password = "Pw-7c1e9f-never-log-me"
    rp = redis_factory()
    rp.cli("config", "set", "requirepass", password)  # set once up: the harness' readiness PING has no AUTH
    env = {**os.environ, "POLICY_ENGINE_REDIS": f"redis://:{password}@127.0.0.1:{rp.port}/0"}
    s = Served(
        [
            "--policies",
            str(write_policy(tmp_path / "p")),
            "--log-level",
            "debug",
            "--decision-log",
            "-",
            "--store-deadline-ms",
            "500",
        ],
        free_port("127.0.0.1"),
        tmp_path / "serve.log",
        env=env,
    ).wait_ready()
    answers = []
    try:
        with PolicyClient(s.target, timeout=5) as pe:
            answers.append(repr(pe.check(ctx("a"))))
            rp.stop()  # store errors now: their messages go to the decision log and the answers
            answers.append(repr(pe.check(ctx("b"), explain=True)))
            answers.append(repr(pe.get_policy()))
        wrong = {**env, "POLICY_ENGINE_REDIS": f"redis://:{password}-wrong@127.0.0.1:{rp.port}/0"}
        rp.start()
        rp.cli("config", "set", "requirepass", password)
        s2 = Served(
            ["--policies", str(write_policy(tmp_path / "p2")), "--log-level", "debug", "--decision-log", "-"],
            free_port("127.0.0.1"),
            tmp_path / "serve2.log",
            env=wrong,
        ).wait_ready()
        with PolicyClient(s2.target, timeout=5) as pe:
            answers.append(repr(pe.check(ctx("c"), explain=True)))  # authentication fails: an error
        assert s2.stop() == 0
    finally:
        s.stop()
    logs = s.log.read_text() + (tmp_path / "serve2.log").read_text()
    assert "limit store" in logs or "error" in logs  # the failures were logged ...
    assert password not in logs and password not in "".join(answers)  # ... without the password


def test_bad_settings_errors_do_not_echo_secrets(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "POLICY_ENGINE_REDIS": "redis://:Pw-secret-xyz@127.0.0.1:1/0",
        "POLICY_ENGINE_WORKERS": "2",
        "POLICY_ENGINE_STORE_DEADLINE_MS": "-1",
    }
    out = subprocess.run(
        [sys.executable, "-m", "policy_engine.cli.main", "serve", "--policies", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode != 0 and "store_deadline_ms" in out.stderr + out.stdout
    assert "Pw-secret-xyz" not in out.stderr + out.stdout


# --- a key flood cannot exhaust memory -------------------------------------------------------

FLOOD = """
import os, resource, sys, time
from policy_engine.state.base import Hit, Kind, LimitSpec
from policy_engine.state.memory import MemoryStore

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

n, max_keys = int(sys.argv[1]), int(sys.argv[2])
store = MemoryStore(max_keys=max_keys)
spec = LimitSpec("rpm", Kind.COUNT, 60.0)
base = rss_mib()
t0 = time.perf_counter()
for i in range(n):
    store.acquire_sync([Hit(spec, os.urandom(12).hex(), 100.0)], 1000.0 + i * 1e-5)
print(len(store), round(rss_mib() - base, 1), round(time.perf_counter() - t0, 1))
"""


def test_key_flood_of_two_million_accounts_is_bounded_by_max_keys() -> None:
    out = subprocess.run(
        [sys.executable, "-c", FLOOD, "2000000", "200000"], capture_output=True, text=True, timeout=300, check=True
    )
    keys, grown_mib, seconds = out.stdout.split()
    assert int(keys) <= 200_000
    assert float(grown_mib) < 200, grown_mib  # ~260 B a key (docs/limits.md): ~50 MiB for 200k
    print(f"\nMEASURED key-flood: ids=2000000 max_keys=200000 kept={keys} rss_growth_mib={grown_mib} seconds={seconds}")


# --- mutual TLS covers every service on the port ----------------------------------------------


def test_mutual_tls_also_guards_health(start_server: Callable[..., ServerThread], tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
    from test_server_tls import Pki  # the certificates of the TLS tests

    pki = Pki(tmp_path)
    st = start_server(**pki.files)
    target = f"localhost:{st.port}"
    key, cert = pki.client
    with grpc.secure_channel(target, grpc.ssl_channel_credentials(pki.ca_pem, key, cert)) as ch:
        ok = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert ok.status == health_pb2.HealthCheckResponse.SERVING
    for creds in (grpc.ssl_channel_credentials(pki.ca_pem), grpc.ssl_channel_credentials(pki.ca_pem, *pki.stranger)):
        with grpc.secure_channel(target, creds) as ch, pytest.raises(grpc.RpcError) as info:
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    with grpc.insecure_channel(st.target) as ch, pytest.raises(grpc.RpcError):
        health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2)
