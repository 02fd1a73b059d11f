"""OriginPolicy: a configured list of origins adds to the server's own, never replaces it."""

from __future__ import annotations

from chat_server.edges.origins import OriginPolicy

ENVIRON = {"HTTP_HOST": "chat.example.com:8080", "wsgi.url_scheme": "http"}


def test_a_listed_origin_is_allowed() -> None:
    assert OriginPolicy(("https://app.example.org",))("https://app.example.org", ENVIRON)


def test_the_servers_own_origin_stays_allowed_beside_a_list() -> None:
    assert OriginPolicy(("https://app.example.org",))("http://chat.example.com:8080", ENVIRON)


def test_an_unlisted_origin_is_refused() -> None:
    assert not OriginPolicy(("https://app.example.org",))("https://evil.example", ENVIRON)


def test_the_origin_seen_through_a_tls_proxy_is_the_servers_own() -> None:
    environ = {**ENVIRON, "HTTP_X_FORWARDED_PROTO": "https", "HTTP_HOST": "chat.example.com"}
    assert OriginPolicy(("https://app.example.org",))("https://chat.example.com", environ)


def test_a_client_without_an_origin_header_is_not_a_browser_and_is_allowed() -> None:
    assert OriginPolicy(("https://app.example.org",))(None, ENVIRON)
