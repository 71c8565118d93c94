"""Where the server may connect, as an operator writes it: comma-separated CIDRs or host
names, ``*`` for anywhere (``OPENDMS_TARGET_HOSTS``, ``OPENDMS_UPLOAD_HOSTS``)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class HostList:
    any: bool
    networks: tuple[IPNetwork, ...]
    names: frozenset[str]  # lower-case, without a trailing dot

    @classmethod
    def parse(cls, spec: str) -> HostList:
        networks: list[IPNetwork] = []
        names: set[str] = set()
        any_ = False
        for raw in spec.split(","):
            item = raw.strip().lower().rstrip(".")
            if item == "*":
                any_ = True
            elif item:
                try:
                    networks.append(ipaddress.ip_network(item, strict=False))
                except ValueError:
                    names.add(item)
        return cls(any_, tuple(networks), frozenset(names))

    def names_host(self, host: str) -> bool:
        """``host`` (a name as written) is listed by name, or the list is ``*``."""
        return self.any or host.lower().rstrip(".") in self.names

    def holds(self, address: IPAddress) -> bool:
        """``address`` is in a listed network, or the list is ``*``."""
        return self.any or any(
            address.version == net.version and address in net for net in self.networks
        )
