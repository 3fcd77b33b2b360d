#!/usr/bin/env python3
"""CPU time per call of the ext_authz and PolicyService Check handlers, in process.

    .venv/bin/python tests/benchmarks/inproc_check.py                        # both apis, 20,000 calls each
    .venv/bin/python tests/benchmarks/inproc_check.py --api ext_authz --calls 50000
    .venv/bin/python tests/benchmarks/inproc_check.py --explain              # Check with explain set
    .venv/bin/python tests/benchmarks/inproc_check.py --profile out.prof     # cProfile of the timed loop
    .venv/bin/python tests/benchmarks/inproc_check.py --read-states          # also as if every state were read

The server parts are built as `policy_engine.server.app.create_server` builds them
(the shipped policies, the memory store, metrics, store health, no decision log)
and each handler is awaited directly with the request bytes load_grpc.py sends:
no gRPC, no sockets, so what is measured is ours alone. The figure is
`time.process_time` over the timed loop divided by the calls (CPU time, which
swings less than wall time on a shared machine), after a warm-up.

`--read-states` measures in alternating blocks in one process (which swings
far less than two processes do) the handler as it is and the handler with every
decision's limit and measure states read right after the engine decides, as the
decision log or explain would: what the engine saves by building them only
when read.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))

from load_grpc import CONTEXT, default_policies, ext_authz_request  # noqa: E402

from policy_engine.engine import Engine  # noqa: E402
from policy_engine.policyset import load_policy_set  # noqa: E402
from policy_engine.server.envoy_mapping import EnvoyMapper, EnvoyMappingSettings  # noqa: E402
from policy_engine.server.metrics import Metrics  # noqa: E402
from policy_engine.server.servicers import AuthorizationServicer, Decider, PolicyServicer  # noqa: E402
from policy_engine.server.store_health import StoreHealth  # noqa: E402
from policy_engine.state.memory import MemoryStore  # noqa: E402
from policy_engine.wire import context_to_check_request  # noqa: E402


def handlers(policies: Path) -> dict[str, Any]:
    """api name -> its handler (an async function of the request bytes and a context)."""
    policy = load_policy_set(policies)
    store = MemoryStore()
    engine = Engine(policy, store)
    decider = Decider(engine, Metrics(policy.version), None, StoreHealth(store, "memory"))
    authz = AuthorizationServicer(decider, EnvoyMapper(EnvoyMappingSettings()))
    check = PolicyServicer(decider, lambda: {})
    return {"ext_authz": authz.Check, "check": check.Check}


async def run(handler: Any, raw: bytes, calls: int, profile: cProfile.Profile | None) -> float:
    """µs of CPU per call over `calls` timed calls (after a tenth as many untimed)."""
    for _ in range(max(1, calls // 10)):
        await handler(raw, None)
    if profile is not None:
        profile.enable()
    t0 = time.process_time()
    for _ in range(calls):
        await handler(raw, None)
    cpu = time.process_time() - t0
    if profile is not None:
        profile.disable()
    return cpu / calls * 1e6


async def alternate(api: str, raw: bytes, calls: int, blocks: int) -> dict[str, list[float]]:
    """µs of CPU per call in alternating blocks: as served, and with every state read."""
    decide_sync = Engine.decide_sync

    def decide_and_read(self: Engine, *args: Any, **kwargs: Any) -> Any:
        d = decide_sync(self, *args, **kwargs)
        list(d.limits), list(d.measures)
        return d

    out: dict[str, list[float]] = {"as served": [], "states read": []}
    for _ in range(blocks):
        for name, fn in (("as served", decide_sync), ("states read", decide_and_read)):
            Engine.decide_sync = fn  # type: ignore[method-assign]
            handler = handlers(default_policies())[api]
            out[name].append(await run(handler, raw, calls, None))
    Engine.decide_sync = decide_sync  # type: ignore[method-assign]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--api", choices=("ext_authz", "check", "both"), default="both")
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--explain", action="store_true", help="set explain on the Check requests")
    ap.add_argument("--policies", type=Path, default=None)
    ap.add_argument("--profile", type=Path, default=None, help="write a cProfile of the timed loops here")
    ap.add_argument("--read-states", action="store_true", help="compare with every state read (alternating blocks)")
    ap.add_argument("--blocks", type=int, default=8, help="blocks of each kind with --read-states")
    args = ap.parse_args()
    requests = {
        "ext_authz": ext_authz_request(),
        "check": context_to_check_request(CONTEXT, explain=args.explain).SerializeToString(),
    }
    apis = ("ext_authz", "check") if args.api == "both" else (args.api,)
    profile = cProfile.Profile() if args.profile is not None else None
    if args.read_states:
        for api in apis:
            for name, blocks in asyncio.run(alternate(api, requests[api], args.calls, args.blocks)).items():
                print(f"{api} {name}: min {min(blocks):.1f}, median {sorted(blocks)[len(blocks) // 2]:.1f} µs CPU/call")
        return
    for api in apis:
        # A fresh store per api, so the second does not start from the first's counters.
        handler = handlers(args.policies or default_policies())[api]
        us = asyncio.run(run(handler, requests[api], args.calls, profile))
        print(f"{api}: {us:.1f} µs CPU/call over {args.calls} calls")
    if profile is not None:
        profile.dump_stats(args.profile)


if __name__ == "__main__":
    main()
