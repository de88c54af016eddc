"""Command replies: typed statuses that travel as the same plain strings as before."""

from __future__ import annotations

import json

import pytest

from contract import REPLY_STATUSES, CommandReply, CommandStatus, PayloadError, decode, encode


def test_a_reply_round_trips_with_a_typed_status_and_an_unchanged_wire_form() -> None:
    reply = CommandReply("c-1", CommandStatus.FAILED, error="panel: no reply", name="panel.power")
    wire = encode(reply.to_dict())
    assert json.loads(wire) == {
        "schema": 1,
        "id": "c-1",
        "status": "failed",
        "command": "panel.power",
        "error": "panel: no reply",
    }
    back = CommandReply.from_dict(decode(wire))
    assert back == reply and back.status is CommandStatus.FAILED


def test_an_agent_reply_never_says_timeout_that_is_the_centre_s_own_verdict() -> None:
    assert REPLY_STATUSES == ("succeeded", "failed", "rejected", "expired")
    with pytest.raises(PayloadError, match="status"):
        CommandReply.from_dict({"id": "c-2", "status": "timeout", "error": "late"})
