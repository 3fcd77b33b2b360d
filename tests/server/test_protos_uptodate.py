"""The committed stubs in policy_engine/proto match what scripts/gen_protos makes of grpc/."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "policy_engine" / "proto"


def _tree(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    out = tmp_path / "proto"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos"), "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    fresh, committed = _tree(out), _tree(COMMITTED)
    assert fresh, "gen_protos produced nothing"
    missing = sorted(set(fresh) - set(committed))
    stale = sorted(set(committed) - set(fresh))
    changed = sorted(n for n in set(fresh) & set(committed) if not filecmp.cmp(fresh[n], committed[n], shallow=False))
    assert not (missing or stale or changed), (
        "policy_engine/proto is out of date with grpc/; run scripts/gen_protos and commit.\n"
        f"missing: {missing}\nstale: {stale}\nchanged: {changed}"
    )


def test_stubs_import_with_fully_qualified_names() -> None:
    from policy_engine.proto.envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
    from policy_engine.proto.envoy.service.ratelimit.v3 import rls_pb2_grpc
    from policy_engine.proto.policyengine.v1 import policy_pb2_grpc

    # Descriptor names stay the upstream ones: that is what Envoy and reflection see.
    assert external_auth_pb2.DESCRIPTOR.name == "envoy/service/auth/v3/external_auth.proto"
    assert external_auth_pb2.CheckResponse.DESCRIPTOR.full_name == "envoy.service.auth.v3.CheckResponse"
    assert hasattr(external_auth_pb2_grpc, "AuthorizationServicer")
    assert hasattr(rls_pb2_grpc, "RateLimitServiceServicer")
    assert hasattr(policy_pb2_grpc, "PolicyServiceStub")
    import grpc

    assert hasattr(grpc, "insecure_channel"), "a grpc/ package must not hide grpcio"
