"""Unit tests of the logging setup."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from chat_server.logs import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_json_format_writes_one_object_per_line_with_extra_fields() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    logging.getLogger("chat_server.test").info("joined %s", "lobby", extra={"sid": "s1"})
    logging.getLogger("chat_server.test").warning("line\nbreak")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["msg"] == "joined lobby"
    assert first["level"] == "INFO"
    assert first["logger"] == "chat_server.test"
    assert first["sid"] == "s1"
    assert first["ts"].endswith("Z")
    assert json.loads(lines[1])["msg"] == "line\nbreak"


@pytest.mark.usefixtures("restore_logging")
def test_json_format_carries_the_traceback_inside_the_line() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("chat_server.test").exception("failed")
    (line,) = stream.getvalue().splitlines()
    assert "RuntimeError: boom" in json.loads(line)["exc"]


@pytest.mark.usefixtures("restore_logging")
def test_level_filters_records_below_it() -> None:
    stream = io.StringIO()
    configure_logging("WARNING", "text", stream)
    logging.getLogger("chat_server.test").info("hidden")
    logging.getLogger("chat_server.test").warning("shown")
    assert "hidden" not in stream.getvalue()
    assert "WARNING chat_server.test: shown" in stream.getvalue()


@pytest.mark.usefixtures("restore_logging")
def test_configuring_twice_replaces_the_handler_instead_of_doubling_lines() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", "text", first)
    configure_logging("INFO", "json", second)
    logging.getLogger("chat_server.test").info("once")
    assert first.getvalue() == ""
    assert len(second.getvalue().splitlines()) == 1


@pytest.mark.usefixtures("restore_logging")
def test_socketio_packet_logging_stays_quiet_at_info() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "text", stream)
    logging.getLogger("socketio.server").info('emitting event "message" text=secret')
    assert "secret" not in stream.getvalue()


@pytest.mark.usefixtures("restore_logging")
def test_malformed_http_requests_log_one_info_line_without_a_traceback() -> None:
    from aiohttp.http_exceptions import LineTooLong

    stream = io.StringIO()
    configure_logging("INFO", "text", stream)
    try:
        raise LineTooLong("request line", "8190", "9000")
    except LineTooLong as exc:
        logging.getLogger("aiohttp.server").exception("Error handling request", exc_info=exc)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "INFO aiohttp.server: Error handling request: 400" in lines[0]


@pytest.mark.usefixtures("restore_logging")
def test_malformed_http_requests_are_silent_above_info() -> None:
    from aiohttp.http_exceptions import BadHttpMessage

    stream = io.StringIO()
    configure_logging("WARNING", "text", stream)
    try:
        raise BadHttpMessage("bad header")
    except BadHttpMessage as exc:
        logging.getLogger("aiohttp.server").exception("Error handling request", exc_info=exc)
    assert stream.getvalue() == ""


@pytest.mark.usefixtures("restore_logging")
def test_server_errors_keep_their_traceback() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "text", stream)
    try:
        raise RuntimeError("a real bug")
    except RuntimeError:
        logging.getLogger("aiohttp.server").exception("Error handling request")
    assert "Traceback" in stream.getvalue()
