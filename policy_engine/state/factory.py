"""Choose a store from the command line: memory by default, Redis by URL."""

from __future__ import annotations

from policy_engine.state.base import Store


async def open_store(redis_url: str | None, **options: object) -> Store:
    if not redis_url:
        from policy_engine.state.memory import MemoryStore

        return MemoryStore()
    from policy_engine.state.redis import RedisStore

    return RedisStore.from_url(redis_url, **options)  # type: ignore[arg-type]
