"""The table of upstream private names matches the installed libraries, and says so when not."""

from __future__ import annotations

import dataclasses

from chat_server.transport import compat


def test_installed_libraries_match_every_private_name_we_rely_on() -> None:
    assert compat.drift() == [], (
        f"python-socketio/python-engineio moved under transport/ "
        f"(installed {compat.installed_versions()}, tested {compat.TESTED})"
    )


def test_every_replaced_body_records_a_hash_per_tested_release() -> None:
    replaced = [entry for entry in compat.NAMES if entry.use == "replace"]
    assert replaced
    assert all(1 <= len(entry.hashes) <= 2 for entry in replaced)


def test_a_changed_upstream_body_is_reported() -> None:
    entry = next(e for e in compat.NAMES if e.use == "replace")
    stale = dataclasses.replace(entry, hashes=frozenset({"0" * 64}))
    problem = compat._check(stale)
    assert problem is not None
    assert "upstream body changed" in problem


def test_a_changed_upstream_signature_is_reported() -> None:
    entry = next(e for e in compat.NAMES if e.signature is not None)
    moved = dataclasses.replace(entry, signature="(self, something_else)")
    problem = compat._check(moved)
    assert problem is not None
    assert "signature" in problem


def test_a_vanished_upstream_name_is_reported() -> None:
    gone = compat.Private("engineio.async_socket:AsyncSocket._gone", "call", "here", "why", "()")
    problem = compat._check(gone)
    assert problem is not None
    assert "gone upstream" in problem


def test_a_vanished_upstream_attribute_is_reported() -> None:
    gone = compat.Private("engineio.base_socket:BaseSocket.no_such_state", "attr", "here", "why")
    problem = compat._check(gone)
    assert problem is not None
    assert "attribute gone" in problem


def test_private_names_of_the_libraries_are_used_only_under_transport() -> None:
    assert {entry.where.split("/")[0] for entry in compat.NAMES} == {"transport"}
