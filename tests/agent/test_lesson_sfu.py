"""Lessons through an SFU: three agent processes and a real Janus (Debian's janus 1.1.2).

Runs in a loopback-only network namespace (scripts/loopback-ns): the agents' ICE uses the veth
address the Janus fixture adds there (tests/janus_fixture.py), since Janus never gathers
candidates on loopback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from janus_fixture import ADDRESS, LocalJanus, janus, media_link
from rooms import Room, cli, lesson_config, running, until

from central.mosquitto import LocalBroker, free_port
from contract import PayloadError
from contract.rtc import RtcMessage
from streaming import stamp

__all__ = ["janus", "media_link"]  # fixtures

TS = "2026-11-22T10:00:00Z"


def sfu_config(tmp: Path, broker: LocalBroker, agent_id: str, lesson: str, sources: str) -> tuple[Path, int]:
    """One room's config (as in test_lesson_processes) with ICE on the SFU's link."""
    port = free_port()
    path = lesson_config(tmp, broker.url, "lesson-school", agent_id, port, lesson, sources)
    text = path.read_text(encoding="utf-8").replace('["127.0.0.1"]', f'["{ADDRESS}"]')
    path.write_text(text, encoding="utf-8")
    return path, port


@contextmanager
def sfu_rooms(
    tmp: Path, broker: LocalBroker, janus: LocalJanus, remotes: tuple[str, ...], extra: str = ""
) -> Iterator[list[Room]]:
    """room-main (teacher, courseware, sending through Janus) and `remotes` (students each), running."""
    made = []
    main_lesson = f'send = ["teacher", "courseware"]\nsfu = "{janus.url}"\nsfu_timeout_s = 5\n{extra}'
    config, port = sfu_config(tmp, broker, "room-main", main_lesson, 'teacher = "synthetic:teacher"\n'
                              'courseware = "synthetic:courseware"')  # fmt: skip
    made.append(Room(config, port, tmp / "room-main.log"))
    for agent_id in remotes:
        lesson = 'answer_with = ["students"]\ntrusted = ["room-main"]'
        config, port = sfu_config(tmp, broker, agent_id, lesson, 'students = "synthetic:students"')
        made.append(Room(config, port, tmp / f"{agent_id}.log"))
    with running(made):
        yield made


def stamp_of(room: Room, picture: str) -> int | None:
    """The frame counter burned into `room`'s newest copy of incoming `picture` (``agent/source``)."""
    png = np.frombuffer(room.get(f"/api/lesson/pictures/{picture}.png"), np.uint8)
    read = stamp.read(cv2.imdecode(png, cv2.IMREAD_COLOR))
    return None if read is None else read[0]


async def counting(room: Room, picture: str, samples: int = 4) -> list[int]:
    """`samples` readings of the counter in `room`'s copy of `picture`, a second apart; each must be there."""
    seen = []
    for _ in range(samples):
        seen.append(await until(lambda: stamp_of(room, picture), timeout=30))
        await asyncio.sleep(1.0)
    return seen


def alarms(room: Room, kind: str) -> list[dict[str, Any]]:
    return [a for a in room.status()["alarms"] if a["type"] == kind]


async def started(rooms: list[Room]) -> None:
    for room in rooms:
        await until(lambda r=room: r.status()["broker"]["connected"])  # type: ignore[misc]
    remotes = ",".join(room.config.stem for room in rooms[1:])
    reply = await asyncio.to_thread(cli, rooms[0], "lesson.start", "mode=zhuandi", f"remotes={remotes}")
    assert reply["status"] == "succeeded", (reply, rooms[0].tail())


def test_two_remotes_pull_the_lesson_from_the_sfu_which_the_main_feeds_once(
    tmp_path: Path, broker: LocalBroker, janus: LocalJanus
) -> None:
    async def main() -> None:
        with sfu_rooms(tmp_path, broker, janus, ("room-a", "room-b")) as rooms:
            leader, a, b = rooms
            await started(rooms)
            for remote in (a, b):
                pulled = await until(lambda r=remote: r.peer("room-main").get("sfu_state") == "pulling" and r)
                assert pulled.peer("room-main")["via"] == "sfu", pulled.peer("room-main")
            seen = await asyncio.gather(counting(a, "room-main/teacher"), counting(b, "room-main/teacher"))
            for counters in seen:  # each remote classroom decodes the main's teacher camera, moving on
                assert all(x < y for x, y in zip(counters, counters[1:], strict=False)), seen
            # The way back stays peer to peer: the main classroom sees both rooms' students.
            assert await until(lambda: stamp_of(leader, "room-a/students")) is not None
            assert await until(lambda: stamp_of(leader, "room-b/students")) is not None

            lesson = leader.lesson()
            assert lesson["sfu"]["state"] == "publishing" and lesson["sfu"]["frames_sent"] > 0, lesson
            for name in ("room-a", "room-b"):
                assert lesson["peers"][name]["via"] == "sfu", lesson["peers"][name]
                assert lesson["peers"][name]["frames_sent"] == 0, lesson["peers"][name]  # nothing sent to it directly
            # One upload whatever the number of remote classrooms: each encoder feeds one link, the SFU.
            assert {name: s["links"] for name, s in lesson["sending"].items()} == {
                "teacher": 1,
                "courseware": 1,
                "audio": 1,
            }, lesson["sending"]
            before, t0 = lesson["sending"]["teacher"]["frames_encoded"], time.monotonic()
            await asyncio.sleep(4.0)
            encoded = leader.lesson()["sending"]["teacher"]["frames_encoded"] - before
            elapsed = time.monotonic() - t0
            assert encoded <= 15 * elapsed * 1.3 + 5, (encoded, elapsed)  # 15 fps encoded once, not once per room
            assert not alarms(leader, "sfu_unreachable")

            stopped = await asyncio.to_thread(cli, leader, "lesson.stop")
            assert stopped["status"] == "succeeded", stopped
            await until(lambda: not a.lesson()["active"] and not b.lesson()["active"])

    asyncio.run(main())


def test_janus_stopped_raises_an_alarm_and_the_lesson_goes_on_peer_to_peer(
    tmp_path: Path, broker: LocalBroker, janus: LocalJanus
) -> None:
    async def main() -> None:
        with sfu_rooms(tmp_path, broker, janus, ("room-a",)) as rooms:
            leader, a = rooms
            await started(rooms)
            await until(lambda: a.peer("room-main").get("sfu_state") == "pulling")
            await counting(a, "room-main/teacher", samples=2)

            janus.stop()
            alarm = await until(lambda: alarms(leader, "sfu_unreachable"))
            assert janus.url in alarm[0]["message"] and "peer to peer" in alarm[0]["message"], alarm
            back = await until(lambda: leader.peer("room-a").get("via") == "p2p" and leader.peer("room-a"))
            await until(lambda: leader.peer("room-a").get("state") == "connected")
            counters = await counting(a, "room-main/teacher")
            assert all(x < y for x, y in zip(counters, counters[1:], strict=False)), (counters, back)
            assert leader.lesson()["sending"]["teacher"]["links"] == 1  # now the peer, not the SFU

            janus.start()  # Janus is back: the lesson returns to it by itself
            await until(lambda: leader.lesson()["sfu"]["state"] == "publishing", timeout=90)
            await until(lambda: leader.peer("room-a").get("via") == "sfu")
            await until(lambda: a.peer("room-main").get("sfu_state") == "pulling")
            await until(lambda: not alarms(leader, "sfu_unreachable"))
            counters = await counting(a, "room-main/teacher")
            assert all(x < y for x, y in zip(counters, counters[1:], strict=False)), counters

    asyncio.run(main())


def test_a_lesson_smaller_than_sfu_min_remotes_stays_peer_to_peer(
    tmp_path: Path, broker: LocalBroker, janus: LocalJanus
) -> None:
    async def main() -> None:
        with sfu_rooms(tmp_path, broker, janus, ("room-a",), "sfu_min_remotes = 2") as rooms:
            leader, a = rooms
            await started(rooms)
            await counting(a, "room-main/teacher", samples=2)
            lesson = leader.lesson()
            assert "sfu" not in lesson and lesson["peers"]["room-a"]["via"] == "p2p", lesson
            await until(lambda: leader.peer("room-a").get("frames_sent", 0) > 0)  # the teacher goes to it directly
            assert a.peer("room-main")["via"] == "p2p"

    asyncio.run(main())


def test_an_sfu_invitation_is_validated() -> None:
    offer = RtcMessage("offer", "l1", TS, "zhuandi", sdp="v=0", sfu="http://sfu.school.lan:8088/janus", sfu_room=42)
    assert RtcMessage.from_dict(offer.to_dict()) == offer
    assert offer.to_dict()["sfu_room"] == 42
    plain = RtcMessage("offer", "l1", TS, "zhuandi", sdp="v=0")
    assert "sfu" not in plain.to_dict()
    bad = {
        "file:///etc/passwd": "sfu: got 'file:///etc/passwd', expected Janus's HTTP API",
        "http://user:pw@sfu:8088/janus": "expected Janus's HTTP API",
        "http://sfu:99999/janus": "expected Janus's HTTP API",
    }
    for url, error in bad.items():
        with pytest.raises(PayloadError, match=error):
            RtcMessage.from_dict({**offer.to_dict(), "sfu": url})
    with pytest.raises(PayloadError, match="sfu_room: got 0"):
        RtcMessage.from_dict({**offer.to_dict(), "sfu_room": 0})
    with pytest.raises(PayloadError, match="sfu_room: got 7"):
        RtcMessage.from_dict({**plain.to_dict(), "sfu_room": 7})
    with pytest.raises(PayloadError, match="only an offer names an SFU"):
        RtcMessage("answer", "l1", TS, sdp="v=0", sfu="http://sfu:8088/janus", sfu_room=1)
