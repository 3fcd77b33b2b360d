"""The signals policies can call, by name: each module marks its own with `@signal`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

SIGNALS: dict[str, Callable[..., Any]] = {}

F = TypeVar("F", bound=Callable[..., Any])


def signal(fn: F) -> F:
    """Make `fn` callable from policies under its own name (its signature is declared
    in dsl/functions.py). The function itself is returned: no wrapper, no cost."""
    SIGNALS[fn.__name__] = fn
    return fn
