"""Time zone names as the language accepts them: IANA names (`Europe/Paris`,
`America/New_York`, `UTC`), checked when a policy loads so that a typo is an
error with a suggestion rather than a failure on the first request."""

from __future__ import annotations

import functools
import zoneinfo

from dsl.diagnostics import did_you_mean


@functools.lru_cache(maxsize=1)
def _names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@functools.lru_cache(maxsize=256)
def zone(name: str) -> zoneinfo.ZoneInfo | None:
    """The time zone of that IANA name, or None when there is none."""
    if not name or name != name.strip() or name.startswith("/") or ".." in name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None


def zone_hint(name: str) -> str:
    """What to write instead of an unknown time zone name."""
    names = _names()
    by_city = {n.rsplit("/", 1)[-1].lower(): n for n in names}
    city = by_city.get(name.replace(" ", "_").lower())
    if city is not None:
        return f"did you mean `{city}`?"
    return did_you_mean(name, sorted(names)) or 'use an IANA time zone name such as "Europe/Paris" or "UTC"'
