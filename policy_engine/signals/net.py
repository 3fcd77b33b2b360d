"""Network signals: address prefixes, CIDR sets, country and AS number.

Addresses arrive as text from the request. Parsing is cached in bounded LRUs
(a server sees the same clients again and again); an invalid address gives
None, never an exception. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) counts
as the IPv4 address, since that is what a dual-stack proxy hands on.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import threading
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from .registry import signal

_CACHE = 65_536  # distinct addresses (and address/prefix pairs) kept per LRU
_BITS = {4: 32, 6: 128}


@lru_cache(maxsize=_CACHE)
def parse_ip(ip: str) -> tuple[int, int] | None:
    """(version, integer value) of a textual address, or None if it is not one."""
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big")
    except (OSError, ValueError, TypeError):
        pass
    try:
        value = int.from_bytes(socket.inet_pton(socket.AF_INET6, ip), "big")
    except (OSError, ValueError, TypeError):
        return None
    if value >> 32 == 0xFFFF:
        return 4, value & 0xFFFFFFFF
    return 6, value


def _to_text(version: int, value: int) -> str:
    if version == 4:
        return socket.inet_ntop(socket.AF_INET, value.to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))


@lru_cache(maxsize=_CACHE)
def _prefix(ip: str, bits: int) -> str | None:
    parsed = parse_ip(ip)
    if parsed is None:
        return None
    version, value = parsed
    width = _BITS[version]
    bits = min(bits, width)
    network = value >> (width - bits) << (width - bits)
    return f"{_to_text(version, network)}/{bits}"


@signal
def ip_prefix(ip: str | None, bits: int | None) -> str | None:
    """The address's network as CIDR text, e.g. ("203.0.113.9", 24) -> "203.0.113.0/24".

    `bits` above the family's width is clamped (an IPv4 address asked for /48
    gives its /32), so one call can serve both families. A negative `bits` or
    an invalid address gives None.
    """
    if ip is None or bits is None or bits < 0:
        return None
    return _prefix(ip, bits)


# --- CIDR sets --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ranges:
    """Sorted, disjoint, merged [start, end] integer ranges of one family."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def contains(self, value: int) -> bool:
        i = bisect_right(self.starts, value) - 1
        return i >= 0 and value <= self.ends[i]


def _merge(ranges: list[tuple[int, int]]) -> _Ranges:
    starts: list[int] = []
    ends: list[int] = []
    for start, end in sorted(ranges):
        if ends and start <= ends[-1] + 1:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return _Ranges(tuple(starts), tuple(ends))


@dataclass(frozen=True, slots=True)
class CidrSet:
    """A set of networks with O(log n) membership (bisect over merged ranges)."""

    source: str
    networks: tuple[str, ...]
    _v4: _Ranges = field(repr=False)
    _v6: _Ranges = field(repr=False)

    def __len__(self) -> int:
        return len(self.networks)

    def __hash__(self) -> int:
        # Hashed at every cached signal call (ip_in): not all its networks each time.
        return hash((self.source, len(self.networks)))

    def __contains__(self, ip: object) -> bool:
        return isinstance(ip, str) and ip_in(ip, self) is True

    def contains_value(self, version: int, value: int) -> bool:
        return (self._v4 if version == 4 else self._v6).contains(value)


def compile_cidrs(lines: list[str], source: str) -> CidrSet:
    """Compile CIDRs (or bare addresses), one per line; `#` comments, blank lines skipped.

    Host bits are allowed and dropped ("10.1.2.3/8" is 10.0.0.0/8); anything
    that is not an address or a network raises ValueError naming source:line.
    """
    ranges: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
    networks: list[str] = []
    for number, raw in enumerate(lines, start=1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError as err:
            raise ValueError(f"{source}:{number}: invalid CIDR {text!r}: {err}") from None
        start, end = int(net.network_address), int(net.broadcast_address)
        if net.version == 6 and start >> 32 == 0xFFFF and net.prefixlen >= 96:
            ranges[4].append((start & 0xFFFFFFFF, end & 0xFFFFFFFF))  # ::ffff:0:0/96 space
        else:
            ranges[net.version].append((start, end))
        networks.append(str(net))
    return CidrSet(source, tuple(networks), _merge(ranges[4]), _merge(ranges[6]))


@signal
def ip_in(ip: str | None, nets: CidrSet | None) -> bool | None:
    """Whether the address is in one of the set's networks (None for an invalid address)."""
    if ip is None or nets is None:
        return None
    parsed = parse_ip(ip)
    if parsed is None:
        return None
    return nets.contains_value(*parsed)


# --- geolocation ------------------------------------------------------------
#
# geoip2fast ships MaxMind GeoLite2 country and ASN data (IPv4 and IPv6) in
# its wheel; we load "geoip2fast-asn-ipv6.dat.gz" once, lazily, on the first
# lookup (about 0.2 s and 100 MB). Its ASN data holds organisation names but
# no AS numbers, so geo_asn maps names to numbers through asn_orgs.json (well
# known cloud and hosting networks) and returns None for other networks;
# asn_org gives the name itself. geoip2fast keeps its tables in module
# globals, so one process has one database.

GEOIP_DATA_FILE = "geoip2fast-asn-ipv6.dat.gz"
_geo_lock = threading.Lock()
_geo_db: Any = None


def _database() -> Any:
    global _geo_db
    if _geo_db is None:
        with _geo_lock:
            if _geo_db is None:
                from geoip2fast import GeoIP2Fast

                _geo_db = GeoIP2Fast(verbose=False, geoip2fast_data_file=GEOIP_DATA_FILE)
    return _geo_db


def _is_public(version: int, value: int) -> bool:
    addr = ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)
    return addr.is_global


@lru_cache(maxsize=_CACHE)
def _geo(ip: str) -> tuple[str | None, str | None]:
    """(ISO country code, AS organisation name) of a public address."""
    parsed = parse_ip(ip)
    if parsed is None or not _is_public(*parsed):
        return None, None
    result = _database().lookup(_to_text(*parsed))
    code = result.country_code
    country = code if isinstance(code, str) and len(code) == 2 and code.isalpha() else None
    org = result.asn_name if isinstance(result.asn_name, str) else ""
    return country, (org if org and org != "<unknown>" else None)


def _load_asn_orgs() -> dict[str, int]:
    text = resources.files(__package__).joinpath("asn_orgs.json").read_text("utf-8")
    orgs = json.loads(text)["orgs"]
    return {str(name): int(asn) for name, asn in orgs.items()}


ASN_BY_ORG: dict[str, int] = _load_asn_orgs()


@signal
def geo_country(ip: str | None) -> str | None:
    """ISO 3166 alpha-2 country of a public address; None if private, reserved or unknown."""
    if ip is None:
        return None
    return _geo(ip)[0]


def asn_org(ip: str | None) -> str | None:
    """The AS organisation name of a public address, as the GeoLite2 data spells it."""
    if ip is None:
        return None
    return _geo(ip)[1]


@signal
def geo_asn(ip: str | None) -> int | None:
    """AS number of a public address on a well-known network (see asn_orgs.json), else None."""
    org = asn_org(ip)
    return None if org is None else ASN_BY_ORG.get(org)


# --- network kind -------------------------------------------------------------
# What kind of network an address belongs to, read from its AS organisation
# name. The embedded data carries names, not a type, so the kind comes from
# words that universities, national research networks and hosting providers
# put in their names. It is a hint, not a registry: an unmatched name is
# "other", never a guess.
_EDUCATION = re.compile(
    r"univers(?:ity|idad|idade|ité|ite|ität|itat|itas|ita|iteit|itet)\b|\bcollege\b|\bschool\b|\bacadem(?:y|ic|ia)\b"
    r"|polytechn|hochschule|\bcollège\b|\bécole\b|\bfaculty\b|\binstitute of technology\b|\beducation"
    r"|research (?:and|&) education|\bNREN\b|\bJisc\b|^SWITCH$|\bDFN\b|\bRENATER\b|\bGARR\b|^SURF\b|\bAARNet\b"
    r"|\bInternet2\b|\bCERNET\b|\bKREONET\b|\bRedIRIS\b|\bFunet\b|\bNORDUnet\b|-EDU\b",
    re.IGNORECASE,
)
_HOSTING = re.compile(
    r"\bamazon|\bgoogle|\bmicrosoft|\bazure\b|digitalocean|\bhetzner|\bovh\b|\blinode|\bakamai|\bvultr|\bchoopa"
    r"|\balibaba|\btencent|\boracle|\bscaleway|\bcontabo|\bleaseweb|\bm247\b|\bdatacamp|\bhosting|\bhoster"
    r"|data ?cent(?:er|re)|\bserver|\bcloud|\bcolo(?:cation)?\b|\bvps\b|\bdedicated\b",
    re.IGNORECASE,
)


@lru_cache(maxsize=4096)
def _kind_of_org(org: str) -> str:
    if _EDUCATION.search(org):
        return "education"
    if _HOSTING.search(org):
        return "hosting"
    return "other"


@signal
def network_kind(ip: str | None) -> str | None:
    """ "education" (universities, colleges, research and education networks),
    "hosting" (clouds, hosting and data-centre providers) or "other", from the
    address's AS organisation name; None for a private or unknown address."""
    org = asn_org(ip)
    return None if org is None else _kind_of_org(org)
