"""The SSRF guard: which URLs and addresses live fetching may reach.

Only ``http`` and ``https`` URLs pass. The host is resolved (every address
``getaddrinfo`` returns) and the URL is refused if any address is loopback, private,
link-local, multicast, reserved, unspecified, shared (CGNAT, 100.64/10), an IPv6 address
that embeds one of those (IPv4-mapped, NAT64, 6to4), or a cloud metadata endpoint.

``allow_private`` opens the door for people who browse their own network:

* ``False`` (default): only public addresses.
* ``True``: any address except cloud metadata endpoints.
* a collection of networks (``["127.0.0.0/8"]``): public addresses plus those networks,
  still never metadata endpoints.

The guard is consulted twice per hop: ``check_url`` before a request (clear error naming
the URL, nothing sent), and ``resolve`` inside the fetcher's network backend, which then
connects to exactly the addresses it checked. A DNS answer that changes between the two
(DNS rebinding) cannot sneak a private address past the check.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import urlsplit

from webqa.errors import BlockedURLError, FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

ALLOWED_SCHEMES = frozenset({"http", "https"})

# Instance metadata services (AWS, GCP, Azure, OpenStack, ECS, Alibaba). Always refused.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "100.100.100.200",
        "168.63.129.16",
    )
)
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog"})

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)


def blocked_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address (e.g. ``"loopback address"``), or None if it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            inner = blocked_reason(embedded)
            return None if inner is None else f"{inner} {embedded} embedded in IPv6"
    if ip in METADATA_ADDRESSES:
        return "cloud metadata address"
    checks: tuple[tuple[bool, str], ...] = (
        (ip.is_unspecified, "unspecified address"),
        (ip.is_loopback, "loopback address"),
        (ip.is_link_local, "link-local address"),
        (ip.is_multicast, "multicast address"),
        (ip in _CGNAT, "shared (CGNAT) address"),
        (any(ip in net for net in _PRIVATE), "private address"),
        (ip.is_reserved, "reserved address"),
        (not ip.is_global, "special-purpose (non-public) address"),
    )
    for hit, reason in checks:
        if hit:
            return reason
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, NAT64 or 6to4 IPv6 address."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def is_metadata_address(ip: IPAddress) -> bool:
    """True for a cloud metadata endpoint, also when embedded in an IPv6 address."""
    if ip in METADATA_ADDRESSES:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        return embedded is not None and embedded in METADATA_ADDRESSES
    return False


def _parse_networks(networks: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in networks)


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class URLGuard:
    """Decides which URLs and addresses a fetch may reach (see the module docstring)."""

    def __init__(
        self,
        *,
        allow_private: bool | Iterable[str | IPNetwork] = False,
        resolver: Resolver | None = None,
    ) -> None:
        self.allow_all_private = allow_private is True
        self.allowed_networks: tuple[IPNetwork, ...] = (
            () if isinstance(allow_private, bool) else _parse_networks(allow_private)
        )
        self._resolver: Resolver = resolver or _system_resolver

    def address_reason(self, ip: IPAddress) -> str | None:
        """Why this guard refuses ``ip``, or None if it may be reached."""
        if is_metadata_address(ip):
            return "cloud metadata address"
        reason = blocked_reason(ip)
        if reason is None or self.allow_all_private:
            return None
        if any(ip.version == net.version and ip in net for net in self.allowed_networks):
            return None
        return reason

    def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address of ``host``, all checked; raises BlockedURLError if any is refused.

        Raises FetchError if the host cannot be resolved.
        """
        name = host.strip("[]").rstrip(".").lower()
        if name in METADATA_HOSTS:
            raise BlockedURLError(f"host {host} is a cloud metadata endpoint")
        try:
            raw = self._resolver(name, port)
        except (OSError, UnicodeError) as exc:
            raise FetchError(f"cannot resolve host {host}: {exc}") from exc
        addresses: list[IPAddress] = []
        for text in raw:
            ip = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
            reason = self.address_reason(ip)
            if reason is not None:
                raise BlockedURLError(f"host {host} resolves to {ip}, a {reason}")
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise FetchError(f"cannot resolve host {host}: no addresses")
        return addresses

    def check_url(self, url: str) -> list[IPAddress]:
        """Check scheme and every resolved address of ``url``; returns the addresses.

        Raises BlockedURLError (one line, naming the URL) if the URL is refused, and
        FetchError if it is malformed or its host cannot be resolved.
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise FetchError(f"malformed URL {url}: {exc}", url=url) from exc
        scheme = parts.scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            shown = f"{scheme!r} is" if scheme else "no scheme is"
            raise BlockedURLError(f"refused {url}: {shown} not allowed (only http, https)", url=url)
        host = parts.hostname
        if not host:
            raise FetchError(f"malformed URL {url}: no host", url=url)
        try:
            return self.resolve(host, port or (443 if scheme == "https" else 80))
        except BlockedURLError as exc:
            raise BlockedURLError(f"refused {url}: {exc}", url=url) from None
        except FetchError as exc:
            raise FetchError(f"{exc} (fetching {url})", url=url) from None
