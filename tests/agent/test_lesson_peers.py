"""Presence over signalling (``lesson.peers``): which classrooms a lesson may link are online, free or busy.

Real agent processes over a real Mosquitto: room-main (trusts room-a, remotes room-a and room-gone),
room-a (trusts room-main), room-gone (configured, never started) and room-x, a stranger that
trusts both but whom neither trusts: its hellos get no answer.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from rooms import Room, lesson_config, running, until

from agent.alarms import Alarms
from agent.commands.table import Failed
from agent.config.lesson import LessonConfig
from agent.lesson.media import LessonMedia
from agent.lesson.service import LessonService
from central.mosquitto import LocalBroker, free_port
from contract.errors import BrokerError
from contract.rtc import RtcMessage

SITE = "lesson-school"

LESSONS = {
    "room-main": ('trusted = ["room-a"]\nremotes = ["room-a", "room-gone"]\nsend = ["teacher"]', "teacher"),
    "room-a": ('trusted = ["room-main"]\nanswer_with = ["students"]', "students"),
    "room-x": ('trusted = ["room-main", "room-a"]\nanswer_with = ["students"]', "students"),
}


def call(room: Room, name: str, **args: Any) -> dict[str, Any]:
    """Run a command through the agent's local API; its result (the test fails on any other outcome)."""
    body = json.dumps({"name": name, "args": args}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{room.port}/api/commands", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        reply = json.loads(response.read())
    assert reply["status"] == "succeeded", (reply, room.tail())
    return dict(reply["result"])


def peers(room: Room) -> dict[str, Any]:
    return dict(call(room, "lesson.peers")["peers"])


@contextmanager
def classrooms(tmp: Path, broker: LocalBroker) -> Iterator[dict[str, Room]]:
    made = {}
    for agent_id, (lesson, source) in LESSONS.items():
        port = free_port()
        config = lesson_config(tmp, broker.url, SITE, agent_id, port, lesson, f'{source} = "synthetic:{source}"')
        made[agent_id] = Room(config, port, tmp / f"{agent_id}.log")
    with running(made.values()):
        yield made


def test_lesson_peers_shows_who_is_online_free_or_busy_and_strangers_learn_nothing(
    tmp_path: Path, broker: LocalBroker
) -> None:
    async def main() -> None:
        with classrooms(tmp_path, broker) as rooms:
            leader, a, stranger = rooms["room-main"], rooms["room-a"], rooms["room-x"]
            for room in rooms.values():
                await until(lambda r=room: r.status()["broker"]["connected"])  # type: ignore[misc]

            seen = await until(lambda: (p := peers(leader))["room-a"]["online"] and p)
            assert set(seen) == {"room-a", "room-gone"}  # trusted + remotes, each once
            assert seen["room-a"] == {
                "online": True, "room": "教室 room-a", "state": "free", "busy": False, "main": "", "mode": "",
            }  # fmt: skip
            assert seen["room-gone"]["online"] is False and seen["room-gone"]["room"] == ""

            # room-main and room-a are up and answering, but not to a stranger: it hears nothing.
            unknown = await asyncio.to_thread(peers, stranger)
            assert unknown["room-main"]["online"] is False and unknown["room-main"]["room"] == ""
            assert unknown["room-a"]["online"] is False
            assert (await asyncio.to_thread(peers, a))["room-main"]["online"] is True

            started = await asyncio.to_thread(call, leader, "lesson.start", mode="zhuandi", remotes=["room-a"])
            assert started["remotes"] == ["room-a"]
            await until(lambda: leader.peer("room-a").get("state") == "connected")
            busy = await until(lambda: (p := peers(leader)["room-a"])["busy"] and p)  # after the cached answer
            assert busy | {"busy": True} == {
                "online": True, "room": "教室 room-a", "state": "remote", "busy": True, "main": "room-main",
                "mode": "zhuandi",
            }  # fmt: skip
            leading = await until(lambda: (p := peers(a)["room-main"])["busy"] and p)
            assert (leading["state"], leading["room"]) == ("leading", "教室 room-main")
            await asyncio.to_thread(call, leader, "lesson.stop")

    asyncio.run(main())


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_presence_builds_no_media_and_a_polling_page_sends_one_hello_per_few_seconds() -> None:
    async def main() -> None:
        built: list[str] = []
        hellos: list[str] = []
        services: dict[str, LessonService] = {}
        clock = Clock()

        def no_media(agent: str) -> LessonMedia:
            built.append(agent)
            raise AssertionError(f"{agent} built its media stack for presence")

        def crossed(me: str) -> Any:
            async def send(to: str, message: RtcMessage) -> None:  # the other service's link, in one process
                hellos.extend([to] if message.type == "hello" else [])
                if to in services:
                    services[to].on_rtc("school", me, message)

            return send

        for me, config in {
            "room-main": LessonConfig(trusted=("room-a",), remotes=("room-a", "room-gone")),
            "room-a": LessonConfig(trusted=("room-main",)),
        }.items():
            service = LessonService(
                config, agent_id=me, site="school", room=f"教室 {me}", media=lambda me=me: no_media(me),  # type: ignore[misc]
                send=crossed(me), alarms=Alarms(lambda event: None),
            )  # fmt: skip
            service.presence.clock = clock
            services[me] = service
        tasks = [asyncio.create_task(s.run()) for s in services.values()]
        try:
            await asyncio.sleep(0)
            first = (await services["room-main"].peers())["peers"]
            assert (first["room-a"]["online"], first["room-a"]["room"]) == (True, "教室 room-a")
            assert first["room-gone"]["online"] is False
            assert sorted(hellos) == ["room-a", "room-gone"]
            clock.now += 2.5  # past the wait, within the cache
            for _ in range(3):  # a page polling: answered from the cache at once, nothing sent
                again = (await services["room-main"].peers())["peers"]
                assert again == first
            assert len(hellos) == 2
            clock.now += 6.0  # past the cache: asked again
            await services["room-main"].peers()
            assert len(hellos) == 4
            assert built == []
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


def test_lesson_peers_fails_saying_why_when_this_room_cannot_reach_the_broker() -> None:
    async def main() -> None:
        async def cut_off(to: str, message: RtcMessage) -> None:
            raise BrokerError(f"cannot send {message.type} to {to}: not connected to mqtt://127.0.0.1:1")

        service = LessonService(
            LessonConfig(trusted=("room-a",)), agent_id="room-main", site="school", room="教室",
            media=lambda: LessonMedia(LessonConfig(), {}, {}), send=cut_off, alarms=Alarms(lambda event: None),
        )  # fmt: skip
        with pytest.raises(Failed, match="cannot ask the other classrooms: cannot send hello to room-a: not connected"):
            await service.peers()  # not "every classroom offline": it is this one that is cut off

    asyncio.run(main())
