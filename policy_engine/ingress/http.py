"""An HTTP request as every gateway can describe it, whatever brought it here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TlsIdentity:
    """The client certificate the front proxy verified (mutual TLS)."""

    principal: str  # its URI SAN, else its subject, as the proxy reports it
    certificate: str = ""  # PEM, when the proxy forwards it


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str  # with the query string
    headers: Mapping[str, str]  # lower-case names; repeated headers joined with ","
    body: bytes = b""  # possibly cut short: compare with content-length
    peer: str | None = None  # the TCP peer's address (an IP, maybe with a port)
    tls: TlsIdentity | None = None
    id: str | None = None  # the front proxy's own request id, if it has one
    time: float | None = None  # when the front proxy received it (epoch seconds)


def header_map(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-case header map from (name, value) pairs; repeated headers joined with ","."""
    out: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        out[key] = f"{out[key]},{value}" if key in out else value
    return out
