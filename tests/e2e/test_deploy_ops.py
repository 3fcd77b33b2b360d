"""deploy/monitoring and deploy/kubernetes, checked offline.

Monitoring: every metric the Grafana dashboard and the alert rules use is
exported by a running server (scraped here), each alert has a runbook entry in
docs/operations.md. Kubernetes: the manifests pass a strict schema check
(kubernetes-validate ships the schemas; no cluster, no network), the policies
ConfigMap is what scripts/gen_k8s_policies makes of policies/, and the
Deployment maps every ConfigMap key back to its path."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
K8S = ROOT / "deploy" / "kubernetes"
METRIC = re.compile(r"\bpolicy_engine_[a-z_]+\b")


def _alerts() -> list[dict[str, Any]]:
    doc = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dash = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return [t["expr"] for p in dash["panels"] for t in p["targets"]]


def _family(name: str) -> str:
    """The metric family a series name belongs to (histogram and counter suffixes off)."""
    for suffix in ("_bucket", "_count", "_sum", "_total"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def test_every_metric_used_is_exported(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "server"))
    from server_harness import ServerThread, write_policy

    from policy_engine.server.settings import ServerSettings

    st = ServerThread(
        ServerSettings(
            policies=write_policy(tmp_path / "p"), port=0, metrics_port=0, decision_log=str(tmp_path / "d.jsonl")
        )
    ).start()
    try:
        assert st.app is not None and st.app.metrics_port
        text = urllib.request.urlopen(f"http://127.0.0.1:{st.app.metrics_port}/metrics", timeout=5).read().decode()
    finally:
        st.stop()
    declared = {line.split()[2]: line.split()[3] for line in text.splitlines() if line.startswith("# TYPE ")}
    used = {m for e in [*(r["expr"] for r in _alerts()), *_dashboard_exprs()] for m in METRIC.findall(e)}
    assert len(used) >= 10
    for name in sorted(used):
        # a family is declared (# TYPE) even before it has a sample; counters as NAME_total
        kind = declared.get(name) or declared.get(_family(name))
        assert kind is not None, f"{name}: not exported (exported: {sorted(declared)})"
        if name.endswith("_bucket"):
            assert kind == "histogram", name
        if name.endswith("_total"):
            assert kind == "counter", name


def test_alerts_are_complete_and_have_runbooks() -> None:
    ops = (ROOT / "docs" / "operations.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", ops, re.M)}
    names = [r["alert"] for r in _alerts()]
    for wanted in ("StoreDown", "StoreErrors", "FailOpen", "ReloadFailing", "LatencyP99High", "DenyRateJump"):
        assert f"PolicyEngine{wanted}" in names
    for rule in _alerts():
        assert rule["labels"]["severity"] in ("page", "warn", "info"), rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
        url = rule["annotations"]["runbook_url"]
        assert url.startswith("docs/operations.md#") and url.split("#")[1] in anchors, (rule["alert"], url)


def test_dashboard_shape() -> None:
    dash = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    assert dash["uid"] == "policy-engine" and dash["templating"]["list"][0]["type"] == "datasource"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24 and p["targets"], p["title"]


# --- kubernetes -----------------------------------------------------------------------------

VALIDATE = [str(Path(sys.executable).with_name("kubernetes-validate")), "--strict", "--quiet"]
MANIFESTS = ["deployment.yaml", "service.yaml", "redis.yaml", "policies.yaml"]


def test_manifests_pass_a_strict_schema_check() -> None:
    run = subprocess.run([*VALIDATE, *(str(K8S / m) for m in MANIFESTS)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(MANIFESTS)


def test_the_schema_check_catches_a_mistake(tmp_path: Path) -> None:
    bad = tmp_path / "deployment.yaml"
    bad.write_text((K8S / "deployment.yaml").read_text().replace("  replicas: 2", "  replica: 2"))
    run = subprocess.run([*VALIDATE, str(bad)], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "replica" in run.stdout + run.stderr


def test_policies_configmap_is_current_and_mounted_whole(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_k8s_policies"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    cm = yaml.safe_load((K8S / "policies.yaml").read_text())
    deployment = yaml.safe_load((K8S / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "policies")
    assert volume["configMap"]["name"] == cm["metadata"]["name"]
    items = {i["key"]: i["path"] for i in volume["configMap"]["items"]}
    assert set(items) == set(cm["data"])
    # The folder the pod sees compiles to the shipped policy, version and all.
    folder = tmp_path / "mounted"
    for key, path in items.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(cm["data"][key])
    from policy_engine.policyset import load_policy_set

    assert load_policy_set(folder).version == load_policy_set(ROOT / "policies").version
    args = pod["containers"][0]["args"]
    assert "--policies=/etc/policy-engine/policies" in args
    assert pod["containers"][0]["volumeMounts"][0]["mountPath"] == "/etc/policy-engine/policies"
    workers = int(next(a for a in args if a.startswith("--workers=")).split("=")[1])
    assert workers > 1 and any(a.startswith("--store=redis://") for a in args)  # workers need a shared store
    ports = {p["containerPort"] for p in pod["containers"][0]["ports"]}
    assert {9464 + i for i in range(workers)} <= ports  # worker i serves metrics on 9464 + i


@pytest.mark.parametrize("manifest", MANIFESTS)
def test_manifests_are_plain_yaml(manifest: str) -> None:
    docs = [d for d in yaml.safe_load_all((K8S / manifest).read_text()) if d]
    assert docs and all({"apiVersion", "kind", "metadata"} <= set(d) for d in docs)
