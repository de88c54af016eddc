"""Two agents as real processes: the timetable starts a live lesson by itself and the remote classroom answers.

The remote classroom's ``[lesson] trusted`` is empty: it answers the main only because its own
timetable names that agent as the ``main`` of the lesson on now.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rooms import Room, cli, running, until

from central.mosquitto import LocalBroker, free_port

SITE = "timetable-school"


def lesson_now() -> tuple[int, str, str]:
    """A weekday and a start and end (Beijing time) around now that do not cross midnight."""
    beijing = datetime.now(UTC) + timedelta(hours=8)
    start, end = beijing - timedelta(minutes=2), beijing + timedelta(minutes=40)
    if start.date() != end.date():
        start, end = beijing.replace(hour=0, minute=0), beijing.replace(hour=23, minute=59)
    return beijing.isoweekday(), f"{start:%H:%M}", f"{end:%H:%M}"


def write_config(
    tmp: Path, broker: LocalBroker, agent_id: str, port: int, sources: str, lesson: str, after: str
) -> Path:
    """One room: synthetic sources, 320x180 pictures, ICE on loopback; `lesson` in [lesson], `after` at the end."""
    path = tmp / f"{agent_id}.toml"
    path.write_text(
        f"""
agent_id = "{agent_id}"
site = "{SITE}"
room = "教室 {agent_id}"
data_dir = "{tmp / agent_id}"
[broker]
url = "{broker.url}"
[http]
port = {port}
[sources]
{sources}
[lesson]
audio = "none"
ice_host_addresses = ["127.0.0.1"]
offer_timeout_s = 5
{lesson}
[lesson.video.camera]
size = "320x180"
fps = 10
bitrate_kbps = 300
{after}
""",
        encoding="utf-8",
    )
    return path


@contextmanager
def two_rooms(tmp: Path, broker: LocalBroker) -> Iterator[tuple[Room, Room]]:
    """room-main leads 英语 to room-a now by its timetable; room-a's timetable names room-main as main."""
    day, start, end = lesson_now()
    lesson = f'day = {day}\nstart = "{start}"\nend = "{end}"\nname = "英语"'
    main_timetable = f"""[timetable]
timezone = "+08:00"
[[timetable.lessons]]
{lesson}
live = "zhuandi"
remotes = ["room-a"]
"""
    remote_timetable = f"""[timetable]
timezone = "+08:00"
[[timetable.lessons]]
{lesson}
main = "room-main"
"""
    rooms = []
    for agent_id, sources, in_lesson, timetable in (
        ("room-main", 'teacher = "synthetic:teacher"', 'send = ["teacher"]', main_timetable),
        ("room-a", 'students = "synthetic:students"', 'answer_with = ["students"]\ntrusted = []', remote_timetable),
    ):
        port = free_port()
        config = write_config(tmp, broker, agent_id, port, sources, in_lesson, timetable)
        rooms.append(Room(config, port, tmp / f"{agent_id}.log"))
    with running(rooms):
        yield rooms[0], rooms[1]


def test_the_timetable_starts_a_live_lesson_and_ends_it_when_the_lesson_leaves_the_timetable(
    tmp_path: Path, broker: LocalBroker
) -> None:
    async def main() -> None:
        with two_rooms(tmp_path, broker) as (leader, remote):
            # Nobody calls lesson.start: the main's scheduler does, and room-a answers by its timetable.
            try:
                await until(lambda: remote.lesson().get("main") == "room-main", timeout=90)
                peer = await until(
                    lambda: (
                        leader.lesson().get("peers", {}).get("room-a", {}).get("state") == "connected"
                        and leader.lesson()
                    )
                )
            except TimeoutError:
                raise AssertionError(f"{leader.tail()}\n---\n{remote.tail()}") from None
            assert peer["mode"] == "zhuandi" and peer["role"] == "main"
            frames = await until(lambda: remote.lesson()["peers"]["room-main"].get("frames_received", 0) > 10)
            assert frames

            # The centre takes the lesson off the timetable: the scheduler stops the lesson it started.
            emptied = cli(leader, "schedule.set", 'timetable={"timezone": "+08:00", "lessons": []}', "by=centre")
            assert emptied["status"] == "succeeded", emptied
            await until(lambda: not leader.lesson()["active"] and not remote.lesson()["active"])

    asyncio.run(main())
