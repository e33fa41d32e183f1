"""The SSRF guard for HTTP steps: which addresses a workflow may reach.

A workflow's URL is data its author controls, and the worker often runs next to things that must
not be reachable from it: the database's own host, the cloud provider's metadata service, the
private network. So before a request is sent, the host is resolved *once*, every address it
resolves to is checked, and the connection is then made to the vetted address (with the original
host name in ``Host`` and TLS SNI, so certificates are still checked against the name). A second
resolution at connect time — DNS rebinding — never happens.

Refused unless the administrator allow-lists them: loopback, private (RFC 1918, unique-local),
link-local (which holds the cloud metadata address 169.254.169.254), multicast, unspecified,
shared (CGNAT, home of Alibaba's 100.100.100.200 metadata address), reserved and every other
non-global range, and IPv4 addresses written inside IPv6 (``::ffff:127.0.0.1``, 6to4/NAT64 are
checked by their embedded IPv4 address). If a name resolves to several addresses, all must pass.

The allow-list (:class:`NetworkPolicy`) holds networks (``10.1.0.0/16``, ``127.0.0.1``) and exact
host names; it comes from the worker option ``--http-allow`` or the environment variable
``DFC_HTTP_ALLOW`` (comma-separated), see ``docs/http.md``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

ALLOW_ENV = "DFC_HTTP_ALLOW"

# Metadata services that sit in otherwise unremarkable ranges (named for clearer refusals).
METADATA_ADDRESSES = frozenset({
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, …
    ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
})  # fmt: skip


class Refused(Exception):
    """The request may not be sent; the message says why and what to do."""


@dataclass(frozen=True)
class NetworkPolicy:
    """Addresses and host names an administrator allows despite the guard."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, items: str | Iterable[str]) -> NetworkPolicy:
        """From ``"127.0.0.0/8, ::1, metadata.internal"`` or a list of such entries."""
        entries = items.split(",") if isinstance(items, str) else list(items)
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if any(char in entry for char in "/:@ "):
                    raise ValueError(
                        f"HTTP allow-list entry {entry!r} is neither a network nor a host name"
                    ) from None
                hosts.add(entry.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    @classmethod
    def from_env(cls) -> NetworkPolicy:
        return cls.parse(os.environ.get(ALLOW_ENV, ""))

    def allows(self, host: str, address: IPAddress) -> bool:
        if host.lower().rstrip(".") in self.hosts:
            return True
        return any(address in network for network in self.networks)


def blocked_reason(address: IPAddress) -> str | None:
    """Why the guard refuses ``address`` by default, or None for a public address."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return blocked_reason(embedded)
    checks = (
        (address.is_loopback, "a loopback address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a public address"),
    )
    for hit, reason in checks:
        if hit:
            return reason
    return None


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        if address not in seen:
            seen.append(address)
    return seen


def vet(host: str, port: int, policy: NetworkPolicy,
        resolver: Resolver = system_resolver) -> str:
    """Resolve ``host`` and return the address to connect to, or raise :class:`Refused`.

    Raises :class:`OSError` when the name does not resolve (a retryable connection failure).
    """
    literal = _literal(host)
    addresses = [literal] if literal is not None else [
        ipaddress.ip_address(text) for text in resolver(host, port)
    ]
    if not addresses:
        raise OSError(f"{host} has no addresses")
    for address in addresses:
        reason = blocked_reason(address)
        if reason is not None and not policy.allows(host, address):
            shown = host if literal is not None else f"{host} ({address})"
            raise Refused(
                f"Blocked: {shown} is {reason}; HTTP steps may only reach public addresses "
                f"unless the administrator allow-lists it (worker option --http-allow or "
                f"{ALLOW_ENV})"
            )
    return str(addresses[0])


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
