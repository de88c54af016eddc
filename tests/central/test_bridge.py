"""Bridged school brokers: a school's Mosquitto carries its rooms to the district's, both run from broker-config.

Two real Mosquittos on loopback, each started from ``classroom-central broker-config``'s own
``mosquitto.conf`` (plus persistence and a log, as Debian's main config adds): the school broker
(plain MQTT for its rooms, and ``--bridge``) and the district broker (TLS, the bridge's account).
Between them runs the school's "WAN": a TCP relay on loopback the test cuts and restores. A real
agent (agent.service.Agent, on a simulated panel) talks to the school broker only; the real centre
(central.app.Central, fleet.db) talks to the district broker only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pki import make_pki

from agent.config.site import load_config
from agent.service import Agent
from central import broker_config
from central.app import Central
from central.mosquitto import LocalBroker, TlsFiles, free_port
from contract import Event, Topics, now_iso
from contract.mqtt import BrokerAddress, Client, Message, MqttError, make_client

SITE, OTHER_SITE, FAR_SITE = "school-a", "school-b", "school-c"
BRIDGE = "bridge-school-a"
BRIDGE_SECRET = "bridge secret: not in any output"
PASSWORDS = {"room-101": "pw-101", "room-102": "pw-102", "room-201": "pw-201", "room-901": "pw-901"}
PASSWORDS |= {"central": "pw-central", "tech": "pw-tech", "school-tech": "pw-school-tech"}
T101, T102 = Topics(SITE, "room-101"), Topics(SITE, "room-102")
T201, T901 = Topics(OTHER_SITE, "room-201"), Topics(FAR_SITE, "room-901")
BRIDGE_STATE = f"$SYS/broker/connection/{BRIDGE}/state"
SENTINEL = b"sentinel"
WAIT_S = 30.0


def bridge_row(district: str = "", cafile: str = "") -> str:
    """The [[bridges]] row: the same in both registries (the school's adds where the district is)."""
    row = f"""
[[bridges]]
name = "{BRIDGE}"
site = "{SITE}"
agents = ["room-101", "room-102"]
password_file = "bridge.secret"
reconnect_s = 1
reconnect_max_s = 2
"""
    return row + (f'district = "{district}"\ncafile = "{cafile}"\n' if district else "")


def agent_row(site: str, agent_id: str) -> str:
    return f'[[agents]]\nsite = "{site}"\nid = "{agent_id}"\npassword = "{PASSWORDS[agent_id]}"\n'


def user_row(name: str, role: str) -> str:
    return f'[[users]]\nname = "{name}"\npassword = "{PASSWORDS[name]}"\nrole = "{role}"\n'


def school_registry(folder: Path, district_port: int, ca: Path) -> Path:
    """School A's broker: its two rooms, a room of school B sharing the building's broker, a technician."""
    text = agent_row(SITE, "room-101") + agent_row(SITE, "room-102") + agent_row(OTHER_SITE, "room-201")
    text += user_row("school-tech", "technician")
    return write(folder / "school.toml", text + bridge_row(f"mqtts://127.0.0.1:{district_port}", str(ca)))


def district_registry(folder: Path) -> Path:
    """The district broker: the centre, a technician, a room of school C on it directly, school A's bridge."""
    text = user_row("central", "central") + user_row("tech", "technician") + agent_row(FAR_SITE, "room-901")
    return write(folder / "district.toml", text + bridge_row())


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    (path.parent / "bridge.secret").write_text(BRIDGE_SECRET + "\n", encoding="utf-8")
    return path


def broker_config_cli(*argv: str | Path) -> int:
    """``classroom-central broker-config ARGV``, as the command line parses and runs it."""
    parser = argparse.ArgumentParser(prog="classroom-central")
    broker_config.add_parser(parser.add_subparsers(dest="command", required=True))
    return broker_config.run(parser.parse_args(["broker-config", *map(str, argv)]))


class ConfBroker(LocalBroker):
    """Mosquitto from broker-config's mosquitto.conf, with what Debian's main config adds: persistence, a log."""

    def __init__(self, folder: Path, port: int, conf: Path, tls: TlsFiles | None = None) -> None:
        super().__init__(folder, port, tls=tls)
        self.conf = conf

    def config(self) -> str:
        run_as = "user root\n" if getattr(os, "geteuid", lambda: -1)() == 0 else ""
        return (
            f"{run_as}log_dest file {self.log_file}\nlog_type error\nlog_type warning\nlog_type notice\n"
            f"persistence true\npersistence_location {self.folder}/\n{self.conf.read_text()}"
        )


class Wan:
    """The school's line to the district: a TCP relay on loopback that the test cuts and restores."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.server: asyncio.Server | None = None
        self.lines: set[asyncio.StreamWriter] = set()
        self.relays: set[asyncio.Task[None]] = set()

    async def restore(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """Refuse new connections and break the open ones (as a lost line does)."""
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in list(self.lines):
            writer.transport.abort()
        await asyncio.gather(*self.relays, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if (task := asyncio.current_task()) is not None:
            self.relays.add(task)
            task.add_done_callback(self.relays.discard)
        try:
            async with asyncio.timeout(5):
                far_reader, far_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except (OSError, TimeoutError):
            writer.transport.abort()
            return
        self.lines |= {writer, far_writer}
        try:
            await asyncio.gather(pump(reader, far_writer), pump(far_reader, writer))
        finally:
            self.lines -= {writer, far_writer}
            for end in (writer, far_writer):
                end.transport.abort()


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()  # one direction ended: the line is gone both ways


@dataclass
class Bridged:
    """The two brokers, the line between them, and the CA of the district's certificate."""

    school: ConfBroker
    district: ConfBroker
    wan: Wan
    pki: TlsFiles


@pytest.fixture
async def bridged(tmp_path: Path) -> AsyncIterator[Bridged]:
    pki = make_pki(tmp_path / "pki")
    district_port, school_port = free_port(), free_port()
    wan = Wan(district_port)
    tls = ["--tls-ca", pki.cafile, "--tls-cert", pki.certfile, "--tls-key", pki.keyfile]
    district_conf, school_conf = tmp_path / "district-conf", tmp_path / "school-conf"
    at_district = ["--registry", district_registry(tmp_path / "district-registry"), "--out", district_conf]
    at_school = ["--registry", school_registry(tmp_path / "school-registry", wan.port, pki.cafile)]
    assert broker_config_cli(*at_district, "--port", district_port, "--bind", "127.0.0.1", *tls) == 0
    at_school += ["--bridge", BRIDGE, "--out", school_conf, "--port", school_port, "--bind", "127.0.0.1"]
    assert broker_config_cli(*at_school) == 0
    conf = broker_config.CONF_FILE
    district = ConfBroker(tmp_path / "district", district_port, district_conf / conf, tls=pki)
    school = ConfBroker(tmp_path / "school", school_port, school_conf / conf)
    await wan.restore()
    district.start()
    try:
        school.start()
        try:
            yield Bridged(school, district, wan, pki)
        finally:
            school.stop()
    finally:
        district.stop()
        await wan.cut()


def account(broker: LocalBroker, name: str, ca: Path | None = None, password: str = "") -> BrokerAddress:
    ca_file = str(ca) if ca else ""
    return BrokerAddress.parse(broker.url, username=name, password=password or PASSWORDS[name], ca_file=ca_file)


def connect(address: BrokerAddress) -> Client:
    return make_client(address, f"test-{address.username}")


async def until(check: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    try:
        async with asyncio.timeout(timeout):
            while not (found := check()):
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"still waiting for {what} after {timeout} s") from None
    return found


async def receive_until(client: Client, topic: str, payload: bytes = SENTINEL) -> list[Message]:
    """Every message up to and including `payload` on `topic`."""
    got: list[Message] = []
    async with asyncio.timeout(WAIT_S):
        async for message in client.messages:
            got.append(message)
            if message.topic.value == topic and message.payload == payload:
                return got
    raise AssertionError("the message iterator ended before the sentinel")


def topics_of(messages: list[Message]) -> list[str]:
    return [m.topic.value for m in messages]


@contextlib.asynccontextmanager
async def running_centre(net: Bridged, db_path: Path) -> AsyncIterator[Central]:
    """The real centre on the district broker, with its own persistent session."""
    central = Central(account(net.district, "central", net.pki.cafile), db_path, silence_check_s=3600)
    task = asyncio.create_task(central.run(), name="central[test].run")
    try:
        async with asyncio.timeout(WAIT_S):
            await central.collector.connected.wait()
        yield central
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        central.close()


ROOM_NAME = "初二(1)班 录播教室"
AGENT_CONFIG = """
agent_id = "room-101"
site = "{site}"
room = "{room}"
data_dir = "{data}"
[broker]
url = "{url}"
username = "room-101"
password = "{password}"
[intervals]
telemetry_s = 1
[http]
port = {port}
[[devices]]
id = "panel"
profile = "samsung-mdc"
address = "sim"
"""


@contextlib.asynccontextmanager
async def running_agent(net: Bridged, folder: Path) -> AsyncIterator[Agent]:
    """The real agent of room-101 on the school broker (its panel simulated)."""
    config = folder / "room-101.toml"
    config.write_text(
        AGENT_CONFIG.format(
            site=SITE,
            room=ROOM_NAME,
            data=folder / "room-101",
            url=net.school.url,
            password=PASSWORDS["room-101"],
            port=free_port(),
        ),
        encoding="utf-8",
    )
    agent = Agent(load_config(config))
    task = asyncio.create_task(agent.run(), name="agent[room-101].run")
    try:
        async with asyncio.timeout(WAIT_S):
            await agent.link.wait_connected()
        yield agent
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def panel_power(central: Central) -> str | None:
    found = central.db.agent("room-101")
    panels = [d for d in found["devices"] if d["id"] == "panel"] if found else []
    return panels[0]["state"].get("power") if panels and panels[0]["state"] else None


async def test_a_room_behind_its_school_broker_is_seen_commanded_and_audited_by_the_district(
    bridged: Bridged, tmp_path: Path
) -> None:
    async with running_centre(bridged, tmp_path / "fleet.db") as central, running_agent(bridged, tmp_path) as room:
        # status, info, the panel's state and telemetry crossed the bridge into fleet.db
        seen = await until(
            lambda: (a := central.db.agent("room-101")) and a["state"] == "online" and a["room"] == ROOM_NAME and a,
            "room-101 online with its info",
        )
        assert (seen["site"], seen["session"]) == (SITE, room.link.session)
        assert await until(lambda: panel_power(central), "the panel's state") == "on"
        await until(lambda: central.db.telemetry_history("room-101"), "telemetry")

        # a technician's command goes down the bridge, its reply comes back up, and both are audited
        reply = await central.sender.send("room-101", "panel.power", {"device": "panel", "on": False}, "tech-li")
        assert reply["status"] == "succeeded", reply
        audit = await until(
            lambda: (c := central.db.command(reply["id"])) and c["status"] == "succeeded" and c, "the audit row"
        )
        assert (audit["agent_id"], audit["name"], audit["by"]) == ("room-101", "panel.power", "tech-li")
        await until(lambda: panel_power(central) == "off", "the panel's new state")


def fleet_events(db_path: Path) -> dict[str, int]:
    """How many rows fleet.db holds of each test event (by its text)."""
    with contextlib.closing(sqlite3.connect(db_path, timeout=10)) as db:
        rows = db.execute("SELECT message, count(*) FROM events WHERE type = 'bridge.test' GROUP BY message")
        return dict(rows.fetchall())


def send_events(room: Agent, numbers: range) -> None:
    for i in numbers:
        room.link.send_event(Event("bridge.test", "info", "log", now_iso(), message=f"event {i:04d}"))


async def delivered_to_school(room: Agent, what: str) -> None:
    """The agent's outbox is empty: the school broker acknowledged every event."""
    await until(lambda: not room.store.outbox_peek(1), what)


def events_among(counts: dict[str, int], numbers: range) -> list[str]:
    return sorted(set(counts) & {f"event {i:04d}" for i in numbers})


async def test_the_bridge_dropping_and_returning_loses_no_event(bridged: Bridged, tmp_path: Path) -> None:
    db_path = tmp_path / "fleet.db"
    async with running_centre(bridged, db_path) as central, running_agent(bridged, tmp_path) as room:
        await until(lambda: (a := central.db.agent("room-101")) and a["state"] == "online", "room-101 online")
        send_events(room, range(0, 100))

        # The school's line to the district breaks: the school broker takes every event meanwhile,
        # and the district broker keeps a technician's command for the bridge's session.
        await bridged.wan.cut()
        send_events(room, range(100, 200))
        ping = asyncio.create_task(central.sender.send("room-101", "agent.ping", {}, "tech-li", timeout=WAIT_S))
        await delivered_to_school(room, "events 100-199 at the school broker")
        assert events_among(fleet_events(db_path), range(100, 200)) == []  # none could cross
        assert not ping.done()
        await bridged.wan.restore()
        assert (await ping)["status"] == "succeeded"

        # The district broker goes down; while it is down, the school broker restarts (cleanly) too.
        await asyncio.to_thread(bridged.district.stop)
        send_events(room, range(200, 300))
        await delivered_to_school(room, "events 200-299 at the school broker")
        await asyncio.to_thread(bridged.school.stop)
        send_events(room, range(300, 350))  # kept in the agent's outbox meanwhile
        await asyncio.to_thread(bridged.school.start)
        await delivered_to_school(room, "events 300-349 at the restarted school broker")
        assert events_among(fleet_events(db_path), range(200, 350)) == []
        await asyncio.to_thread(bridged.district.start)
        send_events(room, range(350, 400))

        expected = {f"event {i:04d}": 1 for i in range(400)}
        with contextlib.suppress(AssertionError):
            await until(lambda: len(fleet_events(db_path)) >= len(expected), "all 400 events in fleet.db", 90)
        counts = fleet_events(db_path)
        assert sorted(set(expected) - set(counts)) == [], "lost"
        assert counts == expected  # each exactly once
        # The retained truth crossed too: the room's newest session (it reconnected to the restarted school broker).
        await until(
            lambda: (a := central.db.agent("room-101")) and (a["state"], a["session"]) == ("online", room.link.session),
            "room-101's newest session online at the district",
        )
        assert room.link.connects == 2  # the school broker's one restart; the district's outages never reached it


async def test_a_crash_of_the_school_broker_loses_nothing_it_had_saved(bridged: Bridged, tmp_path: Path) -> None:
    """kill -9 (a power cut) of the school broker while the district is unreachable, after its autosave."""
    db_path = tmp_path / "fleet.db"
    async with running_centre(bridged, db_path) as central, running_agent(bridged, tmp_path) as room:
        await until(lambda: (a := central.db.agent("room-101")) and a["state"] == "online", "room-101 online")
        await asyncio.to_thread(bridged.district.stop)
        send_events(room, range(200))
        await delivered_to_school(room, "200 events at the school broker")
        accepted, saved = time.time(), bridged.school.folder / "mosquitto.db"
        # broker-config's autosave_interval: the queue reaches the disk within seconds, not at a clean stop only
        await until(lambda: saved.exists() and saved.stat().st_mtime > accepted, "the school broker's autosave")
        await asyncio.to_thread(bridged.school.kill)
        await asyncio.to_thread(bridged.school.start)
        await asyncio.to_thread(bridged.district.start)
        with contextlib.suppress(AssertionError):
            await until(lambda: len(fleet_events(db_path)) >= 200, "200 events in fleet.db", 90)
        assert fleet_events(db_path) == {f"event {i:04d}": 1 for i in range(200)}


async def test_only_the_sites_rooms_cross_and_signalling_reaches_across_schools(bridged: Bridged) -> None:
    school, district, ca = bridged.school, bridged.district, bridged.pki.cafile
    async with (
        connect(account(district, "tech", ca)) as district_tech,
        connect(account(school, "school-tech")) as school_tech,
        connect(account(district, "central", ca)) as centre,
        connect(account(district, "room-901", ca)) as far_room,
        connect(account(school, "room-101")) as room_101,
        connect(account(school, "room-102")) as room_102,
        connect(account(school, "room-201")) as room_201,
    ):
        await district_tech.subscribe("classroom/v1/#", qos=1)
        await district_tech.subscribe("$SYS/broker/connection/+/state", qos=1)
        await room_102.subscribe(T102.rtc_inbox, qos=1)
        await far_room.subscribe(T901.rtc_inbox, qos=1)
        await room_101.subscribe(T101.rtc_inbox, qos=1)

        # Up: school B's room shares school A's broker, but only school A's rooms reach the district.
        await room_201.publish(T201.status, b"{}", qos=1, retain=True)
        await room_201.publish(T201.event, b"{}", qos=1)
        await room_101.publish(T101.rtc("room-102"), b"offer", qos=1)  # within the school: delivered once
        await room_101.publish(T101.rtc("room-901"), b"offer", qos=1)  # to school C, through the district
        await room_101.publish(T101.event, SENTINEL, qos=1)
        up = await receive_until(district_tech, T101.event)
        assert topics_of(up) == [BRIDGE_STATE, T101.rtc("room-102"), T101.rtc("room-901"), T101.event]
        assert up[0].payload == b"1" and up[0].retain  # the bridge's own state, for technicians
        assert [m.payload for m in await receive_until(far_room, T101.rtc("room-901"), b"offer")] == [b"offer"]

        # Down: commands of the site's rooms and signalling addressed to them, nothing else.
        await school_tech.subscribe(T101.cmd().replace("room-101", "+"), qos=1)
        await school_tech.subscribe("classroom/v1/+/+/rtc/#", qos=1)
        await centre.publish(T201.cmd("agent.ping"), b"{}", qos=1)
        await far_room.publish(T901.rtc("room-777"), b"offer", qos=1)  # a room behind no bridge of school A
        await far_room.publish(T901.rtc("room-101"), b"answer", qos=1)
        await centre.publish(T101.cmd("agent.ping"), SENTINEL, qos=1)
        from_district = await receive_until(school_tech, T101.cmd("agent.ping"))
        assert topics_of(from_district) == [T901.rtc("room-101"), T101.cmd("agent.ping")]
        assert [m.payload for m in await receive_until(room_101, T901.rtc("room-101"), b"answer")] == [b"answer"]

        # No loop: room-102 got room-101's offer once, though the bridge also carries rtc/room-102 down.
        await room_101.publish(T101.rtc("room-102"), SENTINEL, qos=1)
        assert [m.payload for m in await receive_until(room_102, T101.rtc("room-102"))] == [b"offer", SENTINEL]


@pytest.fixture
def district_only(tmp_path: Path) -> Iterator[LocalBroker]:
    """The district broker alone, from broker-config's output (nothing bridged to it right now)."""
    pki, port = make_pki(tmp_path / "pki"), free_port()
    registry = district_registry(tmp_path / "registry")
    tls = ["--tls-ca", pki.cafile, "--tls-cert", pki.certfile, "--tls-key", pki.keyfile]
    assert broker_config_cli("--registry", registry, "--out", tmp_path / "conf", "--port", port, *tls) == 0
    with ConfBroker(tmp_path / "broker", port, tmp_path / "conf" / broker_config.CONF_FILE, tls=pki) as running:
        yield running


async def test_the_bridge_account_writes_and_reads_only_its_rooms(district_only: LocalBroker, tmp_path: Path) -> None:
    ca = tmp_path / "pki" / "ca.crt"
    bridge = account(district_only, BRIDGE, ca, password=BRIDGE_SECRET)
    allowed = [T101.status, T102.event, T101.rtc("room-901"), BRIDGE_STATE]
    denied = [
        T201.status,  # another site
        Topics(SITE, "room-103").status,  # its own site, but a room not behind it
        T101.cmd("panel.power"),  # commands come from the centre only
        "classroom/v1/_central/status",
        "$SYS/broker/connection/bridge-school-c/state",  # another bridge's state
        T901.rtc("room-101"),  # another school's room
    ]
    async with (
        connect(account(district_only, "tech", ca)) as tech,
        connect(account(district_only, "central", ca)) as centre,
        connect(bridge) as school,
    ):
        await tech.subscribe("classroom/v1/#", qos=1)
        await tech.subscribe("$SYS/broker/connection/+/state", qos=1)
        await school.subscribe("#", qos=1)
        for topic in denied + allowed:
            await school.publish(topic, b"1", qos=1)
        await school.publish(T102.reply, SENTINEL, qos=1)
        assert topics_of(await receive_until(tech, T102.reply)) == [*allowed, T102.reply]

        await centre.publish(T201.cmd("agent.ping"), b"{}", qos=1)
        await centre.publish(Topics(SITE, "room-103").cmd("agent.ping"), b"{}", qos=1)
        await centre.publish(T102.cmd("agent.ping"), SENTINEL, qos=1)
        assert topics_of(await receive_until(school, T102.cmd("agent.ping"))) == [T102.cmd("agent.ping")]

    with pytest.raises(MqttError, match="(?i)authori"):
        async with connect(account(district_only, BRIDGE, ca, password="guess")):
            pass
