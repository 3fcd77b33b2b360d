"""Open a limit store from a URL: the one place that knows every store backend.

    memory://                      the bounded in-process store (the default)
    memory://?max_keys=N&max_receipts=N&receipt_ttl=SECONDS
    redis://host:port/db           one Redis; also rediss:// (TLS) and unix:///path.sock
    redis+cluster://host:port      Redis Cluster; also rediss+cluster://

A backend is a module with `open_url(url, options) -> Store` and
`check_url(url)` (a StoreURLError for a URL it cannot open, before anything
connects), registered below under its URL schemes; it is imported only when
a URL names it. Every backend
runs the shared contract suite (tests/engine/test_store_contract.py).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, cast
from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

from policy_engine.state.base import DEFAULT_DEADLINE, Store
from policy_engine.state.sync_mode import SyncMode

DEFAULT_URL = "memory://"
LOCAL_FIRST = "policy_engine.state.local_first"  # wraps a shared store when limits are batched


class StoreURLError(ValueError):
    """A store URL that names no backend, or options the backend does not take."""


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """What every caller may ask of any backend (backend-specific settings go in the URL)."""

    deadline: float = DEFAULT_DEADLINE  # seconds per store call
    prefix: str = "pe"  # namespace of the keys in a shared store
    sync: SyncMode = SyncMode()  # exact, or batched (local-first) limits on a shared store


@dataclass(frozen=True, slots=True)
class Backend:
    module: str  # defines open_url(url: str, options: StoreOptions) -> Store
    shared: bool  # state is shared between processes (what `serve --workers N` needs)


_BACKENDS: dict[str, Backend] = {}


def register(scheme: str, module: str, *, shared: bool) -> None:
    """Make `scheme://...` URLs open a store from `module`."""
    _BACKENDS[scheme] = Backend(module, shared)


register("memory", "policy_engine.state.memory", shared=False)
for _scheme in ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster"):
    register(_scheme, "policy_engine.state.redis", shared=True)


def schemes() -> list[str]:
    return list(_BACKENDS)


def backend_of(url: str | None) -> Backend:
    """The backend a URL names (None: the default store)."""
    scheme, sep, _ = (url or DEFAULT_URL).partition("://")
    backend = _BACKENDS.get(scheme.lower()) if sep else None
    if backend is None:
        known = ", ".join(f"{s}://" for s in _BACKENDS)
        raise StoreURLError(f"{url!r} is not a store URL (expected one of {known})")
    return backend


def validate_url(url: str | None) -> Backend:
    """The backend of `url`, after the backend has read the whole URL (host, port, path,
    options): StoreURLError for anything it cannot open. Connects to nothing."""
    backend = backend_of(url)
    check = cast(Callable[[str], None], importlib.import_module(backend.module).check_url)
    check(url or DEFAULT_URL)
    return backend


def redact(url: str | None) -> str:
    """The URL as logs and status show it: a password replaced by ***."""
    url = url or DEFAULT_URL
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def open_store(url: str | None = None, options: StoreOptions | None = None) -> Store:
    """A new store for `url` (None: in memory). Raises StoreURLError for a URL no
    backend takes; nothing is connected yet (`Store.check` tries)."""
    backend = backend_of(url)
    options = options or StoreOptions()
    check_sync(url, options.sync)
    opener = cast(Callable[[str, StoreOptions], Store], importlib.import_module(backend.module).open_url)
    store = opener(url or DEFAULT_URL, options)
    if not options.sync.batched:
        return store
    # imported by name, like the backends (the local-first store is built on two of them)
    wrap = cast(Callable[[Store, SyncMode], Store], importlib.import_module(LOCAL_FIRST).wrap)
    return wrap(store, options.sync)


def check_sync(url: str | None, sync: SyncMode) -> None:
    """StoreURLError unless the store can keep `sync`: batched limits need a shared store."""
    if sync.batched and not backend_of(url).shared:
        raise StoreURLError(
            f"store_sync {sync.describe()}: batched limits exchange their counts through a shared store "
            f"(redis://, redis+cluster://), not {redact(url)}"
        )


def url_options(url: str, allowed: dict[str, Callable[[str], Any]]) -> dict[str, Any]:
    """The query options of a URL without host or path (e.g. memory://?max_keys=10),
    each converted by `allowed[name]`; StoreURLError for anything else."""
    parts = urlsplit(url)
    if parts.netloc or parts.path.strip("/"):
        raise StoreURLError(f"{url!r}: {parts.scheme}:// takes no host or path, only ?options")
    out: dict[str, Any] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        convert = allowed.get(name)
        if convert is None:
            raise StoreURLError(f"{url!r}: unknown option `{name}` (options: {', '.join(allowed)})")
        try:
            out[name] = convert(value)
        except ValueError:
            raise StoreURLError(f"{url!r}: option `{name}` takes a number, not {value!r}") from None
    return out
