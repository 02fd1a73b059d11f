"""Logging setup: plain text for people, one JSON object per line for machines.

What the server logs at INFO is about connections, rooms and faults: who
connected, which room they joined, that Redis went away. Message text is
users' data and never appears at INFO or above; handlers that want it for
debugging log it at DEBUG only.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import IO, Any

from aiohttp.http_exceptions import HttpProcessingError

__all__ = ["ClientErrorFilter", "JsonFormatter", "configure_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every LogRecord carries; anything else came in through ``extra=``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)

# Libraries that log every packet at INFO would drown the server's own lines
# and, worse, write message text; they speak only from WARNING up unless the
# operator asks for DEBUG.
_CHATTY_LOGGERS = ("socketio", "engineio", "aiohttp.access")


class ClientErrorFilter(logging.Filter):
    """Turns aiohttp's tracebacks for malformed HTTP requests into one INFO line.

    A request line over 8 KiB or a broken header is the client's fault and
    common on the open internet; aiohttp logs each at ERROR with a traceback,
    which would let anyone fill the logs and bury real errors.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500:
            record.msg = f"{record.getMessage()}: {exc.code} {exc.message}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
            return logging.getLogger(record.name).isEnabledFor(logging.INFO)
        return True


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line.

    Keys: ``ts`` (ISO 8601, UTC, milliseconds), ``level``, ``logger``,
    ``msg`` (the %-formatted message), any ``extra=`` fields, and ``exc``
    with the traceback text when there is one.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: an odd extra value must not make a log line vanish.
        return json.dumps(entry, ensure_ascii=False, default=str)


def _iso_utc(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def configure_logging(level: str, fmt: str = "text", stream: IO[str] | None = None) -> None:
    """Send the root logger's records to ``stream`` (stderr) at ``level``.

    :param level: a ``logging`` level name (``INFO``, ``DEBUG``, ...).
    :param fmt: ``text`` for people, ``json`` for one JSON object per line.
    :param stream: where to write; ``sys.stderr`` unless given.

    Calling it again replaces the handler it installed before, so tests and
    ``main()`` may both call it.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.set_name("chat_server")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "chat_server"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, ClientErrorFilter) for f in server_log.filters):
        server_log.addFilter(ClientErrorFilter())
