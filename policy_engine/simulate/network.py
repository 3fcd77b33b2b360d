"""Where simulated traffic comes from: ASNs, address blocks, user agents.

The blocks are real public allocations of the named networks, chosen so that the
engine's embedded geo data places every address in the country we claim (a test
checks this), because the engine derives `client.country` from `client.ip` and
policies may mix CIDR sets, countries and ASNs.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Net:
    asn: int
    country: str
    prefix: str
    kind: str  # "hosting" or "residential"

    def first_last(self) -> tuple[int, int]:
        n = ipaddress.ip_network(self.prefix)
        return int(n.network_address), int(n.broadcast_address)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One client address with its derived attributes."""

    ip: str
    country: str
    asn: int


def _nets(kind: str, table: dict[int, list[tuple[str, str]]]) -> tuple[Net, ...]:
    return tuple(Net(asn, cc, p, kind) for asn, rows in table.items() for cc, p in rows)


# Cloud and VPS providers: where scripted clients, backends and surrogate fleets run.
HOSTING_NETS: tuple[Net, ...] = _nets("hosting", {
    16509: [("US", "3.94.144.0/20"), ("US", "54.160.32.0/20"), ("DE", "3.64.208.0/20"),
            ("IE", "34.241.80.0/20"), ("JP", "54.64.144.0/20")],            # Amazon
    14061: [("US", "159.203.208.0/20"), ("NL", "188.166.112.0/20"), ("SG", "159.65.0.0/20"),
            ("DE", "164.90.160.0/20"), ("GB", "178.62.32.0/20")],           # DigitalOcean
    24940: [("DE", "88.198.16.0/20"), ("FI", "95.216.192.0/20"), ("DE", "116.202.96.0/20")],  # Hetzner
    63949: [("US", "45.79.96.0/20"), ("US", "172.104.208.0/20"), ("DE", "139.162.128.0/20"),
            ("JP", "139.162.64.0/20")],                                       # Linode/Akamai
    20473: [("US", "45.32.128.0/20"), ("US", "149.28.80.0/20"), ("JP", "45.76.208.0/20"),
            ("NL", "95.179.144.0/20")],                                       # Vultr
    8075: [("US", "20.12.208.0/20"), ("US", "40.76.96.0/20"), ("IE", "52.164.96.0/20")],  # Microsoft
    396982: [("US", "34.72.112.0/20"), ("US", "35.186.112.0/20")],           # Google Cloud
})

# Consumer ISPs: where people (and residential proxy fleets) connect from.
RESIDENTIAL_NETS: tuple[Net, ...] = _nets("residential", {
    7922: [("US", "73.0.0.0/8"), ("US", "98.192.0.0/10")],      # Comcast
    7018: [("US", "99.0.0.0/10"), ("US", "107.192.0.0/10")],    # AT&T
    812: [("CA", "99.224.0.0/11"), ("CA", "174.114.128.0/20")],  # Rogers
    3320: [("DE", "79.192.0.0/10"), ("DE", "87.128.0.0/10")],   # Deutsche Telekom
    2856: [("GB", "86.128.0.0/10"), ("GB", "81.128.0.0/12")],   # BT
    5089: [("GB", "82.0.0.0/11"), ("GB", "86.0.0.0/11")],       # Virgin Media
    3215: [("FR", "86.192.0.0/11"), ("FR", "90.117.64.0/20")],  # Orange
    12322: [("FR", "82.126.48.0/20"), ("FR", "82.65.144.0/20")],  # Free
    3352: [("ES", "80.24.0.0/13"), ("ES", "83.32.0.0/11")],     # Telefonica
    33915: [("NL", "84.24.0.0/13"), ("NL", "62.194.0.0/15")],   # Ziggo
    6830: [("CH", "62.202.0.0/15"), ("PL", "89.64.0.0/12")],    # Liberty Global
    4713: [("JP", "153.128.0.0/10"), ("JP", "114.144.0.0/12")],  # NTT OCN
    4766: [("KR", "121.128.0.0/10"), ("KR", "175.192.0.0/10")],  # Korea Telecom
    4134: [("CN", "113.64.0.0/10"), ("CN", "14.16.0.0/12")],    # China Telecom
    55836: [("IN", "49.47.192.0/20"), ("IN", "157.32.224.0/20")],  # Reliance Jio
    28573: [("BR", "177.0.0.0/12")],                            # Claro
    8151: [("MX", "189.128.0.0/10")],                           # Telmex
    1221: [("AU", "1.120.0.0/13")],                             # Telstra
    9121: [("TR", "78.160.0.0/11"), ("TR", "88.224.0.0/11")],   # Turk Telekom
    45899: [("VN", "113.160.0.0/11"), ("VN", "14.160.0.0/11")],  # VNPT
    17974: [("ID", "36.64.0.0/11"), ("ID", "180.240.0.0/13")],  # Telkom Indonesia
})

ALL_NETS: tuple[Net, ...] = HOSTING_NETS + RESIDENTIAL_NETS

# Hosting networks named in public extraction reports: cheap VPS and cloud.
SURROGATE_HOSTING_ASNS: tuple[int, ...] = (16509, 14061, 24940, 63949, 20473)
ENTERPRISE_CLOUD_ASNS: tuple[int, ...] = (8075, 16509, 396982)

# Weighted by a rough share of developer traffic; most benign users are here.
BENIGN_COUNTRIES: tuple[tuple[str, float], ...] = (
    ("US", 0.34), ("GB", 0.07), ("DE", 0.07), ("IN", 0.08), ("FR", 0.05), ("CA", 0.04),
    ("JP", 0.05), ("KR", 0.03), ("BR", 0.04), ("NL", 0.03), ("ES", 0.03), ("AU", 0.03),
    ("PL", 0.02), ("MX", 0.02), ("TR", 0.02), ("ID", 0.02), ("VN", 0.01), ("CH", 0.01),
)

# UTC offset (hours) per country, for diurnal activity in local time.
TZ_OFFSET: dict[str, float] = {
    "US": -6, "CA": -5, "MX": -6, "BR": -3, "GB": 0, "IE": 0, "DE": 1, "FR": 1, "ES": 1,
    "NL": 1, "CH": 1, "PL": 1, "FI": 2, "TR": 3, "IN": 5.5, "VN": 7, "ID": 7, "CN": 8,
    "SG": 8, "JP": 9, "KR": 9, "AU": 10,
}


def nets_where(kind: str | None = None, asns: tuple[int, ...] | None = None,
               country: str | None = None) -> list[Net]:
    out = [n for n in ALL_NETS
           if (kind is None or n.kind == kind)
           and (asns is None or n.asn in asns)
           and (country is None or n.country == country)]
    if not out:
        raise ValueError(f"no network matches kind={kind} asns={asns} country={country}")
    return out


def random_ip(rng: random.Random, net: Net) -> str:
    """A host address inside `net`, never the .0 or .255 of its /24."""
    first, last = net.first_last()
    while True:  # at most a few rounds: 2 of 256 addresses are rejected
        n = rng.randint(first, last)
        if 0 < (n & 0xFF) < 255:
            return str(ipaddress.IPv4Address(n))


def random_slash24(rng: random.Random, net: Net) -> Net:
    """A /24 inside `net`: fleets rent a few small blocks, not whole networks."""
    first, last = net.first_last()
    base = rng.randint(first, last) & ~0xFF
    return Net(net.asn, net.country, f"{ipaddress.IPv4Address(base)}/24", net.kind)


def endpoint(rng: random.Random, net: Net) -> Endpoint:
    return Endpoint(random_ip(rng, net), net.country, net.asn)


def residential_endpoint(rng: random.Random, country: str) -> Endpoint:
    return endpoint(rng, rng.choice(nets_where("residential", country=country)))


SDK_AGENTS: tuple[str, ...] = (
    "sdk-python/1.51.0", "sdk-python/1.47.1", "sdk-node/4.67.3", "sdk-node/4.52.0",
    "sdk-go/0.9.2", "sdk-java/2.3.0", "langchain/0.3.7 sdk-python/1.51.0",
    "llamaindex/0.11.20 sdk-python/1.47.1", "curl/8.5.0",
)
SCRIPT_AGENTS: tuple[str, ...] = (
    "python-httpx/0.27.2", "python-requests/2.32.3", "aiohttp/3.10.10",
    "sdk-python/1.51.0", "Go-http-client/2.0",
)
BROWSER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0",
)
