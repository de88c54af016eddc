"""Command replies: typed statuses that travel as the same plain strings as before."""

from __future__ import annotations

import json

import pytest

from contract import REPLY_STATUSES, CommandReply, CommandStatus, Event, PayloadError, decode, encode


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


def test_an_event_carries_its_id_and_an_older_agent_s_event_without_one_is_still_read() -> None:
    event = Event("projector.lamp", "warning", "raise", "2026-11-22T08:00:00Z", "hot", "proj", {"hours": 5}, "e-1")
    wire = decode(encode(event.to_dict()))
    assert wire["id"] == "e-1" and Event.from_dict(wire) == event
    old = {k: v for k, v in wire.items() if k != "id"}
    assert Event.from_dict(old) == Event("projector.lamp", "warning", "raise", event.ts, "hot", "proj", {"hours": 5})
    assert "id" not in Event.from_dict(old).to_dict()


@pytest.mark.parametrize("ident", [7, "x" * 129])
def test_an_event_id_that_is_not_a_short_text_is_refused(ident: object) -> None:
    data = {"type": "t", "severity": "info", "action": "log", "ts": "2026-11-22T08:00:00Z", "id": ident}
    with pytest.raises(PayloadError, match="id"):
        Event.from_dict(data)
