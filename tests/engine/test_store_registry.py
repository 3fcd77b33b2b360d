"""Stores opened by URL (`--store`, `--redis` its alias): the registry, its errors,
a backend added by registration alone, and the commands that take a store."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path
from collections.abc import Sequence

import pytest

from policy_engine.engine import Engine
from policy_engine.context import Context
from policy_engine.policyset import load_policy_set
from policy_engine.server.settings import SettingsError, load_settings
from policy_engine.state import factory
from policy_engine.state.base import Hit, HitResult, Store
from policy_engine.state.factory import StoreOptions, StoreURLError, open_store
from policy_engine.state.memory import MemoryStore
from policy_engine.state.redis import RedisStore

POLICYCTL = str(Path(sys.executable).with_name("policyctl"))
SMALL = Path(__file__).parent / "fixtures" / "replay_small"
PER_HOUR = 'limit per_hour {\n  key account.id\n  count\n  window 1h\n  max 2\n  reason "two an hour"\n}\n'
T0 = 1_764_300_000.0


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([POLICYCTL, *args], input=stdin, capture_output=True, text=True, timeout=120)


def request(i: int, account: str = "acct-1") -> dict[str, object]:
    return {"request": {"id": f"r-{i}", "ts": T0 + i}, "account": {"id": account}}


# --- the registry ------------------------------------------------------------------------


def test_urls_open_their_backend() -> None:
    assert isinstance(open_store(), MemoryStore)
    assert isinstance(open_store("memory://"), MemoryStore)
    m = open_store("memory://?max_keys=10&max_receipts=5&receipt_ttl=60")
    assert isinstance(m, MemoryStore) and (m.max_keys, m.max_receipts, m.receipt_ttl) == (10, 5, 60.0)
    for url in (
        "redis://127.0.0.1:1/0",
        "rediss://127.0.0.1:1",
        "unix:///tmp/none.sock",
        "redis+cluster://127.0.0.1:1",
        "REDIS://127.0.0.1:1",
    ):
        s = open_store(url, StoreOptions(deadline=0.5, prefix="p"))
        assert isinstance(s, RedisStore) and s.deadline == 0.5, url  # nothing is connected yet
    assert factory.backend_of("memory://").shared is False
    assert factory.backend_of("redis+cluster://h:1").shared is True


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nope://x", "'nope://x' is not a store URL (expected one of memory://, redis://"),
        ("127.0.0.1:6379", "is not a store URL"),
        ("memory://somewhere", "memory:// takes no host or path"),
        ("memory://?max_key=1", "unknown option `max_key` (options: max_keys, max_receipts, receipt_ttl)"),
        ("memory://?max_keys=many", "option `max_keys` takes a number, not 'many'"),
    ],
)
def test_bad_urls_say_why(url: str, message: str) -> None:
    with pytest.raises(StoreURLError) as e:
        open_store(url)
    assert message in str(e.value)


def test_sync_capability_is_declared_by_the_store() -> None:
    mem = MemoryStore()
    assert mem.as_sync() is mem
    assert RedisStore.from_url("redis://127.0.0.1:1").as_sync() is None
    policy = load_policy_set(SMALL)
    assert Engine(policy, mem).synchronous
    assert not Engine(policy, RedisStore.from_url("redis://127.0.0.1:1")).synchronous


class TallyStore(Store):
    """A new backend in a few lines: a memory store that counts its calls (async only)."""

    backend = "tally"

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.calls = 0

    async def acquire(
        self, hits: Sequence[Hit], now: float, *, admitted: bool = True, request_id: str | None = None
    ) -> list[HitResult]:
        self.calls += 1
        return self.inner.acquire_sync(hits, now, admitted=admitted, request_id=request_id)

    async def reconcile(self, request_id: str, actual: dict[str, float], now: float) -> bool:
        return self.inner.reconcile_sync(request_id, actual, now)

    async def close(self) -> None:
        await self.inner.close()


def open_url(url: str, options: StoreOptions) -> TallyStore:
    return TallyStore()


def test_a_new_backend_is_a_module_and_a_registration(tmp_path: Path) -> None:
    factory.register("tally", __name__, shared=False)
    try:
        store = open_store("tally://")
        assert isinstance(store, TallyStore)
        (tmp_path / "main.policy").write_text(PER_HOUR)
        engine = Engine(load_policy_set(tmp_path), store)
        assert not engine.synchronous  # the default: no synchronous API declared

        async def decide() -> list[str]:
            return [(await engine.decide(Context.from_dict(request(i)), T0 + i)).effect.label for i in range(3)]

        assert asyncio.run(decide()) == ["allow", "allow", "throttle"]
        assert store.calls == 3
    finally:
        del factory._BACKENDS["tally"]


# --- the commands ----------------------------------------------------------------------------


def test_eval_store_flag_and_its_redis_alias_share_state(tmp_path: Path, redis_server) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "main.policy").write_text(PER_HOUR)
    account = f"acct-{uuid.uuid4().hex}"  # the session's Redis is shared with other tests
    effects = []
    for i, flag in enumerate(("--store", "--redis", "--store")):
        r = run(
            "eval",
            "--policies",
            str(tmp_path),
            "--request",
            "-",
            flag,
            redis_server.url,
            stdin=json.dumps(request(i, account)),
        )
        assert r.returncode == 0, r.stderr
        effects.append(json.loads(r.stdout)["effect"])
    assert effects == ["allow", "allow", "throttle"]  # three processes, one store


def test_eval_rejects_a_bad_store_url(tmp_path: Path) -> None:
    (tmp_path / "main.policy").write_text(PER_HOUR)
    r = run("eval", "--policies", str(tmp_path), "--request", "-", "--store", "mem://", stdin=json.dumps(request(0)))
    assert r.returncode == 2 and "error: --store: 'mem://' is not a store URL" in r.stderr
    r = run(
        "eval",
        "--policies",
        str(tmp_path),
        "--request",
        "-",
        "--store",
        "memory://",
        "--redis",
        "redis://h",
        stdin=json.dumps(request(0)),
    )
    assert r.returncode == 2 and "give --store or --redis (the same option), not both" in r.stderr
    r = run(
        "eval",
        "--policies",
        str(tmp_path),
        "--request",
        "-",
        "--store",
        "memory://?max_keys=5",
        stdin=json.dumps(request(0)),
    )
    assert r.returncode == 0 and json.loads(r.stdout)["effect"] == "allow"


def test_replay_on_a_cluster_by_url_matches_memory_and_cleans_up(tmp_path: Path, redis_cluster) -> None:  # type: ignore[no-untyped-def]
    lines = [json.dumps({**request(i), "account": {"id": f"acct-{i % 3}"}}) for i in range(40)]
    traffic = tmp_path / "traffic.jsonl"
    traffic.write_text("\n".join(lines) + "\n")
    cluster = redis_cluster[0].url.replace("redis://", "redis+cluster://")
    outs = {}
    for name, extra in (("memory", []), ("cluster", ["--store", cluster])):
        outs[name] = tmp_path / f"{name}.jsonl"
        r = run("replay", "-p", str(SMALL), str(traffic), "-o", str(outs[name]), *extra)
        assert r.returncode == 0, r.stderr
        store = "redis" if name == "cluster" else "memory"
        assert "40 requests replayed" in r.stderr and f"on the {store} store" in r.stderr
    assert outs["memory"].read_bytes() == outs["cluster"].read_bytes()
    for node in redis_cluster:  # the replay's own prefix is gone from every node
        assert node.cli("--scan", "--pattern", "pe-replay-*").strip() == ""


# --- serve settings ----------------------------------------------------------------------


def test_serve_settings_take_store_or_its_former_name(tmp_path: Path) -> None:
    assert load_settings(policies=tmp_path).store is None
    assert load_settings(policies=tmp_path, store="redis://h:1").store == "redis://h:1"
    s = load_settings(policies=tmp_path, redis="redis://h:1")
    assert (s.store, s.redis) == ("redis://h:1", None)
    (tmp_path / "pe.toml").write_text('[server]\npolicies = "."\nredis = "redis://h:2"\n')
    assert load_settings(tmp_path / "pe.toml").store == "redis://h:2"
    assert load_settings(policies=tmp_path, workers=2, store="redis+cluster://h:1").workers == 2
    with pytest.raises(SettingsError, match="needs --redis URL \\(or another shared --store\\)"):
        load_settings(policies=tmp_path, workers=2, store="memory://")
    with pytest.raises(SettingsError, match="store: .*'kafka://h' is not a store URL"):
        load_settings(policies=tmp_path, store="kafka://h")
    with pytest.raises(SettingsError, match="give the store URL once"):
        load_settings(policies=tmp_path, store="redis://a", redis="redis://b")
