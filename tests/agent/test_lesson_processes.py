"""Three agents as real processes: a remote classroom killed with -9 rejoins by itself, the other never stops."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rooms import Room, cli, lesson_config, running, until

from central.mosquitto import LocalBroker, free_port
from contract.mqtt import BrokerAddress, make_client
from streaming import stamp

SITE = "lesson-school"


@contextmanager
def rooms(tmp: Path, broker: LocalBroker) -> Iterator[tuple[Room, Room, Room]]:
    """room-main (teacher, courseware) leading room-a and room-b (students each)."""
    made = []
    for agent_id in ("room-main", "room-a", "room-b"):
        port = free_port()
        if agent_id == "room-main":
            sources = 'teacher = "synthetic:teacher"\ncourseware = "synthetic:courseware"'
            lesson = 'send = ["teacher", "courseware"]'
        else:
            sources, lesson = 'students = "synthetic:students"', 'answer_with = ["students"]\ntrusted = ["room-main"]'
        config = lesson_config(tmp, broker.url, SITE, agent_id, port, lesson, sources)
        made.append(Room(config, port, tmp / f"{agent_id}.log"))
    with running(made):
        yield made[0], made[1], made[2]


def teacher_stamp(room: Room) -> int | None:
    """The frame counter burned into the newest teacher picture this remote classroom received."""
    png = np.frombuffer(room.get("/api/lesson/pictures/room-main/teacher.png"), np.uint8)
    read = stamp.read(cv2.imdecode(png, cv2.IMREAD_COLOR))
    return None if read is None else read[0]


def test_a_killed_remote_classroom_rejoins_and_the_other_never_stops(tmp_path: Path, broker: LocalBroker) -> None:
    async def main() -> None:
        with rooms(tmp_path, broker) as (leader, a, b):
            for room in (leader, a, b):
                await until(lambda r=room: r.status()["broker"]["connected"])  # type: ignore[misc]
            started = cli(leader, "lesson.start", "mode=zhuandi", "remotes=room-a,room-b")
            assert started["status"] == "succeeded", (started, leader.tail())
            assert started["result"]["remotes"] == ["room-a", "room-b"]
            for name in ("room-a", "room-b"):
                await until(lambda n=name: leader.peer(n).get("state") == "connected")  # type: ignore[misc]
            first = await until(lambda: teacher_stamp(a))

            received: list[int | None] = []  # the counter burned into room-b's newest teacher picture

            async def watch_b() -> None:
                while True:
                    received.append(await asyncio.to_thread(teacher_stamp, b))
                    await asyncio.sleep(1.0)

            watcher = asyncio.create_task(watch_b())
            try:
                a.kill()
                lost = await until(lambda: [x for x in leader.status()["alarms"] if x["type"] == "lesson_peer_lost"])
                assert lost[0]["device"] == "room-a", lost
                a.start()
                back = await until(lambda: leader.peer("room-a").get("state") == "connected" and leader.peer("room-a"))
                assert back["attempts"] >= 2
                assert (await until(lambda: teacher_stamp(a) is not None and teacher_stamp(a))) > 0
                await until(lambda: a.peer("room-main").get("frames_received", 0) > 30)
                await until(lambda: not [x for x in leader.status()["alarms"] if x["type"] == "lesson_peer_lost"])
            finally:
                watcher.cancel()
            assert first is not None
            counters = [c for c in received if c is not None]
            assert len(counters) == len(received) >= 3, received  # every sample showed a stamped picture
            assert all(x < y for x, y in zip(counters, counters[1:], strict=False)), received  # and it kept moving
            assert leader.peer("room-b")["attempts"] == 1  # room-b's session was never rebuilt
            assert a.lesson()["role"] == "remote" and a.lesson()["main"] == "room-main"

            stopped = cli(leader, "lesson.stop")
            assert stopped["status"] == "succeeded", stopped
            await until(lambda: not b.lesson()["active"] and not a.lesson()["active"])

    asyncio.run(main())


def test_a_main_classroom_stopped_with_sigterm_says_bye_and_the_remote_leaves_at_once(
    tmp_path: Path, broker: LocalBroker
) -> None:
    async def main() -> None:
        rooms_made = []
        for agent_id, sources, lesson in (
            ("room-main", 'teacher = "synthetic:teacher"', 'send = ["teacher"]'),
            ("room-a", 'students = "synthetic:students"', 'answer_with = ["students"]\ntrusted = ["room-main"]'),
        ):
            port = free_port()
            config = lesson_config(tmp_path, broker.url, SITE, agent_id, port, lesson, sources)
            rooms_made.append(Room(config, port, tmp_path / f"{agent_id}.log"))
        leader, a = rooms_made
        events: list[dict[str, Any]] = []
        async with make_client(BrokerAddress.parse(broker.url), f"events-{uuid.uuid4().hex[:6]}") as client:
            await client.subscribe(f"classroom/v1/{SITE}/room-a/event", qos=1)

            async def pump() -> None:
                async for message in client.messages:
                    events.append(json.loads(message.payload))  # type: ignore[arg-type]

            listener = asyncio.create_task(pump())
            try:
                for room in rooms_made:
                    room.start()
                for room in rooms_made:
                    await until(lambda r=room: r.status()["broker"]["connected"])  # type: ignore[misc]
                started = cli(leader, "lesson.start", "mode=zhuandi", "remotes=room-a")
                assert started["status"] == "succeeded", (started, leader.tail())
                await until(lambda: a.peer("room-main").get("state") == "connected")
                assert leader.proc is not None
                leader.proc.send_signal(signal.SIGTERM)
                assert await asyncio.to_thread(leader.proc.wait, 30) == 0, leader.tail()
                await until(lambda: not a.lesson()["active"])
                left = await until(lambda: [e for e in events if e["type"] == "lesson_leave"])
                # The bye arrived: not the remote giving up on a leader that went silent.
                assert "room-main ended the lesson" in left[0]["message"], (left, leader.tail())
            finally:
                listener.cancel()
                for room in rooms_made:
                    room.stop()

    asyncio.run(main())
