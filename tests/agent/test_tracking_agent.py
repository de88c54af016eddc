"""Auto-tracking in a running agent: a simulated camera follows the rendered teacher, and people stay in charge.

The agent runs whole (real Mosquitto, its local API, its device service on a simulated camera
over TCP loopback); the teacher camera's picture is a virtual PTZ camera over the podium scene,
so the commands tracking sends through the camera's device service change what it analyses.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from agent.config.site import parse_config
from agent.service import Agent
from central.mosquitto import LocalBroker
from contract.mqtt import BrokerAddress, make_client
from streaming.tracking.geometry import Box
from streaming.tracking.scenes import COLUMNS, ROWS, StudentsScene

WAIT_S = 60.0  # the podium scene is a minute long: everything it shows happens within one loop of it


def config(tmp: Path, broker: LocalBroker, **tracking: Any) -> dict[str, Any]:
    return {
        "agent_id": "room-3",
        "site": "s",
        "room": "3",
        "data_dir": str(tmp / "var"),
        "broker": {"url": broker.url},
        "http": {"port": 0},
        "intervals": {"telemetry_s": 1},
        "devices": [{"id": "camera", "profile": "sony-visca", "address": "sim", "poll_s": 1}],
        "sources": {"teacher": "ptz:camera?scene=podium"},
        "tracking": [
            {
                "camera": "camera",
                "role": "teacher",
                "source": "teacher",
                "home_preset": 1,
                "settle_s": 0.5,
                "zones": {"podium": [0.0, 0.2, 0.85, 1.0], "blackboard": [0.15, 0.2, 0.65, 1.0]},
                **tracking,
            }
        ],
    }


@asynccontextmanager
async def running(data: dict[str, Any]) -> AsyncIterator[Agent]:
    agent = Agent(parse_config(data))
    task = asyncio.create_task(agent.run(), name="agent")
    try:
        async with asyncio.timeout(15):
            await agent.link.wait_connected()
        yield agent
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until(check: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    async with asyncio.timeout(timeout):
        while not (found := check()):
            await asyncio.sleep(0.1)
        return found


async def telemetry(broker: LocalBroker) -> dict[str, Any]:
    """The next telemetry message the agent publishes."""
    client = make_client(BrokerAddress.parse(broker.url), f"test-{uuid.uuid4().hex[:8]}")
    async with client, asyncio.timeout(30):
        await client.subscribe("classroom/v1/s/room-3/telemetry", qos=1)
        async for message in client.messages:
            found: dict[str, Any] = json.loads(bytes(message.payload))  # type: ignore[arg-type]
            return found
    raise AssertionError("no telemetry")


async def everyone_seated(scene: StudentsScene, for_s: float = 5.0) -> None:
    """Wait for a moment of the scene when nobody stands, nor will for `for_s` (the agent starting up).

    Virtual cameras show a scene at the monotonic clock modulo its length, so an agent can start
    at any moment of it.  Its standing watch takes its first picture as the background: a student
    standing in it would leave a standing figure in the background (a phantom for the minutes it
    takes to fade), and this test is about a student standing up after the watch has seen the room.
    """
    seats = [(r, c) for r in range(ROWS) for c in range(COLUMNS)]

    def seated(t: float) -> bool:
        return all(scene.rise(s, t % scene.duration) == 0.0 for s in seats)

    while not all(seated(time.monotonic() + k * 0.25) for k in range(int(for_s * 4) + 1)):
        await asyncio.sleep(0.25)


def corners(box: Box) -> list[float]:
    return [box.x, box.y, box.right, box.bottom]


def tracking(agent: Agent) -> dict[str, Any]:
    status: dict[str, Any] = agent.status()["tracking"][0]
    return status


def position(agent: Agent) -> tuple[float, float, float]:
    sim = agent.devices["camera"].simulator
    assert sim is not None
    return sim.position()


async def test_the_simulated_camera_turns_to_follow_the_walking_teacher_and_telemetry_says_so(
    tmp_path: Path, broker: LocalBroker
) -> None:
    async with running(config(tmp_path, broker)) as agent:
        home = position(agent)
        await until(lambda: tracking(agent)["state"] == "following")
        await until(lambda: abs(position(agent)[0] - home[0]) > 50)  # it turned, through its own protocol
        status = tracking(agent)
        assert status["enabled"] and status["role"] == "teacher" and status["errors"] == 0
        assert status["box"] is not None and status["commands_per_min"] > 0
        sent = await telemetry(broker)  # what the centre is told
        assert sent["tracking"][0]["camera"] == "camera" and sent["tracking"][0]["enabled"] is True


async def test_switching_tracking_off_stops_the_camera_where_it_is_and_on_sends_it_home(
    tmp_path: Path, broker: LocalBroker
) -> None:
    async with running(config(tmp_path, broker)) as agent:
        await until(lambda: abs(position(agent)[0]) > 50)
        off = await agent.table.execute("tracking.disable", {"camera": "camera"}, by="teacher", door="page")
        assert off.status == "succeeded" and off.result["state"] == "off"
        stopped = position(agent)
        await asyncio.sleep(1.5)
        assert position(agent) == stopped  # nothing moves it any more
        on = await agent.table.execute("tracking.enable", {"camera": "camera"}, by="teacher", door="page")
        assert on.status == "succeeded"
        await until(lambda: abs(position(agent)[0]) < 1 and position(agent)[2] == 0)  # the home preset
        unknown = await agent.table.execute("tracking.enable", {"camera": "nope"})
        assert unknown.status == "rejected" and "camera" in unknown.error


async def test_a_person_driving_the_camera_pauses_tracking_for_a_while(tmp_path: Path, broker: LocalBroker) -> None:
    async with running(config(tmp_path, broker, manual_pause_s=120)) as agent:
        await until(lambda: tracking(agent)["state"] == "following")
        moved = await agent.table.execute(
            "camera.move", {"device": "camera", "direction": "up", "speed": 2}, by="teacher", door="page"
        )
        assert moved.status == "succeeded"
        await agent.table.execute("camera.stop", {"device": "camera"}, by="teacher", door="page")
        assert tracking(agent)["state"] == "paused" and tracking(agent)["paused_s"] > 100
        left = position(agent)
        await asyncio.sleep(2.0)
        assert position(agent) == left  # tracking keeps its hands off while paused


async def test_a_student_standing_up_brings_the_student_camera_to_their_seats_and_cues_the_director(
    tmp_path: Path, broker: LocalBroker
) -> None:
    scene = StudentsScene()
    seats = [(r, c) for r in range(ROWS) for c in range(COLUMNS)]
    data = {
        "agent_id": "room-3",
        "site": "s",
        "room": "3",
        "data_dir": str(tmp_path / "var"),
        "broker": {"url": broker.url},
        "http": {"port": 0},
        "devices": [{"id": "student_cam", "profile": "sony-visca", "address": "sim"}],
        "sources": {"panorama": "scene:students", "closeup": "ptz:student_cam?scene=students"},
        "recording": {"layout": "directed", "sources": ["panorama", "closeup"], "size": "320x180"},
        "director": {
            "hold_s": 1,
            "rules": [{"when": "student standing", "show": "closeup"}, {"when": "always", "show": "panorama"}],
        },
        "tracking": [
            {
                "camera": "student_cam",
                "role": "students",
                "source": "panorama",
                "home_preset": 3,
                "return_after_s": 2,
                "seats": [{"box": corners(scene.standing_box(s)), "preset": 10 + i} for i, s in enumerate(seats)],
            }
        ],
    }
    await everyone_seated(scene)
    async with running(data) as agent:
        director = agent.recording.director
        assert director is not None
        sim = agent.devices["student_cam"].simulator
        assert sim is not None
        home = sim.state.presets[3]
        # Two loops of the scene at most: a student stands up three times in each.
        status = await until(lambda: director.cues.get("student standing") == 1.0 and tracking(agent), 2 * WAIT_S)
        assert status["state"] == "standing" and status["cue"] is True
        aimed = sim.state.presets[10 + status["seats"]]
        assert sim.position() == aimed  # the camera frames that seat group
        assert director.wanted({"panorama": 0.0, "closeup": 0.0}) == "closeup"
        await until(lambda: director.cues.get("student standing") == 0.0)
        await until(lambda: sim.position() == home)  # sat down: back to the panorama's preset
