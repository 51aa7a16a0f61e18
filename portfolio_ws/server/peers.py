"""Who is on the other end of a request: its address (behind trusted proxies only) and whether its
browser Origin is one we serve. Pure functions over strings; the handlers pass the request's parts.

Rules kept here:
- the socket's peer address is the client's, unless the peer is a trusted proxy
  (``server.trusted_proxies``); only then are ``X-Forwarded-For`` / ``X-Real-IP`` read, so no one
  else can choose the address the login limits count against;
- ``X-Forwarded-For`` is read from the right (the hop nearest us) past every trusted proxy: the first
  address not trusted is the client. Anything to its left was written by the client and is ignored;
- a header that doesn't parse as an address is ignored, never trusted;
- an Origin is allowed when it is in ``server.allowed_origins``, or, with that list empty, when its
  host is the request's own ``Host``.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, Mapping
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or bare addresses) as networks; ValueError names the first bad one."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an address or CIDR: {cidr!r}") from None
    return tuple(networks)


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # "192.0.2.1:443"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """The proxies allowed to tell us the client's address."""

    def __init__(self, networks: tuple[Network, ...] = ()) -> None:
        self.networks = networks

    @classmethod
    def from_cidrs(cls, cidrs: Iterable[str]) -> "TrustedProxies":
        return cls(parse_networks(cidrs))

    def trusts(self, address: Address | None) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def client_address(self, peer: str | None, headers: Mapping[str, str]) -> str:
        """The client's address: ``peer`` (the socket's), or what a trusted proxy says it is."""
        peer_address = _address(peer or "")
        if peer_address is None:
            return peer or "unknown"
        if not self.networks or not self.trusts(peer_address):
            return str(peer_address)
        forwarded = headers.get("X-Forwarded-For")
        if forwarded:
            client = peer_address
            for hop in reversed(forwarded.split(",")):
                address = _address(hop)
                if address is None:
                    break  # garbage from here leftwards: the last good hop is as far as we trust
                client = address
                if not self.trusts(address):
                    break
            return str(client)
        real_ip = _address(headers.get("X-Real-IP", ""))
        return str(real_ip if real_ip is not None else peer_address)


def origin_allowed(origin: str, host: str, allowed: Iterable[str]) -> bool:
    """Whether a browser at ``origin`` may use this server (WebSocket upgrade, login)."""
    allowed = tuple(allowed)
    if not allowed:  # default: the server's own host
        return urlsplit(origin).netloc.lower() == host.lower()
    return origin.rstrip("/").lower() in {o.rstrip("/").lower() for o in allowed}
