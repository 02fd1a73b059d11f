"""Property-based input: any payload for any event or REST field gets the contract's shape.

Hypothesis generates JSON values of every kind, and objects whose keys are
the fields each event or endpoint knows, filled with anything at all. Whatever
comes in, the answer must be ``{ok: true, ...}`` or ``{ok: false, error:
{code, message, fields?}}`` with ``fields`` in marshmallow's shape, and the
connection must stay up.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chat_server.config import Settings
from chat_server.edges.rest import MAX_BODY
from tests.support.clients import ChatClient
from tests.support.fixtures import Connect, StartServer
from tests.support.settings import API_KEY

AUTH = {"Authorization": f"Bearer {API_KEY}"}

# The server and the connection are built once per test and shared by its
# examples on purpose: it is the same long-lived server an attacker would face.
PROPERTY_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.text(alphabet=st.characters(codec="utf-8"), min_size=1900, max_size=2100)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
names = st.from_regex(r"[A-Za-z0-9_.#\-]{0,70}", fullmatch=True)
ids = st.from_regex(r"[0-9]{1,16}-[0-9]{1,17}", fullmatch=True) | st.text(max_size=40)
field_values: dict[str, st.SearchStrategy[Any]] = {
    "room": names | json_values,
    "text": st.text(max_size=2100) | json_values,
    "to": names | json_values,
    "with": names | json_values,
    "since": ids | json_values,
    "before": ids | json_values,
    "limit": st.integers(min_value=-5, max_value=500) | json_values,
    "from": names | json_values,
    "broadcast": st.booleans() | json_values,
}


def payloads(fields: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """Objects with any subset of ``fields`` (and maybe strangers), or any JSON value."""
    known = st.fixed_dictionaries({}, optional={f: field_values[f] for f in fields})
    extra = st.dictionaries(st.text(max_size=8), json_values, max_size=2)
    mixed = st.builds(lambda a, b: {**b, **a}, known, extra)
    return known | mixed | json_values


EVENT_FIELDS = {
    "join": ("room", "since"),
    "leave": ("room",),
    "message": ("room", "text"),
    "private_message": ("to", "text"),
    "typing": ("room",),
    "history": ("room", "with", "before", "limit"),
}


#: Room for the packet's type, ack id and brackets beside the JSON of its arguments.
PACKET_OVERHEAD = 64


def fits_in_a_packet(event: str, *args: Any) -> bool:
    """Whether the event's packet stays within ``CHAT_MAX_PAYLOAD``.

    A larger one closes the connection, as the contract says, so it has no
    ack to check; hypothesis now and then draws one (2,000 non-BMP
    characters a leaf, escaped to 12 bytes each).
    """
    return len(json.dumps([event, *args])) + PACKET_OVERHEAD <= Settings().max_payload


def assert_contract_answer(answer: Any) -> None:
    assert isinstance(answer, dict), answer
    assert answer.get("ok") in (True, False), answer
    if answer["ok"]:
        return
    error = answer.get("error")
    assert isinstance(error, dict), answer
    assert isinstance(error.get("code"), str) and error["code"], answer
    assert isinstance(error.get("message"), str), answer
    if "fields" in error:
        assert isinstance(error["fields"], dict), answer
        for name, messages in error["fields"].items():
            assert isinstance(name, str), answer
            assert isinstance(messages, list), answer
            assert all(isinstance(m, str) for m in messages), answer


@pytest.fixture
async def user(start_server: StartServer, make_settings: Any, connect: Connect) -> ChatClient:
    url = await start_server(make_settings())
    client = await connect(url, "prop")
    await client.call("join", {"room": "lobby"})
    return client


@pytest.fixture
async def rest(start_server: StartServer, make_settings: Any) -> str:
    return await start_server(make_settings())


@pytest.mark.parametrize("event", EVENT_FIELDS)
@PROPERTY_SETTINGS
@given(data=st.data())
async def test_any_payload_of_any_event_gets_a_contract_answer(
    user: ChatClient, event: str, data: st.DataObject
) -> None:
    payload = data.draw(payloads(EVENT_FIELDS[event]), label="payload")
    assume(fits_in_a_packet(event, payload))
    assert_contract_answer(await user.call(event, payload))
    assert user.sio.connected


@PROPERTY_SETTINGS
@given(
    event=st.sampled_from(list(EVENT_FIELDS)) | st.text(max_size=30),
    args=st.lists(json_values, max_size=3),
)
async def test_any_number_of_arguments_gets_a_contract_answer(
    user: ChatClient, event: str, args: list[Any]
) -> None:
    if event in user.sio.reserved_events:
        return  # python-socketio's client refuses to send these names
    assume(fits_in_a_packet(event, *args))
    answer = await user.sio.call(event, tuple(args), timeout=5)
    assert_contract_answer(answer)
    assert user.sio.connected


@PROPERTY_SETTINGS
@given(body=payloads(("room", "to", "broadcast", "text", "from")))
async def test_any_json_body_of_a_rest_emit_gets_200_or_a_400_error(
    rest: str, http: aiohttp.ClientSession, body: Any
) -> None:
    data = json.dumps(body).encode()
    # Hypothesis now and then makes a body past the limit: that one is 413.
    expected = (413,) if len(data) > MAX_BODY else (200, 400)
    headers = {**AUTH, "Content-Type": "application/json"}
    async with http.post(f"{rest}/api/emit", data=data, headers=headers) as resp:
        answer = await resp.json()
        assert resp.status in expected, (resp.status, answer)
    assert_contract_answer(answer)
    assert answer["ok"] is (resp.status == 200)


@PROPERTY_SETTINGS
@given(body=st.binary(max_size=300))
async def test_any_bytes_as_a_rest_body_get_200_or_a_400_error(
    rest: str, http: aiohttp.ClientSession, body: bytes
) -> None:
    async with http.post(f"{rest}/api/emit", data=body, headers=AUTH) as resp:
        answer = await resp.json()
        assert resp.status in (200, 400), (resp.status, answer)
    assert_contract_answer(answer)


@PROPERTY_SETTINGS
@given(room=st.text(min_size=1, max_size=80))
async def test_any_room_in_a_rest_read_gets_200_or_a_json_error(
    rest: str, http: aiohttp.ClientSession, room: str
) -> None:
    async with http.get(f"{rest}/api/rooms/{quote(room, safe='')}", headers=AUTH) as resp:
        assert resp.status in (200, 400, 404), resp.status
        answer = await resp.json()
    if resp.status == 200:
        assert isinstance(answer["members"], list)
        assert isinstance(answer["history"], list)
    else:
        assert_contract_answer(answer)
        assert answer["ok"] is False


@PROPERTY_SETTINGS
@given(authorization=st.text(max_size=60))
async def test_any_authorization_header_gets_200_or_401(
    rest: str, http: aiohttp.ClientSession, authorization: str
) -> None:
    headers = {"Authorization": authorization.encode("utf-8", "replace").decode("latin-1")}
    try:
        async with http.get(f"{rest}/api/rooms/lobby", headers=headers) as resp:
            assert resp.status in (200, 401), resp.status
            answer = await resp.json()
        if resp.status == 401:
            assert_contract_answer(answer)
    except ValueError:
        pass  # aiohttp itself refuses to send a header with a newline in it
