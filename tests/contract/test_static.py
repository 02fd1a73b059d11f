"""The browser client is served at ``/``."""

from __future__ import annotations

import aiohttp


async def test_root_serves_an_html_page(chat_url: str, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{chat_url}/") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        page = (await response.text()).lower()
    assert "<html" in page
    assert "</html>" in page


async def test_root_needs_no_key(chat_url: str, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{chat_url}/", headers={"Authorization": "Bearer wrong"}) as response:
        assert response.status == 200


async def test_socket_io_is_served_under_socket_io(
    chat_url: str, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{chat_url}/socket.io/?EIO=4&transport=polling") as response:
        assert response.status == 200
        assert (await response.text()).startswith("0{")
