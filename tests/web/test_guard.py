"""The SSRF guard: which addresses and URLs live fetching may reach."""

from __future__ import annotations

import ipaddress

import pytest

from webqa.errors import BlockedURLError, FetchError
from webqa.web.guard import URLGuard, blocked_reason

BLOCKED = {
    "127.0.0.1": "loopback address",
    "127.5.5.5": "loopback address",
    "10.1.2.3": "private address",
    "172.16.0.1": "private address",
    "172.31.255.255": "private address",
    "192.168.1.1": "private address",
    "169.254.169.254": "cloud metadata address",
    "169.254.170.2": "cloud metadata address",
    "100.100.100.200": "cloud metadata address",
    "169.254.1.1": "link-local address",
    "100.64.0.1": "shared (CGNAT) address",
    "100.127.255.254": "shared (CGNAT) address",
    "0.0.0.0": "unspecified address",
    "0.1.2.3": "special-purpose (non-public) address",
    "224.0.0.1": "multicast address",
    "239.255.255.250": "multicast address",
    "240.0.0.1": "reserved address",
    "255.255.255.255": "reserved address",
    "192.0.2.1": "special-purpose (non-public) address",
    "198.18.0.1": "special-purpose (non-public) address",
    "::1": "loopback address",
    "::": "unspecified address",
    "fe80::1": "link-local address",
    "fc00::1": "private address",
    "fd12:3456::1": "private address",
    "ff02::1": "multicast address",
    "fd00:ec2::254": "cloud metadata address",
    "2001:db8::1": "special-purpose (non-public) address",
    "::a00:1": "reserved address",
    "::ffff:127.0.0.1": "loopback address 127.0.0.1 embedded in IPv6",
    "::ffff:10.0.0.1": "private address 10.0.0.1 embedded in IPv6",
    "::ffff:169.254.169.254": "cloud metadata address 169.254.169.254 embedded in IPv6",
    "64:ff9b::a00:1": "private address 10.0.0.1 embedded in IPv6",
    "2002:a00:1::": "private address 10.0.0.1 embedded in IPv6",
    "2002:7f00:1::1": "loopback address 127.0.0.1 embedded in IPv6",
}

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "100.63.255.255",
    "100.128.0.1",
    "172.32.0.1",
    "192.169.0.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001:81c::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize(("address", "reason"), sorted(BLOCKED.items()))
def test_blocked_addresses(address: str, reason: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None
    assert URLGuard().address_reason(ipaddress.ip_address(address)) is None


def test_allow_private_true_opens_everything_but_metadata() -> None:
    guard = URLGuard(allow_private=True)
    for address in ("127.0.0.1", "10.0.0.1", "::1", "fe80::1", "100.64.0.1"):
        assert guard.address_reason(ipaddress.ip_address(address)) is None
    for address in ("169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254"):
        assert guard.address_reason(ipaddress.ip_address(address)) == "cloud metadata address"


def test_allow_private_networks_opens_only_those() -> None:
    guard = URLGuard(allow_private=["127.0.0.0/8", "fd00:1::/32"])
    assert guard.address_reason(ipaddress.ip_address("127.0.0.1")) is None
    assert guard.address_reason(ipaddress.ip_address("fd00:1::5")) is None
    assert guard.address_reason(ipaddress.ip_address("10.0.0.1")) == "private address"
    assert guard.address_reason(ipaddress.ip_address("::1")) == "loopback address"
    assert guard.address_reason(ipaddress.ip_address("8.8.8.8")) is None


def fake_dns(table: dict[str, list[str]]) -> URLGuard:
    return URLGuard(resolver=lambda host, port: table[host])


def test_check_url_names_the_url_and_the_address() -> None:
    guard = fake_dns({"intranet.example": ["10.9.8.7"]})
    with pytest.raises(BlockedURLError) as info:
        guard.check_url("http://intranet.example/admin")
    assert str(info.value) == (
        "refused http://intranet.example/admin: host intranet.example resolves to 10.9.8.7,"
        " a private address"
    )
    assert info.value.url == "http://intranet.example/admin"


def test_every_resolved_address_is_checked() -> None:
    guard = fake_dns({"mixed.example": ["93.184.216.34", "127.0.0.1"]})
    with pytest.raises(BlockedURLError, match="resolves to 127.0.0.1, a loopback address"):
        guard.check_url("https://mixed.example/")


def test_public_host_passes_and_returns_addresses() -> None:
    guard = fake_dns({"example.com": ["93.184.216.34", "2606:2800:220:1::248"]})
    assert [str(ip) for ip in guard.check_url("https://example.com/x")] == [
        "93.184.216.34",
        "2606:2800:220:1::248",
    ]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("file:///etc/passwd", "'file' is"),
        ("ftp://example.com/x", "'ftp' is"),
        ("gopher://example.com/", "'gopher' is"),
        ("javascript:alert(1)", "'javascript' is"),
        ("//example.com/x", "no scheme is"),
    ],
)
def test_only_http_and_https(url: str, shown: str) -> None:
    with pytest.raises(BlockedURLError) as info:
        URLGuard().check_url(url)
    assert str(info.value) == f"refused {url}: {shown} not allowed (only http, https)"


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/",
        "http://127.0.0.1:8080/",
        "http://127.1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://10.0.0.1/",
    ],
)
def test_local_urls_refused_with_real_resolver(url: str) -> None:
    with pytest.raises(BlockedURLError, match="^refused "):
        URLGuard().check_url(url)


def test_metadata_host_names_refused_before_resolving() -> None:
    def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError("resolver must not be called")

    for url in ("http://metadata.google.internal/computeMetadata/v1/", "http://METADATA.GOOG./"):
        with pytest.raises(BlockedURLError, match="is a cloud metadata endpoint"):
            URLGuard(resolver=no_dns, allow_private=True).check_url(url)


def test_unresolvable_host_is_a_fetch_error_not_a_block() -> None:
    def failing(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(FetchError) as info:
        URLGuard(resolver=failing).check_url("http://nowhere.invalid/")
    assert not isinstance(info.value, BlockedURLError)
    assert str(info.value) == (
        "cannot resolve host nowhere.invalid: Name or service not known"
        " (fetching http://nowhere.invalid/)"
    )


def test_malformed_urls() -> None:
    with pytest.raises(FetchError, match="no host"):
        URLGuard().check_url("http:///path")
    with pytest.raises(FetchError, match="malformed URL"):
        URLGuard().check_url("http://example.com:99999999/")
