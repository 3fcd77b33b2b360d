"""Where simulated traffic comes from: networks, address blocks, user agents.

Every block is a real public allocation, and the engine's embedded geo data
(geoip2fast, MaxMind GeoLite2) maps every address in it to the country and the
AS organisation written next to it (tests/engine/test_simulate.py checks every
block), because the engine derives `client.country` from `client.ip` and
policies may mix CIDR sets, countries and ASNs. Where the organisation is in
the engine's asn_orgs.json, the AS number here is the one the engine derives.

Kinds of network, as the traffic uses them:

- `hosting`: cloud and VPS providers (backends, scripted clients, fleets);
- `residential`: consumer ISPs (homes, and residential proxy fleets);
- `mobile`: mobile carriers, reached through carrier-grade NAT pools that
  strangers share;
- `vpn`: commercial VPN exits, shared by strangers;
- `business`: office egress (business ISPs, cloud security proxies);
- `campus`: universities' networks, behind a few NAT addresses.
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
    kind: str
    org: str  # the AS organisation name as the geo data spells it

    def first_last(self) -> tuple[int, int]:
        n = ipaddress.ip_network(self.prefix)
        return int(n.network_address), int(n.broadcast_address)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One client address with its derived attributes."""

    ip: str
    country: str
    asn: int


def _nets(kind: str, rows: list[tuple[int, str, str, str]]) -> tuple[Net, ...]:
    return tuple(Net(asn, cc, prefix, kind, org) for asn, org, cc, prefix in rows)


HOSTING_NETS: tuple[Net, ...] = _nets(
    "hosting",
    [
        (16509, "AMAZON-02", "US", "44.224.0.0/16"),
        (14618, "AMAZON-AES", "US", "3.94.144.0/20"),
        (14618, "AMAZON-AES", "US", "54.160.32.0/20"),
        (16509, "AMAZON-02", "DE", "3.64.208.0/20"),
        (16509, "AMAZON-02", "IE", "34.241.80.0/20"),
        (16509, "AMAZON-02", "JP", "54.64.144.0/20"),
        (14061, "DIGITALOCEAN-ASN", "US", "159.203.208.0/20"),
        (14061, "DIGITALOCEAN-ASN", "NL", "188.166.112.0/20"),
        (14061, "DIGITALOCEAN-ASN", "SG", "159.65.0.0/20"),
        (14061, "DIGITALOCEAN-ASN", "DE", "164.90.160.0/20"),
        (14061, "DIGITALOCEAN-ASN", "GB", "178.62.32.0/20"),
        (24940, "Hetzner Online GmbH", "DE", "88.198.16.0/20"),
        (24940, "Hetzner Online GmbH", "FI", "95.216.192.0/20"),
        (24940, "Hetzner Online GmbH", "DE", "116.202.96.0/20"),
        (63949, "Akamai Connected Cloud", "US", "45.79.96.0/20"),
        (63949, "Akamai Connected Cloud", "US", "172.104.208.0/20"),
        (63949, "Akamai Connected Cloud", "DE", "139.162.128.0/20"),
        (63949, "Akamai Connected Cloud", "JP", "139.162.64.0/20"),
        (20473, "AS-CHOOPA", "US", "45.32.128.0/20"),
        (20473, "AS-CHOOPA", "US", "149.28.80.0/20"),
        (20473, "AS-CHOOPA", "JP", "45.76.208.0/20"),
        (20473, "AS-CHOOPA", "NL", "95.179.144.0/20"),
        (8075, "MICROSOFT-CORP-MSN-AS-BLOCK", "US", "20.12.208.0/20"),
        (8075, "MICROSOFT-CORP-MSN-AS-BLOCK", "US", "40.76.96.0/20"),
        (8075, "MICROSOFT-CORP-MSN-AS-BLOCK", "IE", "52.164.96.0/20"),
        (396982, "GOOGLE-CLOUD-PLATFORM", "US", "34.72.112.0/20"),
        (396982, "GOOGLE-CLOUD-PLATFORM", "US", "35.186.112.0/20"),
        (16276, "OVH SAS", "FR", "37.187.0.0/18"),
        (51167, "Contabo GmbH", "DE", "5.189.128.0/18"),
        (12876, "Scaleway S.a.s.", "FR", "163.172.0.0/18"),
        (31898, "ORACLE-BMC-31898", "US", "129.80.0.0/16"),
        (45102, "Alibaba US Technology Co., Ltd.", "US", "47.78.0.0/16"),
        (60781, "LeaseWeb Netherlands B.V.", "NL", "85.17.0.0/16"),
        (47583, "Hostinger International Limited", "US", "31.220.48.0/20"),
    ],
)

RESIDENTIAL_NETS: tuple[Net, ...] = _nets(
    "residential",
    [
        (7922, "COMCAST-7922", "US", "73.0.0.0/8"),
        (7922, "COMCAST-7922", "US", "98.192.0.0/10"),
        (7018, "ATT-INTERNET4", "US", "99.0.0.0/14"),
        (7018, "ATT-INTERNET4", "US", "99.4.0.0/14"),
        (20115, "CHARTER-20115", "US", "47.24.0.0/14"),
        (20115, "CHARTER-20115", "US", "174.80.0.0/13"),
        (812, "ROGERS-COMMUNICATIONS", "CA", "99.224.0.0/12"),
        (812, "ROGERS-COMMUNICATIONS", "CA", "174.112.0.0/13"),
        (3320, "Deutsche Telekom AG", "DE", "79.192.0.0/10"),
        (3320, "Deutsche Telekom AG", "DE", "87.128.0.0/10"),
        (2856, "British Telecommunications PLC", "GB", "86.128.0.0/10"),
        (2856, "British Telecommunications PLC", "GB", "81.132.0.0/14"),
        (5089, "Virgin Media", "GB", "82.0.0.0/11"),
        (5089, "Virgin Media", "GB", "86.0.0.0/11"),
        (3215, "Orange", "FR", "86.192.0.0/11"),
        (3215, "Orange", "FR", "90.117.64.0/20"),
        (3215, "Orange", "FR", "82.126.48.0/20"),
        (12322, "Free SAS", "FR", "82.65.144.0/20"),
        (3352, "Telefonica De Espana S.a.u.", "ES", "80.24.0.0/13"),
        (3352, "Telefonica De Espana S.a.u.", "ES", "83.32.0.0/11"),
        (33915, "Vodafone Libertel B.V.", "NL", "84.24.0.0/13"),
        (33915, "Vodafone Libertel B.V.", "NL", "62.194.0.0/15"),
        (3303, "Bluewin", "CH", "62.202.0.0/18"),
        (6730, "Sunrise GmbH", "CH", "77.56.0.0/14"),
        (6830, "Liberty Global B.V.", "PL", "89.64.0.0/12"),
        (4713, "NTT Communications Corporation", "JP", "153.128.0.0/10"),
        (4713, "NTT Communications Corporation", "JP", "114.144.0.0/12"),
        (4766, "Korea Telecom", "KR", "121.152.0.0/14"),
        (4766, "Korea Telecom", "KR", "175.216.0.0/14"),
        (4134, "Chinanet", "CN", "113.64.0.0/14"),
        (4134, "Chinanet", "CN", "14.24.0.0/14"),
        (55836, "Reliance Jio Infocomm Limited", "IN", "49.47.192.0/20"),
        (55836, "Reliance Jio Infocomm Limited", "IN", "157.32.224.0/20"),
        (18881, "TELEFONICA BRASIL S.A", "BR", "177.168.0.0/13"),
        (8151, "UNINET", "MX", "189.128.0.0/10"),
        (1221, "Telstra Limited", "AU", "1.120.0.0/13"),
        (9121, "Turk Telekom", "TR", "78.160.0.0/11"),
        (9121, "Turk Telekom", "TR", "88.224.0.0/11"),
        (45899, "VNPT Corp", "VN", "113.160.0.0/11"),
        (45899, "VNPT Corp", "VN", "14.160.0.0/11"),
        (17974, "PT Telekomunikasi Indonesia", "ID", "36.64.0.0/11"),
        (17974, "PT Telekomunikasi Indonesia", "ID", "180.244.0.0/14"),
    ],
)

MOBILE_NETS: tuple[Net, ...] = _nets(
    "mobile",
    [
        (21928, "T-MOBILE-AS21928", "US", "172.32.0.0/13"),
        (21928, "T-MOBILE-AS21928", "US", "172.40.0.0/18"),
        (22394, "CELLCO-PART", "US", "174.192.0.0/11"),
        (3209, "Vodafone GmbH", "DE", "109.40.0.0/13"),
        (6805, "Telefonica Germany", "DE", "176.0.0.0/13"),
        (5410, "Bouygues Telecom SA", "FR", "176.128.0.0/11"),
        (12576, "EE Limited", "GB", "31.100.0.0/14"),
        (45609, "Bharti Airtel Ltd. AS for GPRS Service", "IN", "106.192.0.0/16"),
        (45609, "Bharti Airtel Ltd. AS for GPRS Service", "IN", "106.194.0.0/16"),
        (9605, "NTT DOCOMO, INC.", "JP", "49.96.0.0/12"),
        (2516, "KDDI CORPORATION", "JP", "106.128.0.0/11"),
        (9644, "SK Telecom", "KR", "223.32.0.0/11"),
        (1221, "Telstra Limited", "AU", "1.128.0.0/11"),
        (7552, "Viettel Group", "VN", "27.64.0.0/14"),
        (23693, "PT. Telekomunikasi Selular", "ID", "114.120.0.0/13"),
        (12912, "T-Mobile Polska S.A.", "PL", "37.30.0.0/15"),
        (16135, "Turkcell Iletisim Hizmetleri A.s.", "TR", "5.24.0.0/15"),
        (28403, "RadioMovil Dipsa, S.A. de C.V.", "MX", "200.68.128.0/21"),
    ],
)

VPN_NETS: tuple[Net, ...] = _nets(
    "vpn",
    [
        (9009, "M247 Ltd", "GB", "217.138.0.0/17"),
        (9009, "M247 Europe SRL", "US", "38.132.96.0/19"),
        (9009, "M247 Europe SRL", "RO", "5.157.192.0/19"),
        (9009, "M247 Europe SRL", "GB", "89.238.160.0/20"),
        (9009, "M247 Europe SRL", "US", "92.50.32.0/19"),
        (60068, "Datacamp Limited", "GB", "104.233.32.0/20"),
        (60068, "Datacamp Limited", "ES", "104.250.208.0/20"),
        (39351, "31173 Services AB", "SE", "45.83.220.0/22"),
        (39351, "31173 Services AB", "SE", "193.138.216.0/22"),
        (39351, "31173 Services AB", "US", "45.132.193.0/24"),
        (62371, "Proton AG", "CH", "185.70.40.0/22"),
        (62371, "Proton AG", "US", "130.254.40.0/22"),
        (207137, "Packethub s.a.", "US", "192.145.116.0/22"),
        (207137, "PacketHub S.A.", "FI", "193.160.100.0/23"),
        (207137, "PacketHub S.A.", "NO", "45.14.192.0/23"),
    ],
)

BUSINESS_NETS: tuple[Net, ...] = _nets(
    "business",
    [
        (701, "UUNET", "US", "63.0.0.0/12"),
        (3356, "LEVEL3", "US", "4.96.0.0/11"),
        (174, "COGENT-174", "US", "38.0.0.0/15"),
        (22616, "ZSCALER-SJC1", "US", "165.225.32.0/19"),
        (22616, "ZSCALER-SJC1", "US", "170.85.128.0/17"),
        (8220, "COLT Technology Services Group Limited", "GB", "161.17.0.0/16"),
        (8220, "COLT Technology Services Group Limited", "DE", "213.61.0.0/19"),
        (8220, "COLT Technology Services Group Limited", "FR", "62.23.160.0/20"),
        (4755, "TATA Communications formerly VSNL is Leading ISP", "IN", "14.140.0.0/16"),
    ],
)

CAMPUS_NETS: tuple[Net, ...] = _nets(
    "campus",
    [
        (32, "STANFORD", "US", "171.64.0.0/14"),
        (25, "UCB", "US", "128.32.0.0/16"),
        (9, "CMU-ROUTER", "US", "128.2.0.0/16"),
        (36375, "UMICH-AS-5", "US", "141.211.0.0/16"),
        (38, "UIUC", "US", "130.126.0.0/16"),
        (786, "Jisc Services Limited", "GB", "129.67.0.0/16"),
        (786, "Jisc Services Limited", "GB", "131.111.0.0/16"),
        (786, "Jisc Services Limited", "GB", "155.198.0.0/16"),
        (12816, "Leibniz-Rechenzentrum", "DE", "129.187.0.0/16"),
        (559, "SWITCH", "CH", "129.132.0.0/16"),
        (2501, "The University of Tokyo", "JP", "133.11.0.0/16"),
        (28571, "UNIVERSIDADE DE SAO PAULO", "BR", "143.107.0.0/16"),
        (239, "UTORONTO-AS", "CA", "128.100.0.0/16"),
        (1103, "SURF B.V.", "NL", "131.180.0.0/16"),
        (278, "Universidad Nacional Autonoma de Mexico", "MX", "132.248.0.0/16"),
        (2200, "Renater", "FR", "193.52.0.0/16"),
        (13041, "Consorci de Serveis Universitaris de Catalunya", "ES", "161.116.0.0/16"),
        (2697, "Education and Research Network", "IN", "202.141.80.0/20"),
    ],
)

ALL_NETS: tuple[Net, ...] = HOSTING_NETS + RESIDENTIAL_NETS + MOBILE_NETS + VPN_NETS + BUSINESS_NETS + CAMPUS_NETS

# Hosting networks named in public extraction reports: cheap VPS and cloud.
SURROGATE_HOSTING_ASNS: tuple[int, ...] = (16509, 14061, 24940, 63949, 20473, 16276, 51167, 12876, 60781, 47583, 45102)
ENTERPRISE_CLOUD_ASNS: tuple[int, ...] = (8075, 16509, 14618, 396982, 31898)

# Weighted by a rough share of developer traffic; most benign users are here.
BENIGN_COUNTRIES: tuple[tuple[str, float], ...] = (
    ("US", 0.34),
    ("GB", 0.07),
    ("DE", 0.07),
    ("IN", 0.08),
    ("FR", 0.05),
    ("CA", 0.04),
    ("JP", 0.05),
    ("KR", 0.03),
    ("BR", 0.04),
    ("NL", 0.03),
    ("ES", 0.03),
    ("AU", 0.03),
    ("PL", 0.02),
    ("MX", 0.02),
    ("TR", 0.02),
    ("ID", 0.02),
    ("VN", 0.01),
    ("CH", 0.01),
)

# UTC offset (hours) per country, for diurnal activity in local time.
TZ_OFFSET: dict[str, float] = {
    "US": -6,
    "CA": -5,
    "MX": -6,
    "BR": -3,
    "GB": 0,
    "IE": 0,
    "DE": 1,
    "FR": 1,
    "ES": 1,
    "NL": 1,
    "CH": 1,
    "PL": 1,
    "SE": 1,
    "NO": 1,
    "FI": 2,
    "RO": 2,
    "TR": 3,
    "IN": 5.5,
    "VN": 7,
    "ID": 7,
    "CN": 8,
    "SG": 8,
    "JP": 9,
    "KR": 9,
    "AU": 10,
}


def nets_where(kind: str | None = None, asns: tuple[int, ...] | None = None, country: str | None = None) -> list[Net]:
    out = [
        n
        for n in ALL_NETS
        if (kind is None or n.kind == kind)
        and (asns is None or n.asn in asns)
        and (country is None or n.country == country)
    ]
    if not out:
        raise ValueError(f"no network matches kind={kind} asns={asns} country={country}")
    return out


def nets_or_residential(kind: str, country: str) -> list[Net]:
    """Networks of `kind` in `country`, else the country's consumer ISPs (where a
    country has no listed carrier or business ISP, its incumbents serve both)."""
    return [n for n in ALL_NETS if n.kind == kind and n.country == country] or nets_where(
        "residential", country=country
    )


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
    return Net(net.asn, net.country, f"{ipaddress.IPv4Address(base)}/24", net.kind, net.org)


def endpoint(rng: random.Random, net: Net) -> Endpoint:
    return Endpoint(random_ip(rng, net), net.country, net.asn)


def residential_endpoint(rng: random.Random, country: str) -> Endpoint:
    return endpoint(rng, rng.choice(nets_where("residential", country=country)))


def hosting_endpoint(rng: random.Random) -> Endpoint:
    return endpoint(rng, rng.choice(HOSTING_NETS))


SDK_AGENTS: tuple[str, ...] = (
    "sdk-python/1.51.0",
    "sdk-python/1.47.1",
    "sdk-node/4.67.3",
    "sdk-node/4.52.0",
    "sdk-go/0.9.2",
    "sdk-java/2.3.0",
    "langchain/0.3.7 sdk-python/1.51.0",
    "llamaindex/0.11.20 sdk-python/1.47.1",
    "curl/8.5.0",
)
SCRIPT_AGENTS: tuple[str, ...] = (
    "python-httpx/0.27.2",
    "python-requests/2.32.3",
    "aiohttp/3.10.10",
    "sdk-python/1.51.0",
    "Go-http-client/2.0",
)
BROWSER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0",
)
MOBILE_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile "
    "Safari/537.36",
)
