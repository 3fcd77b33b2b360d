"""A money budget on a running server: usage with every token class and the serving
model, reported through each path a gateway uses (gRPC Report, `policyctl client
report`, HTTP /report, Envoy's access log), settles the reserved cost exactly; the
admin service shows the budget in dollars."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from typer.testing import CliRunner

from policy_engine.cli.main import app
from policy_engine.client import AdminClient, PolicyClient
from policy_engine.ingress.usage import Usage
from policy_engine.proto.envoy.data.accesslog.v3 import accesslog_pb2
from policy_engine.proto.envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from server_harness import ServerThread

PRICES = """\
model,group,input,cached_input,output,reasoning
frontier,,3.00,0.30,15.00,15.00
frontier-large,frontier,,,,
mini,,0.15,0.075,0.60,0.60
"""

POLICY = """\
data prices = prices("prices.csv")

let settled = price(usage.model, "input") * ((usage.prompt_tokens ?? 0) - (usage.cached_input_tokens ?? 0))
  + price(usage.model, "cached_input") * (usage.cached_input_tokens ?? 0)
  + price(usage.model, "output") * ((usage.completion_tokens ?? 0) - (usage.reasoning_tokens ?? 0))
  + price(usage.model, "reasoning") * (usage.reasoning_tokens ?? 0)

limit month_dollars {
  key account.id, model_group(request.model) ?? "other"
  sum (price(request.model, "output") ?? 0.00004) * (request.max_tokens ?? 1000)
  usage settled
  window calendar month in "Europe/Paris"
  max 2.00
  throttle
  reason "monthly budget spent"
}
"""
# 1,000 prompt tokens (800 from cache), 500 completion tokens (300 reasoning) of frontier:
# 200 x 3.00 + 800 x 0.30 + 200 x 15.00 + 300 x 15.00 per million = $0.00834.
USAGE = Usage(1000, 500, 800, 300, "frontier-large")
COST = 0.00834
RESERVED = 0.6  # 40,000 output tokens at 15.00 per million


@pytest.fixture
def billing(tmp_path: Path, start_server: Callable[..., ServerThread]) -> ServerThread:
    folder = tmp_path / "billing"
    folder.mkdir()
    (folder / "prices.csv").write_text(PRICES)
    (folder / "main.policy").write_text(POLICY)
    return start_server(policies=folder, http_port=0, admin_port=0)


def _check(pe: PolicyClient, rid: str, account: str = "acct-1") -> float:
    r = pe.check({"account": {"id": account}, "request": {"id": rid, "model": "frontier-large", "max_tokens": 40000}})
    assert r.effect == "allow", r
    (lim,) = r.limits
    assert lim.key == f"{account}|frontier"
    return lim.used


def test_grpc_report_and_the_cli_settle_every_token_class(billing: ServerThread) -> None:
    with PolicyClient(billing.target, timeout=5) as pe:
        assert _check(pe, "r-1") == RESERVED
        assert pe.report("r-1", usage=USAGE) is True
        assert _check(pe, "r-2") == COST + RESERVED
    cli = CliRunner().invoke(
        app,
        ["client", "report", "r-2", "--server", billing.target, "--json"]
        + ["--prompt-tokens", "1000", "--cached-input-tokens", "800", "--completion-tokens", "500"]
        + ["--reasoning-tokens", "300", "--model", "frontier-large"],
    )
    assert cli.exit_code == 0 and json.loads(cli.stdout) == {"request_id": "r-2", "applied": True}, cli.stdout
    with PolicyClient(billing.target, timeout=5) as pe:
        assert _check(pe, "r-3") == round(2 * COST + RESERVED, 6)
    assert billing.app is not None and billing.app.admin_port is not None
    with AdminClient(f"127.0.0.1:{billing.app.admin_port}", timeout=5) as admin:
        st = admin.get_state("month_dollars", "acct-1|frontier", 2.0)
    # In dollars, as the policy writes them, not in the stores' micro-units.
    assert (st.used, st.max) == (round(2 * COST + RESERVED, 6), 2.0)
    assert st.remaining == round(2.0 - st.used, 6) and not st.full
    admin_cli = ["admin", "state", "month_dollars", "acct-1|frontier", "--max", "2"]
    text = CliRunner().invoke(app, [*admin_cli, "--server", f"127.0.0.1:{billing.app.admin_port}"]).stdout
    assert "0.61668 of 2, 1.38332 left" in " ".join(text.split()), text  # to the micro-dollar


def test_a_report_without_a_model_leaves_the_estimate(billing: ServerThread) -> None:
    with PolicyClient(billing.target, timeout=5) as pe:
        _check(pe, "r-1")
        # No model: no price, so the usage cost is null and the reservation stands.
        assert pe.report("r-1", 1000, 500) is False
        assert _check(pe, "r-2") == 2 * RESERVED


def _post(port: int, doc: dict[str, Any]) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/report", body=json.dumps(doc).encode())
        r = conn.getresponse()
        return r.status, json.loads(r.read())
    finally:
        conn.close()


def test_http_report_reads_an_openai_answer_or_flat_fields(billing: ServerThread) -> None:
    assert billing.app is not None and billing.app.http_port is not None
    port = billing.app.http_port
    answer = {
        "model": "frontier-large",
        "usage": {
            "prompt_tokens": 1000,
            "completion_tokens": 500,
            "prompt_tokens_details": {"cached_tokens": 800},
            "completion_tokens_details": {"reasoning_tokens": 300},
        },
    }
    flat = {"prompt_tokens": 1000, "cached_input_tokens": 800, "completion_tokens": 500, "reasoning_tokens": 300}
    with PolicyClient(billing.target, timeout=5) as pe:
        _check(pe, "h-1", "acct-h")
        _check(pe, "h-2", "acct-h")
        assert _post(port, {"request_id": "h-1", **answer}) == (200, {"applied": True})
        assert _post(port, {"request_id": "h-2", **flat, "model": "frontier"}) == (200, {"applied": True})
        assert _check(pe, "h-3", "acct-h") == round(2 * COST + RESERVED, 6)


def test_envoy_access_log_reports_classes_and_the_model(billing: ServerThread) -> None:
    with PolicyClient(billing.target, timeout=5) as pe:
        _check(pe, "e-1", "acct-e")
    entry = accesslog_pb2.HTTPAccessLogEntry()
    entry.request.request_id = "e-1"
    for header, value in (
        ("x-usage-prompt-tokens", "1000"),
        ("x-usage-cached-input-tokens", "800"),
        ("x-usage-completion-tokens", "500"),
        ("x-usage-reasoning-tokens", "300"),
        ("x-usage-model", "frontier-large"),
    ):
        entry.response.response_headers[header] = value
    msg = als_pb2.StreamAccessLogsMessage(
        http_logs=als_pb2.StreamAccessLogsMessage.HTTPAccessLogEntries(log_entry=[entry])
    )
    with grpc.insecure_channel(billing.target) as ch:
        als_pb2_grpc.AccessLogServiceStub(ch).StreamAccessLogs(iter([msg]), timeout=5)
    assert billing.app is not None and billing.app.access_log.applied == 1
    with PolicyClient(billing.target, timeout=5) as pe:
        assert _check(pe, "e-2", "acct-e") == COST + RESERVED
