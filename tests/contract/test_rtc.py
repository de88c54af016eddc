"""WebRTC signalling in the MQTT contract: the topics, the typed payload, and the link that carries it."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from agent.link import AgentLink
from agent.store import AgentStore
from central.mosquitto import LocalBroker
from contract import Command, CommandReply, Info, PayloadError, Topics, decode, encode, now_iso
from contract.errors import BrokerError
from contract.mqtt import BrokerAddress, make_client
from contract.rtc import RtcMessage

OFFER_SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


def test_rtc_topics_are_written_in_the_senders_subtree_and_read_from_any_school() -> None:
    topics = Topics("school-a", "room-101")
    assert topics.rtc("room-201") == "classroom/v1/school-a/room-101/rtc/room-201"
    assert topics.rtc_inbox == "classroom/v1/+/+/rtc/room-101"


def test_rtc_message_round_trips_through_the_wire() -> None:
    sources = ("teacher", "courseware")
    offer = RtcMessage("offer", "l-1", "2026-11-22T08:00:00Z", "zhuandi", "主讲教室", OFFER_SDP, seq=3, sources=sources)
    assert RtcMessage.from_dict(decode(encode(offer.to_dict()))) == offer
    reject = RtcMessage("reject", "l-1", "2026-11-22T08:00:00Z", reason="not trusted", seq=3)
    wire = decode(encode(reject.to_dict()))
    assert wire == {"schema": 1, "type": "reject", "lesson": "l-1", "ts": "2026-11-22T08:00:00Z", "seq": 3,
                    "reason": "not trusted"}  # fmt: skip
    assert RtcMessage.from_dict(wire) == reject
    assert "sender" not in wire and "from" not in wire  # who sent it is the topic's business


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"type": "ping", "lesson": "l", "ts": "2026-11-22T08:00:00Z"}, "type: got 'ping', expected one of offer"),
        ({"type": "offer", "lesson": "l", "ts": "2026-11-22T08:00:00Z", "mode": "zhuandi"}, "sdp: missing"),
        ({"type": "offer", "lesson": "l", "ts": "2026-11-22T08:00:00Z", "sdp": "v=0"}, "mode: got ''"),
        ({"type": "answer", "lesson": "l", "ts": "yesterday", "sdp": "v=0"}, "bad timestamp 'yesterday'"),
        ({"type": "bye", "ts": "2026-11-22T08:00:00Z"}, "lesson: missing"),
        ({"type": "bye", "lesson": "l", "ts": "2026-11-22T08:00:00Z", "seq": "1"}, "seq: got '1'"),
        ({"type": "bye", "lesson": "l", "ts": "2026-11-22T08:00:00Z", "sources": [1]}, "sources: got [1]"),
    ],
)
def test_a_malformed_rtc_payload_names_what_is_wrong(payload: dict[str, Any], error: str) -> None:
    with pytest.raises(PayloadError, match=re.escape(error)):
        RtcMessage.from_dict(payload)


HERE = {"type": "here", "lesson": "", "ts": "2026-11-22T08:00:00Z", "room": "村小 三年级"}


def test_presence_round_trips_hello_carries_nothing_here_says_room_and_state() -> None:
    hello = RtcMessage("hello", "", "2026-11-22T08:00:00Z", seq=7)
    assert decode(encode(hello.to_dict())) == {"schema": 1, "type": "hello", "lesson": "", "ts": hello.ts, "seq": 7}
    assert RtcMessage.from_dict(hello.to_dict()) == hello
    busy = RtcMessage.from_dict({**HERE, "state": "remote", "main": "room-main", "mode": "zhuandi", "seq": 7})
    assert (busy.room, busy.state, busy.main, busy.mode) == ("村小 三年级", "remote", "room-main", "zhuandi")
    assert RtcMessage.from_dict(decode(encode(busy.to_dict()))) == busy
    assert RtcMessage.from_dict({**HERE, "state": "free"}).main == ""


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (HERE, "state: got '', expected one of free, leading, remote"),
        ({**HERE, "state": "asleep"}, "state: got 'asleep', expected one of free, leading, remote"),
        ({**HERE, "state": "free", "room": " "}, "room: missing (a here names its classroom)"),
        ({**HERE, "state": "remote"}, "main: got '', expected the leading agent exactly when state is remote"),
        ({**HERE, "state": "free", "main": "room-x"}, "main: got 'room-x', expected the leading agent"),
        ({**HERE, "state": 1}, "state: got 1"),
        ({**HERE, "type": "hello", "state": "free"}, "state: only a here says it, got one in a hello"),
        ({**HERE, "type": "bye", "main": "room-x"}, "state: only a here says it, got one in a bye"),
        ({**HERE, "type": "hello", "sdp": "v=0"}, "sdp: a hello carries no session description"),
    ],
)
def test_a_malformed_presence_message_names_what_is_wrong(payload: dict[str, Any], error: str) -> None:
    with pytest.raises(PayloadError, match=re.escape(error)):
        RtcMessage.from_dict(payload)


class Received:
    def __init__(self) -> None:
        self.items: list[tuple[str, str, RtcMessage]] = []

    def __call__(self, site: str, agent: str, message: RtcMessage) -> None:
        self.items.append((site, agent, message))


async def no_commands(command: Command) -> CommandReply:
    return CommandReply(command.id, "rejected", error="no commands here")


def link_for(store: AgentStore, broker: LocalBroker, on_rtc: Received) -> AgentLink:
    return AgentLink(
        BrokerAddress.parse(broker.url),
        Topics("school-a", "room-101"),
        store,
        version="test",
        info=lambda: Info("room", "host", "test", ()),
        states=lambda: [],
        run_command=no_commands,
        on_rtc=on_rtc,
    )


async def test_signalling_reaches_the_handler_with_the_sender_from_the_topic_and_garbage_is_refused(
    tmp_path: Path, broker: LocalBroker
) -> None:
    received = Received()
    store = AgentStore(tmp_path / "agent.db")
    link = link_for(store, broker, received)
    with pytest.raises(BrokerError, match="cannot send bye to room-201: not connected"):
        await link.send_rtc("room-201", RtcMessage("bye", "l-1", now_iso()))
    task = asyncio.create_task(link.run())
    try:
        async with asyncio.timeout(15):
            await link.wait_connected()
        address = BrokerAddress.parse(broker.url)
        async with make_client(address, f"peer-{uuid.uuid4().hex[:6]}") as peer:
            await peer.subscribe("classroom/v1/+/room-101/rtc/room-201", qos=1)
            offer = RtcMessage("offer", "l-1", now_iso(), "dual_teacher", sdp=OFFER_SDP, seq=1, sources=("teacher",))
            # room-201 of another school writes in its own subtree, addressed to room-101
            await peer.publish("classroom/v1/school-b/room-201/rtc/room-101", encode(offer.to_dict()), qos=1)
            bad = {"type": "answer", "lesson": "l-1", "ts": now_iso()}
            await peer.publish("classroom/v1/school-b/room-201/rtc/room-101", encode(bad), qos=1)
            broken_reject = encode({**bad, "type": "reject", "lesson": 5})  # never answered: no reject ping-pong
            await peer.publish("classroom/v1/school-b/room-201/rtc/room-101", broken_reject, qos=1)
            await peer.publish("classroom/v1/school-b/room-201/rtc/room-999", encode(offer.to_dict()), qos=1)
            async with asyncio.timeout(15):
                async for message in peer.messages:
                    reply = json.loads(message.payload)  # type: ignore[arg-type]
                    break
            assert str(message.topic) == "classroom/v1/school-a/room-101/rtc/room-201"
            assert reply["type"] == "reject"
            assert reply["reason"] == "malformed signalling: sdp: missing (an answer carries a session description)"
            assert reply["lesson"] == "l-1"

            await link.send_rtc("room-201", RtcMessage("bye", "l-1", now_iso(), reason="lesson over"))
            async with asyncio.timeout(15):
                async for message in peer.messages:
                    sent = json.loads(message.payload)  # type: ignore[arg-type]
                    break
            assert (sent["type"], sent["reason"]) == ("bye", "lesson over")
            assert not message.retain
        assert [(s, a, m) for s, a, m in received.items] == [("school-b", "room-201", offer)]  # one, not four
        assert link.connected  # garbage did not take the link (or its commands) down
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        store.close()
