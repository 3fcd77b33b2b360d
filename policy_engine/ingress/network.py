"""The client's address: from a trusted front proxy's header, trusted forwarding hops, or the TCP peer."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from functools import lru_cache

# Set by Envoy with use_remote_address; a gateway with no proxy in front strips it.
EXTERNAL_ADDRESS_HEADER = "x-envoy-external-address"


@lru_cache(maxsize=65536)  # clients come back: parsing and printing an address costs ~3 µs
def parse_ip(text: str) -> str | None:
    """A canonical IP from an address that may carry a port or brackets ('[::1]:80', '1.2.3.4:5')."""
    t = text.strip()
    if t.startswith("["):
        t = t[1:].split("]", 1)[0]
    elif t.count(":") == 1:
        t = t.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(t))
    except ValueError:
        return None


def client_ip(
    peer: str | None, headers: Mapping[str, str], trust_external_address: bool, xff_num_trusted_hops: int | None
) -> str | None:
    """`x-envoy-external-address` (when trusted), then the x-forwarded-for entry
    `xff_num_trusted_hops` from the right (None: ignore the header), then the peer."""
    if trust_external_address and (v := headers.get(EXTERNAL_ADDRESS_HEADER)):
        if ip := parse_ip(v):
            return ip
    if xff_num_trusted_hops is not None and (xff := headers.get("x-forwarded-for")):
        hops = [h for h in (p.strip() for p in xff.split(",")) if h]
        i = len(hops) - 1 - xff_num_trusted_hops
        # Fewer hops than trusted proxies: the header cannot be trusted; use the peer.
        if i >= 0 and (ip := parse_ip(hops[i])):
            return ip
    return parse_ip(peer) if peer else None
