"""ChatError: the one error type the chat logic raises, with its wire shape."""

from __future__ import annotations

from typing import Any

__all__ = ["ChatError", "unavailable"]


class ChatError(Exception):
    """A refusal that a client sees as ``{ok: false, error: {code, message, fields?}}``.

    :param code: machine-readable reason (``invalid``, ``not_in_room``, ...).
    :param message: one human-readable sentence.
    :param fields: marshmallow-style ``{field: [messages]}``, when fields are at fault.
    :param extra: further members of the error object (``retry_after``, ...).
    """

    def __init__(
        self,
        code: str,
        message: str,
        fields: dict[str, Any] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        """The ``error`` object of an ack or of a REST answer."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields is not None:
            error["fields"] = self.fields
        error.update(self.extra)
        return error

    def to_reply(self) -> dict[str, Any]:
        """The whole ``{ok: false, error}`` answer."""
        return {"ok": False, "error": self.to_dict()}


def unavailable(outcome: str | None = None) -> ChatError:
    """Storage did not answer. ``outcome`` (for sends) says whether it may have stored.

    ``"unknown"``: the send may have been stored after all, so a retry with
    the same ``client_id`` is the safe way on; ``"none"``: nothing was written.
    """
    extra: dict[str, Any] = {} if outcome is None else {"outcome": outcome}
    return ChatError("unavailable", "Storage is unreachable; try again shortly.", **extra)
