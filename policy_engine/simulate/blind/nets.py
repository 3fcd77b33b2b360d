"""Where the blind world's clients connect from: real address blocks by kind.

Every block was checked against the engine's embedded geo data (GeoLite2 via
geoip2fast): each /24 in it resolves to the country and AS organisation written
here, so `client.country` and `client.asn` agree with what the engine derives
from `client.ip` (tests/engine/test_blind_world.py checks the blocks and every
address a world emits). Kinds:

- home: consumer broadband, one address per household, re-leased now and then;
- mobile: carrier networks behind carrier-grade NAT, where one public address
  carries many unrelated subscribers;
- campus: university networks, a few NAT addresses per campus;
- business: transit and business ISPs where offices have a small fixed egress;
- vpn: commercial VPN exit servers (one /24 per server location), shared by
  every customer of the service who picked that exit;
- hosting: cloud and VPS providers (backends, CI, remote dev boxes, surrogates).
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field

from policy_engine.simulate.network import Endpoint


@dataclass(frozen=True, slots=True)
class Net:
    kind: str
    country: str
    asn: int
    org: str  # the AS organisation as the geo data spells it (checked by a test)
    prefix: str
    first: int = field(init=False, repr=False)
    last: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = ipaddress.ip_network(self.prefix)
        object.__setattr__(self, "first", int(n.network_address))
        object.__setattr__(self, "last", int(n.broadcast_address))

    def address(self, rng: random.Random) -> str:
        """A host address in the block, never the .0 or .255 of a /24."""
        base = rng.randint(self.first, self.last) & ~0xFF
        return str(ipaddress.IPv4Address(base | rng.randint(1, 254)))

    def endpoint(self, rng: random.Random) -> Endpoint:
        return Endpoint(self.address(rng), self.country, self.asn)


_Row = tuple[str, int, str, tuple[str, ...]]  # country, asn, org, prefixes


def _table(kind: str, rows: list[_Row]) -> tuple[Net, ...]:
    return tuple(Net(kind, cc, asn, org, p) for cc, asn, org, prefixes in rows for p in prefixes)


HOME = _table(
    "home",
    [
        ("US", 7922, "COMCAST-7922", ("73.0.0.0/8", "98.192.0.0/10")),
        ("US", 7018, "ATT-INTERNET4", ("99.32.0.0/11", "99.0.0.0/12")),
        ("US", 22773, "ASN-CXA-ALL-CCI-22773-RDC", ("68.0.0.0/14",)),
        ("CA", 812, "ROGERS-COMMUNICATIONS", ("99.224.0.0/11",)),
        ("CA", 577, "BACOM", ("70.48.0.0/13",)),
        ("GB", 2856, "British Telecommunications PLC", ("86.128.0.0/10",)),
        ("GB", 5089, "Virgin Media", ("82.0.0.0/11", "86.0.0.0/11")),
        ("GB", 5607, "Sky UK Limited", ("90.192.0.0/11",)),
        ("DE", 3320, "Deutsche Telekom AG", ("79.192.0.0/10",)),
        ("DE", 3209, "Vodafone GmbH", ("88.64.0.0/12",)),
        ("FR", 3215, "Orange", ("86.192.0.0/11",)),
        ("FR", 12322, "Free SAS", ("82.64.0.0/14",)),
        ("ES", 3352, "Telefonica De Espana S.a.u.", ("80.24.0.0/13", "83.32.0.0/11")),
        ("IT", 3269, "Telecom Italia", ("79.0.0.0/12",)),
        ("NL", 33915, "Vodafone Libertel B.V.", ("84.24.0.0/13",)),
        ("NL", 1136, "KPN B.V.", ("77.160.0.0/12",)),
        ("PL", 5617, "Orange Polska Spolka Akcyjna", ("83.0.0.0/11",)),
        ("PL", 6830, "Liberty Global B.V.", ("89.64.0.0/12",)),
        ("CH", 3303, "Bluewin", ("178.192.0.0/13",)),
        ("JP", 4713, "NTT Communications Corporation", ("153.128.0.0/10", "114.144.0.0/12")),
        ("JP", 2516, "KDDI CORPORATION", ("106.128.0.0/11",)),
        ("KR", 4766, "Korea Telecom", ("121.152.0.0/14", "121.146.0.0/15")),
        ("IN", 24560, "Bharti Airtel Ltd., Telemedia Services", ("106.201.0.0/17", "106.212.0.0/17")),
        ("IN", 55836, "Reliance Jio Infocomm Limited", ("49.36.0.0/14",)),
        ("BR", 27699, "TELEFONICA BRASIL S.A", ("177.79.0.0/16",)),
        ("BR", 28573, "CLARO S.A.", ("189.42.0.0/15",)),
        ("MX", 8151, "UNINET", ("189.128.0.0/10",)),
        ("MX", 22884, "TOTAL PLAY TELECOMUNICACIONES SA DE CV", ("187.188.0.0/15",)),
        ("AU", 1221, "Telstra Limited", ("1.120.0.0/13",)),
        ("TR", 9121, "Turk Telekom", ("78.160.0.0/11",)),
        ("TR", 34984, "Superonline Iletisim Hizmetleri A.S.", ("176.232.0.0/15",)),
        ("ID", 17974, "PT Telekomunikasi Indonesia", ("36.80.0.0/12",)),
        ("VN", 45899, "VNPT Corp", ("113.160.0.0/11",)),
        ("SG", 4657, "Starhub Ltd", ("116.86.0.0/15",)),
        ("SG", 9506, "Singtel Fibre Broadband", ("219.74.0.0/16",)),
        ("HK", 4760, "HKT Limited", ("112.118.0.0/16", "218.102.0.0/16")),
        ("CN", 4812, "China Telecom Group", ("114.88.0.0/16",)),
        ("CN", 4808, "China Unicom Beijing Province Network", ("123.120.0.0/13",)),
    ],
)

MOBILE = _table(
    "mobile",
    [
        ("US", 21928, "T-MOBILE-AS21928", ("172.32.0.0/13",)),
        ("US", 22394, "CELLCO-PART", ("174.192.0.0/12",)),
        ("GB", 206067, "Three", ("92.40.0.0/15",)),
        ("DE", 6805, "Telefonica Germany", ("2.240.0.0/13",)),
        ("FR", 5410, "Bouygues Telecom SA", ("176.128.0.0/11",)),
        ("IN", 45609, "Bharti Airtel Ltd. AS for GPRS Service", ("106.192.0.0/13",)),
        ("JP", 9605, "NTT DOCOMO, INC.", ("49.96.0.0/12",)),
        ("KR", 9644, "SK Telecom", ("223.32.0.0/11",)),
        ("ID", 23693, "PT. Telekomunikasi Selular", ("114.120.0.0/14",)),
        ("VN", 7552, "Viettel Group", ("27.72.0.0/13",)),
        ("BR", 26615, "TIM SA", ("189.40.0.0/16",)),
    ],
)

CAMPUS = _table(
    "campus",
    [
        ("US", 25, "UCB", ("128.32.0.0/16",)),
        ("US", 32, "STANFORD", ("171.64.0.0/14",)),
        ("US", 3, "MIT-GATEWAYS", ("18.9.0.0/16",)),
        ("US", 9, "CMU-ROUTER", ("128.2.0.0/16",)),
        ("CA", 239, "UTORONTO-AS", ("128.100.0.0/16",)),
        ("GB", 786, "Jisc Services Limited", ("131.111.0.0/16",)),
        ("CH", 559, "SWITCH", ("129.132.0.0/16",)),
        ("DE", 12816, "Leibniz-Rechenzentrum", ("129.187.0.0/16",)),
        ("JP", 2501, "The University of Tokyo", ("133.11.0.0/16",)),
        ("KR", 1781, "Korea Advanced Institute of Science and Technology", ("143.248.0.0/16",)),
        ("SG", 7472, "NUS Information Technology", ("137.132.0.0/16",)),
        ("BR", 28571, "UNIVERSIDADE DE SAO PAULO", ("143.107.0.0/16",)),
    ],
)

BUSINESS = _table(
    "business",
    [
        ("US", 3356, "LEVEL3", ("4.4.0.0/14", "4.8.0.0/14", "4.24.0.0/14")),
        ("US", 174, "COGENT-174", ("38.96.64.0/18", "38.104.0.0/18")),
        ("US", 6461, "ZAYO-6461", ("64.125.0.0/19",)),
        ("US", 2914, "NTT-LTD-2914", ("129.250.64.0/18",)),
        ("GB", 3356, "LEVEL3", ("4.33.192.0/20",)),
        ("CA", 174, "COGENT-174", ("38.112.64.0/19",)),
    ],
)

VPN = _table(
    "vpn",
    [
        ("US", 60068, "Datacamp Limited", ("89.187.176.0/21", "37.19.196.0/22", "138.199.40.0/22")),
        ("US", 9009, "M247 Europe SRL", ("146.70.228.0/22", "82.102.30.0/23")),
        ("GB", 9009, "M247 Europe SRL", ("146.70.46.0/23", "146.70.132.0/23")),
        ("GB", 60068, "Datacamp Limited", ("138.199.28.0/22", "143.244.36.0/22")),
        ("DE", 9009, "M247 Europe SRL", ("82.102.16.0/24", "146.70.20.0/24")),
        ("DE", 60068, "Datacamp Limited", ("138.199.18.0/23", "138.199.36.0/23")),
        ("FR", 9009, "M247 Europe SRL", ("82.102.18.0/24", "146.70.18.0/24")),
        ("FR", 60068, "Datacamp Limited", ("138.199.14.0/23",)),
        ("NL", 9009, "M247 Europe SRL", ("146.70.208.0/23",)),
        ("NL", 60781, "LeaseWeb Netherlands B.V.", ("5.79.64.0/20",)),
        ("SE", 9009, "M247 Europe SRL", ("146.70.206.0/23",)),
        ("CH", 9009, "M247 Europe SRL", ("146.70.134.0/23",)),
        ("ES", 9009, "M247 Europe SRL", ("82.102.17.0/24",)),
        ("IT", 60068, "Datacamp Limited", ("138.199.44.0/23",)),
        ("JP", 60068, "Datacamp Limited", ("89.187.160.0/23", "138.199.22.0/23")),
        ("SG", 60068, "Datacamp Limited", ("89.187.162.0/23", "138.199.24.0/23")),
        ("CA", 60068, "Datacamp Limited", ("37.19.212.0/23",)),
        ("AU", 9009, "M247 Europe SRL", ("146.70.78.0/24", "146.70.141.0/24")),
        ("BR", 60068, "Datacamp Limited", ("138.199.4.0/23",)),
        ("HK", 9009, "M247 Europe SRL", ("146.70.9.0/24", "146.70.79.0/24")),
    ],
)

HOSTING = _table(
    "hosting",
    [
        ("US", 14618, "AMAZON-AES", ("3.94.144.0/20", "54.160.32.0/20")),
        ("DE", 16509, "AMAZON-02", ("3.64.208.0/20",)),
        ("IE", 16509, "AMAZON-02", ("34.241.80.0/20",)),
        ("JP", 16509, "AMAZON-02", ("54.64.144.0/20",)),
        ("US", 8075, "MICROSOFT-CORP-MSN-AS-BLOCK", ("20.12.208.0/20", "40.76.96.0/20")),
        ("IE", 8075, "MICROSOFT-CORP-MSN-AS-BLOCK", ("52.164.96.0/20",)),
        ("US", 396982, "GOOGLE-CLOUD-PLATFORM", ("34.72.112.0/20", "35.186.112.0/20")),
        ("US", 14061, "DIGITALOCEAN-ASN", ("159.203.208.0/20",)),
        ("NL", 14061, "DIGITALOCEAN-ASN", ("188.166.112.0/20",)),
        ("SG", 14061, "DIGITALOCEAN-ASN", ("159.65.0.0/20",)),
        ("DE", 14061, "DIGITALOCEAN-ASN", ("164.90.160.0/20",)),
        ("GB", 14061, "DIGITALOCEAN-ASN", ("178.62.32.0/20",)),
        ("DE", 24940, "Hetzner Online GmbH", ("88.198.16.0/20", "116.202.96.0/20")),
        ("FI", 24940, "Hetzner Online GmbH", ("95.216.192.0/20",)),
        ("US", 63949, "Akamai Connected Cloud", ("45.79.96.0/20", "172.104.208.0/20")),
        ("DE", 63949, "Akamai Connected Cloud", ("139.162.128.0/20",)),
        ("JP", 63949, "Akamai Connected Cloud", ("139.162.64.0/20",)),
        ("US", 20473, "AS-CHOOPA", ("45.32.128.0/20", "149.28.80.0/20")),
        ("JP", 20473, "AS-CHOOPA", ("45.76.208.0/20",)),
        ("NL", 20473, "AS-CHOOPA", ("95.179.144.0/20",)),
        ("US", 31898, "ORACLE-BMC-31898", ("129.146.0.0/16",)),
        ("GB", 31898, "ORACLE-BMC-31898", ("132.145.0.0/18",)),
        ("FR", 16276, "OVH SAS", ("54.36.48.0/20",)),
        ("GB", 16276, "OVH SAS", ("51.68.192.0/19",)),
        ("DE", 51167, "Contabo GmbH", ("161.97.64.0/18", "173.212.192.0/18")),
        ("FR", 12876, "Scaleway S.a.s.", ("51.15.128.0/17",)),
        ("US", 45102, "Alibaba US Technology Co., Ltd.", ("47.88.0.0/17",)),
        ("SG", 45102, "Alibaba US Technology Co., Ltd.", ("47.74.128.0/17",)),
        ("JP", 45102, "Alibaba US Technology Co., Ltd.", ("47.74.0.0/18",)),
        ("SG", 132203, "Tencent Building, Kejizhongyi Avenue", ("43.156.0.0/16",)),
        ("HK", 132203, "Tencent Building, Kejizhongyi Avenue", ("43.128.0.0/18",)),
    ],
)

ALL: tuple[Net, ...] = HOME + MOBILE + CAMPUS + BUSINESS + VPN + HOSTING

# Where the big clouds are: honest backends mostly run here.
MAJOR_CLOUD_ASNS: tuple[int, ...] = (14618, 16509, 8075, 396982)
# Cheap VPS providers: hobby projects, small startups and rented surrogate fleets alike.
VPS_ASNS: tuple[int, ...] = (14061, 24940, 63949, 20473, 16276, 51167, 12876, 45102, 132203, 31898)

# UTC offset (hours) for the diurnal rhythm of people in each country (one zone each).
TZ: dict[str, float] = {
    "US": -6,
    "CA": -5,
    "MX": -6,
    "BR": -3,
    "GB": 0,
    "IE": 0,
    "DE": 1,
    "FR": 1,
    "ES": 1,
    "IT": 1,
    "NL": 1,
    "CH": 1,
    "PL": 1,
    "SE": 1,
    "FI": 2,
    "TR": 3,
    "IN": 5.5,
    "VN": 7,
    "ID": 7,
    "CN": 8,
    "HK": 8,
    "SG": 8,
    "JP": 9,
    "KR": 9,
    "AU": 10,
}


def where(nets: tuple[Net, ...], country: str | None = None, asns: tuple[int, ...] | None = None) -> list[Net]:
    """The blocks of `nets` in `country` and/or `asns` (both optional); empty if none."""
    return [n for n in nets if (country is None or n.country == country) and (asns is None or n.asn in asns)]


def countries(nets: tuple[Net, ...]) -> list[str]:
    """Countries present in `nets`, in table order (deterministic)."""
    return list(dict.fromkeys(n.country for n in nets))


class Pool:
    """A fixed set of public addresses shared by everyone behind it: a carrier's
    NAT, a campus or office egress, a VPN exit server, a backend's NAT gateway."""

    __slots__ = ("endpoints",)

    def __init__(self, rng: random.Random, nets: list[Net], size: int) -> None:
        if not nets:
            raise ValueError("a pool needs at least one network")
        net = rng.choice(nets)  # one pool lives in one block, as real egress does
        self.endpoints: tuple[Endpoint, ...] = tuple(net.endpoint(rng) for _ in range(max(1, size)))

    def pick(self, rng: random.Random) -> Endpoint:
        return self.endpoints[rng.randrange(len(self.endpoints))]


class Network:
    """The shared infrastructure of one world: carrier NAT pools and VPN exits
    that unrelated actors (honest or not) end up sharing."""

    def __init__(self, rng: random.Random, cgnat_size: int, vpn_exit_size: int) -> None:
        self.cgnat: dict[str, list[Pool]] = {}
        for net in MOBILE:
            size = max(2, round(cgnat_size * rng.uniform(0.5, 1.5)))
            self.cgnat.setdefault(net.country, []).append(Pool(rng, [net], size))
        self.vpn: dict[str, list[Pool]] = {}
        for net in VPN:
            size = max(1, round(vpn_exit_size * rng.uniform(0.5, 1.5)))
            self.vpn.setdefault(net.country, []).append(Pool(rng, [net], size))
        self.vpn_countries: list[str] = list(self.vpn)

    def home(self, rng: random.Random, country: str) -> Endpoint:
        nets = where(HOME, country) or where(HOME, "US")
        return rng.choice(nets).endpoint(rng)

    def mobile(self, rng: random.Random, country: str) -> Endpoint:
        """An address of the country's carrier NAT; countries without a listed
        carrier fall back to a home ISP (their fixed-line NAT is as shared)."""
        pools = self.cgnat.get(country)
        if not pools:
            return self.home(rng, country)
        return rng.choice(pools).pick(rng)

    def vpn_exit(self, rng: random.Random, country: str | None = None) -> Endpoint:
        """An exit of a commercial VPN, in `country` if the service has one there."""
        pools = self.vpn.get(country or "") or self.vpn[rng.choice(self.vpn_countries)]
        return rng.choice(pools).pick(rng)


def hosting(rng: random.Random, asns: tuple[int, ...] | None = None, country: str | None = None) -> Net:
    """A hosting block, preferring `country` among `asns` when one exists."""
    nets = where(HOSTING, country, asns) or where(HOSTING, None, asns) or list(HOSTING)
    return rng.choice(nets)


def slash24(rng: random.Random, net: Net) -> Net:
    """A /24 inside `net`: what a fleet rents, or where a backend's NAT lives."""
    base = rng.randint(net.first, net.last) & ~0xFF
    return Net(net.kind, net.country, net.asn, net.org, f"{ipaddress.IPv4Address(base)}/24")
