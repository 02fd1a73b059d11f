"""The client address of a request: the peer, or what trusted proxies say in X-Forwarded-For."""

from __future__ import annotations

import pytest

from chat_server.core.addresses import client_address, parse_networks

PROXIES = parse_networks(["10.0.0.0/8", "::1"])

# peer, X-Forwarded-For headers, client address
CASES = [
    pytest.param("203.0.113.5", [], "203.0.113.5", id="no-proxy"),
    pytest.param(
        "203.0.113.5", ["198.51.100.1"], "203.0.113.5", id="untrusted-peer-header-ignored"
    ),
    pytest.param("10.0.0.2", ["198.51.100.1"], "198.51.100.1", id="trusted-peer"),
    pytest.param("10.0.0.2", [], "10.0.0.2", id="trusted-peer-no-header"),
    pytest.param("10.0.0.2", ["1.1.1.1, 198.51.100.1"], "198.51.100.1", id="right-most-entry"),
    pytest.param("10.0.0.2", ["198.51.100.1, 10.0.0.9"], "198.51.100.1", id="skips-trusted-hops"),
    pytest.param("10.0.0.2", ["1.1.1.1", "198.51.100.1"], "198.51.100.1", id="two-headers"),
    pytest.param("10.0.0.2", ["10.0.0.7"], "10.0.0.7", id="only-trusted-hops"),
    pytest.param("10.0.0.2", ["garbage"], "10.0.0.2", id="unparsable-entry"),
    pytest.param("10.0.0.2", ["1.1.1.1, garbage"], "10.0.0.2", id="unparsable-right-most"),
    pytest.param("10.0.0.2", ["198.51.100.1:4567"], "198.51.100.1", id="v4-with-port"),
    pytest.param("::1", ["[2001:db8::1]:443"], "2001:db8::1", id="v6-with-port"),
    pytest.param("::ffff:10.0.0.2", ["198.51.100.1"], "198.51.100.1", id="v4-mapped-peer"),
    pytest.param(None, [], "unknown", id="no-peer"),
]


@pytest.mark.parametrize(("peer", "headers", "expected"), CASES)
def test_the_client_address_is_the_peer_unless_a_trusted_proxy_forwards(
    peer: str | None, headers: list[str], expected: str
) -> None:
    assert client_address(peer, headers, PROXIES) == expected


def test_without_trusted_proxies_the_header_is_never_read() -> None:
    assert client_address("10.0.0.2", ["198.51.100.1"], ()) == "10.0.0.2"


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "10.0.0.1/8", "example.com", "10.0.0"])
def test_a_malformed_proxy_entry_is_refused_naming_it(entry: str) -> None:
    with pytest.raises(ValueError, match="not an address or CIDR"):
        parse_networks([entry])
