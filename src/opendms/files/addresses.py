"""Where an upload job may fetch from (``OPENDMS_UPLOAD_HOSTS``).

By default only public addresses: a URL a tenant's user hands in must not make the server
read its own loopback services, the private network behind it or the cloud's metadata
endpoint. The rule is applied to the addresses a name resolves to (the connection is then
pinned to the address that was checked, ``files.fetch``), never to the name alone, so odd
spellings (``2130706433``, ``0x7f.1``) and DNS answers pointing inside are caught alike.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from opendms.hostlist import HostList, IPAddress, IPNetwork


def _nets(*specs: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(cidr), why) for cidr, why in specs)


# Every range that is not "some public server": the IANA special-purpose registries, plus
# the cloud metadata endpoints that live at otherwise public-looking addresses. Written out
# rather than taken from ``ipaddress.is_global``, which calls multicast and several of these
# global and changes between Python versions.
NOT_PUBLIC = _nets(
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared (carrier-grade NAT; Alibaba Cloud metadata)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved (IETF protocol assignments; Oracle Cloud metadata)"),
    ("192.0.2.0/24", "reserved (documentation)"),
    ("192.88.99.0/24", "reserved (6to4 relay)"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved (benchmarking)"),
    ("198.51.100.0/24", "reserved (documentation)"),
    ("203.0.113.0/24", "reserved (documentation)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved (incl. broadcast)"),
    ("168.63.129.16/32", "cloud metadata (Azure)"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/8", "reserved (incl. IPv4-compatible)"),
    ("64:ff9b:1::/48", "reserved (local NAT64)"),
    ("100::/64", "reserved (discard)"),
    ("2001::/23", "reserved (IETF protocol assignments, Teredo)"),
    ("2001:db8::/32", "reserved (documentation)"),
    ("3fff::/20", "reserved (documentation)"),
    ("fc00::/7", "unique-local (AWS metadata fd00:ec2::254)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and reaches (IPv4-mapped, 6to4, NAT64)."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def not_public(address: IPAddress) -> str | None:
    """Why ``address`` is not a public server's (``loopback``, ``private``…), or None."""
    inner = embedded_ipv4(address)
    if inner is not None:
        why = not_public(inner)
        return f"{why}, inside an IPv6 address" if why else None
    for network, why in NOT_PUBLIC:
        if address.version == network.version and address in network:
            return why
    return None if address.is_global else "not global"


def parse_address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


class UploadHosts:
    """``OPENDMS_UPLOAD_HOSTS``: comma-separated CIDRs or host names the server may fetch
    from besides public addresses (a private artifact server), ``*`` for anywhere. Apart
    from ``OPENDMS_TARGET_HOSTS``: the database servers an administrator registers are not
    places any user may have the server read a URL from."""

    def __init__(self, spec: str = "") -> None:
        self.spec = spec
        self.hosts = HostList.parse(spec)

    def _listed(self, address: IPAddress) -> bool:
        inner = embedded_ipv4(address)
        return any(self.hosts.holds(candidate) for candidate in (address, inner) if candidate)

    def refusal(self, host: str, addresses: Sequence[IPAddress]) -> str | None:
        """Why the server may not fetch from ``host`` at ``addresses`` (what its name
        resolved to), or None when every one of them is allowed."""
        if self.hosts.names_host(host):
            return None
        if not addresses:
            return f"{host} has no address"
        for address in addresses:
            why = not_public(address)
            if why is not None and not self._listed(address):
                return f"{host} is at {address}, a {why} address"
        return None
