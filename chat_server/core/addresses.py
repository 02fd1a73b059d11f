"""Client addresses: who is really on the other end, given the proxies we trust."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

__all__ = ["Network", "client_address", "parse_networks"]

Network = IPv4Network | IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Addresses and CIDRs (``10.0.0.0/8``, ``::1``) as networks.

    Raises ``ValueError`` naming the first entry that is neither. Host bits
    set in a CIDR (``10.0.0.1/8``) are refused too: they usually mean a typo.
    """
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip()))
        except ValueError:
            raise ValueError(f"not an address or CIDR: {entry.strip()!r}") from None
    return tuple(networks)


def _parse(value: str) -> IPv4Address | IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]  # [v6]:port
    elif value.count(":") == 1:
        value = value.partition(":")[0]  # v4:port
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


def _trusted(address: IPv4Address | IPv6Address, proxies: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], proxies: Sequence[Network]
) -> str:
    """The address a request comes from.

    ``peer`` is the TCP peer; ``forwarded_for`` the ``X-Forwarded-For``
    headers in order. The header counts only when the peer is a trusted
    proxy; then the client is the right-most entry that is not itself a
    trusted proxy. Entries left of it were written by the client, who can
    put anything there, so they are never believed.

    A peer that is not an IP address (a Unix socket) is returned as is; an
    unparsable entry ends the walk and the last trusted hop is the answer.
    """
    if peer is None:
        return "unknown"
    current = _parse(peer)
    if current is None or not proxies or not _trusted(current, proxies):
        return str(current) if current is not None else peer
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            break
        current = address
        if not _trusted(address, proxies):
            break
    return str(current)
