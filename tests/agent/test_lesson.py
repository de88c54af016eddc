"""Live lessons between real agents in one process: real Mosquitto, real encoders, real WebRTC on loopback.

Every synthetic picture carries a machine-readable stamp (frame counter, wall clock), so the
receiving side proves what arrived by decoding it, not by trusting counters.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from agent.config.site import SiteConfig, load_config
from agent.lesson.health import RefusalLog
from agent.service import Agent
from central.mosquitto import LocalBroker, free_port
from contract import encode, now_iso
from contract.mqtt import BrokerAddress, make_client
from contract.rtc import RtcMessage
from streaming import stamp

SITE = "lesson-school"


def write_config(tmp: Path, broker: LocalBroker, agent_id: str, *, sources: str, lesson: str) -> Path:
    """A room with simulated devices, synthetic sources and small pictures (640x360 @ 15)."""
    path = tmp / f"{agent_id}.toml"
    path.write_text(
        f"""
agent_id = "{agent_id}"
site = "{SITE}"
room = "教室 {agent_id}"
data_dir = "{tmp / agent_id}"
[broker]
url = "{broker.url}"
[intervals]
telemetry_s = 1
[http]
port = {free_port()}
[[devices]]
id = "panel"
profile = "samsung-mdc"
address = "sim"
[sources]
{sources}
[lesson]
audio = "tone:440"
ice_host_addresses = ["127.0.0.1"]
offer_timeout_s = 4
{lesson}
[lesson.video.camera]
size = "640x360"
fps = 15
bitrate_kbps = 600
[lesson.video.courseware]
size = "640x360"
fps = 5
bitrate_kbps = 400
""",
        encoding="utf-8",
    )
    return path


def main_config(tmp: Path, broker: LocalBroker, agent_id: str = "room-main", trusted: str = "[]") -> SiteConfig:
    """The main classroom: sends teacher and courseware."""
    sources = 'teacher = "synthetic:teacher"\ncourseware = "synthetic:courseware"'
    lesson = f'send = ["teacher", "courseware"]\ntrusted = {trusted}'
    return load_config(write_config(tmp, broker, agent_id, sources=sources, lesson=lesson))


def remote_config(tmp: Path, broker: LocalBroker, agent_id: str, trusted: str = '["room-main"]') -> SiteConfig:
    """A remote classroom: answers with its students camera."""
    lesson = f'answer_with = ["students"]\ntrusted = {trusted}'
    return load_config(write_config(tmp, broker, agent_id, sources='students = "synthetic:students"', lesson=lesson))


@asynccontextmanager
async def running(*configs: SiteConfig) -> AsyncIterator[list[Agent]]:
    """Agents running in this process, connected to the broker."""
    agents = [Agent(c) for c in configs]
    tasks = [asyncio.create_task(a.run(), name=f"agent[{a.config.agent_id}]") for a in agents]
    try:
        async with asyncio.timeout(20):
            for agent in agents:
                await agent.link.wait_connected()
        yield agents
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def until(check: Callable[[], Any], timeout: float = 40.0, every: float = 0.2) -> Any:
    """Poll `check` until it returns something truthy."""
    async with asyncio.timeout(timeout):
        while not (found := check()):
            await asyncio.sleep(every)
    return found


async def call(agent: Agent, name: str, **args: Any) -> Any:
    """Run a command through the agent's table; the result, or AssertionError with the outcome."""
    outcome = await agent.table.execute(name, args, by="test", door="local")
    assert outcome.status == "succeeded", outcome
    return outcome.result


def peer(agent: Agent, name: str) -> dict[str, Any]:
    """One peer's entry in lesson.status ({} while absent)."""
    assert agent.lesson is not None
    return dict(agent.lesson.status().get("peers", {}).get(name, {}))


async def stamps(agent: Agent, picture: str, count: int) -> list[int]:
    """The burned-in counters of `count` successive decoded pictures of `picture` at `agent`."""
    assert agent.lesson is not None
    video = await until(lambda: agent.lesson.pictures().get(picture) if agent.lesson else None)
    seen: list[int] = []
    index = 0
    while len(seen) < count:
        frame = await asyncio.to_thread(video.wait_newer, index, 5.0)
        assert frame is not None and frame.index > index, f"{picture}: no new picture for 5 s"
        index = frame.index
        read = stamp.read(frame.image)
        if read is not None:
            seen.append(read[0])
    return seen


class Events:
    """Every event (alarms, audit) the agents publish, as the centre would see them."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def of(self, agent: Agent) -> list[dict[str, Any]]:
        """The events of one agent, oldest first."""
        return [e for who, e in self.seen if who == agent.config.agent_id]

    def types(self, agent: Agent) -> list[str]:
        """Their types."""
        return [e["type"] for e in self.of(agent)]


@asynccontextmanager
async def listening(broker: LocalBroker) -> AsyncIterator[Events]:
    """Collect every agent's events from the broker."""
    found = Events()
    async with make_client(BrokerAddress.parse(broker.url), f"events-{uuid.uuid4().hex[:6]}") as client:
        await client.subscribe("classroom/v1/+/+/event", qos=1)

        async def pump() -> None:
            async for message in client.messages:
                found.seen.append((str(message.topic).split("/")[3], json.loads(message.payload)))  # type: ignore[arg-type]

        task = asyncio.create_task(pump())
        try:
            yield found
        finally:
            task.cancel()


async def test_zhuandi_both_ways_with_the_burned_in_counters_read_back_in_order(
    tmp_path: Path, broker: LocalBroker
) -> None:
    configs = main_config(tmp_path, broker), remote_config(tmp_path, broker, "room-a")
    async with listening(broker) as seen, running(*configs) as (main, remote):
        started = await call(main, "lesson.start", mode="zhuandi", remotes="room-a")
        assert started["remotes"] == ["room-a"] and started["sources"] == ["teacher", "courseware"]
        await until(lambda: peer(main, "room-a").get("state") == "connected")

        teacher = await stamps(remote, "room-main/teacher", 20)
        students = await stamps(main, "room-a/students", 20)
        for counters in (teacher, students):
            # in order; a picture may repeat (the encoder re-sends the newest one when the source is late)
            assert counters == sorted(counters) and len(set(counters)) >= len(counters) // 2, counters
        assert "room-main/courseware" in remote.lesson.pictures() if remote.lesson else False

        before = peer(remote, "room-main")["frames_received"]
        await until(lambda: peer(remote, "room-main")["frames_received"] > before + 15)
        status = remote.status()["lesson"]
        assert (status["role"], status["main"], status["mode"]) == ("remote", "room-main", "zhuandi")
        assert status["id"] == started["lesson"]
        assert main.status()["lesson"]["peers"]["room-a"]["frames_sent"] > 0
        sending = main.status()["lesson"]["sending"]
        # each video says what it sends now and whether (why) it is degraded on a busy PC
        assert {"degraded", "fps", "size", "reason"} <= set(sending["teacher"]) and "x" in sending["courseware"]["size"]

        stopped = await call(main, "lesson.stop")
        assert stopped["stopped"] is True
        await until(lambda: remote.lesson is not None and not remote.lesson.status()["active"])
        await until(lambda: {"lesson_start", "lesson_stop"} <= set(seen.types(main)))
        await until(lambda: {"lesson_join", "lesson_leave"} <= set(seen.types(remote)))


async def test_an_untrusted_offer_is_rejected_with_the_reason_and_audited(tmp_path: Path, broker: LocalBroker) -> None:
    configs = main_config(tmp_path, broker, "room-stranger"), remote_config(tmp_path, broker, "room-a")
    async with listening(broker) as seen, running(*configs) as (stranger, remote):
        await call(stranger, "lesson.start", mode="dual_teacher", remotes="room-a")
        rejected = await until(lambda: peer(stranger, "room-a").get("state") == "rejected" and peer(stranger, "room-a"))
        assert "does not trust lesson-school/room-stranger" in rejected["reason"]
        assert remote.lesson is not None and remote.lesson.status() == {"active": False}
        assert remote.lesson.pictures() == {}
        audit = await until(lambda: [e for e in seen.of(remote) if e["type"] == "lesson_offer_rejected"])
        assert audit[0]["peer"] == "room-stranger" and "lesson.trusted" in audit[0]["reason"]
        assert audit[0]["count"] == 1
        lost = await until(lambda: [e for e in seen.of(stranger) if e["type"] == "lesson_peer_lost"])
        assert lost[0]["action"] == "raise" and "does not trust" in lost[0]["message"]

        # The stranger keeps re-offering and is refused each time, but audited once (per 10 minutes).
        await until(lambda: peer(stranger, "room-a").get("attempts", 0) >= 4 and peer(stranger, "room-a"))
        await until(lambda: peer(stranger, "room-a").get("state") == "rejected")
        await call(remote, "agent.ping")  # its audit event comes after every refusal's in the outbox
        await until(lambda: "command" in seen.types(remote))
        quiet = remote.lesson.refusals.last["lesson_offer_rejected lesson-school/room-stranger"][1]
        assert quiet >= 3  # the later refusals were counted, not reported
        assert len([e for e in seen.of(remote) if e["type"] == "lesson_offer_rejected"]) == 1


def test_repeated_refusals_are_reported_once_per_period_with_their_count() -> None:
    log = RefusalLog(every_s=600.0)
    assert log.note("room-x", 0.0) == 1  # the first is reported at once
    assert [log.note("room-x", t) for t in (5.0, 10.0, 300.0)] == [0, 0, 0]
    assert log.note("room-y", 301.0) == 1  # another agent is its own story
    assert log.note("room-x", 600.0) == 4  # the next report stands for this one and the three kept quiet
    assert log.note("room-x", 601.0) == 0


async def test_garbage_sdp_is_rejected_and_the_room_still_takes_a_real_lesson(
    tmp_path: Path, broker: LocalBroker
) -> None:
    async with running(main_config(tmp_path, broker), remote_config(tmp_path, broker, "room-a")) as (main, remote):
        address = BrokerAddress.parse(broker.url)
        async with make_client(address, f"test-{uuid.uuid4().hex[:6]}") as client:
            # Posing as the trusted main classroom: the ACL would stop this in production; the
            # test broker lets it through so the remote's own checks are what is tested.
            await client.subscribe(f"classroom/v1/{SITE}/room-a/rtc/room-main", qos=1)
            offer = RtcMessage("offer", "lesson-x", now_iso(), "zhuandi", sdp="hello, I am not SDP", seq=7)
            await client.publish(f"classroom/v1/{SITE}/room-main/rtc/room-a", encode(offer.to_dict()), qos=1)
            await client.publish(f"classroom/v1/{SITE}/room-main/rtc/room-a", b"{not json", qos=1)
            replies = []
            async with asyncio.timeout(20):
                async for message in client.messages:
                    replies.append(json.loads(message.payload))  # type: ignore[arg-type]
                    if len(replies) == 2:
                        break
        by_reason = sorted(r["reason"] for r in replies)
        assert all(r["type"] == "reject" for r in replies)
        assert "bad offer" in by_reason[0] and "not SDP" in by_reason[0] and replies[0]["seq"] in (7, 0)
        assert "malformed signalling: not JSON" in by_reason[1]

        assert remote.lesson is not None and remote.lesson.status() == {"active": False}
        await call(main, "lesson.start", mode="zhuandi", remotes="room-a")
        await stamps(remote, "room-main/teacher", 5)


async def test_a_remote_that_never_answers_times_out_and_the_lesson_goes_on_for_the_others(
    tmp_path: Path, broker: LocalBroker
) -> None:
    async with running(main_config(tmp_path, broker), remote_config(tmp_path, broker, "room-a")) as (main, remote):
        await call(main, "lesson.start", mode="zhuandi", remotes=["room-a", "room-ghost"])
        ghost = await until(lambda: peer(main, "room-ghost").get("attempts", 0) >= 2 and peer(main, "room-ghost"))
        assert ghost["state"] in ("retrying", "offering", "offered", "no_answer")
        await until(lambda: ("lesson_peer_lost", "room-ghost") in main.alarms.open)
        assert "unanswered after 4 s" in main.alarms.open[("lesson_peer_lost", "room-ghost")].message
        assert peer(main, "room-a")["state"] == "connected"
        counters = await stamps(remote, "room-main/teacher", 10)
        assert counters == sorted(counters)
        assert ("lesson_peer_lost", "room-a") not in main.alarms.open


async def test_a_remote_classroom_asks_to_join_and_leaves(tmp_path: Path, broker: LocalBroker) -> None:
    configs = main_config(tmp_path, broker, trusted='["room-a"]'), remote_config(tmp_path, broker, "room-a")
    async with listening(broker) as seen, running(*configs) as (main, remote):
        refused = await remote.table.execute("lesson.join", {"main": "room-main"})
        assert refused.status == "failed" and "room-main is not leading a lesson" in refused.error
        await call(main, "lesson.start", mode="zhuandi", remotes="room-b")  # room-b is not running
        joined = await call(remote, "lesson.join", main="room-main")
        assert joined["main"] == "room-main" and joined["lesson"]
        await until(lambda: peer(main, "room-a").get("state") == "connected")
        await stamps(remote, "room-main/teacher", 3)
        left = await call(remote, "lesson.leave")
        assert left["left"] == "room-main"
        await until(lambda: "room-a" not in main.lesson.status()["peers"] if main.lesson else False)
        await until(lambda: "lesson_leave" in seen.types(main))


async def test_the_agents_local_api_serves_whep_and_the_watch_page(tmp_path: Path, broker: LocalBroker) -> None:
    import aiohttp

    from streaming.ice import IceSettings
    from streaming.rtc import Peer

    async with running(main_config(tmp_path, broker)) as (main,):
        base = f"http://127.0.0.1:{main.config.http_port}"
        viewer = Peer("viewer", IceSettings(host_addresses=("127.0.0.1",)), receive_video=1, receive_audio=1)
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/watch/teacher") as page:
                    assert page.status == 200 and "../whep/" in await page.text()
                headers = {"Content-Type": "application/sdp"}
                async with http.post(f"{base}/whep/board", data="v=0\r\n", headers=headers) as unknown:
                    assert unknown.status == 404 and "board" in await unknown.text()
                offer = await viewer.create_offer()
                async with http.post(f"{base}/whep/teacher", data=offer, headers=headers) as created:
                    assert created.status == 201, await created.text()
                    await viewer.accept_answer(await created.text())
            video = await until(lambda: viewer.incoming.get("teacher"))
            frame = await asyncio.to_thread(video.wait_newer, 0, 20.0)
            assert frame is not None and stamp.read(frame.image) is not None
        finally:
            await viewer.close()
