"""The bridged school and district brokers of the bridge tests, their registries, the real centre and agent.

Two real Mosquittos on loopback, each started from ``classroom-central broker-config``'s own
``mosquitto.conf`` (plus persistence and a log, as Debian's main config adds): the school broker
(plain MQTT for its rooms, and ``--bridge``) and the district broker (TLS, the bridge's account).
Between them runs the school's "WAN": a TCP relay on loopback the test cuts and restores.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import registry
from pki import make_pki
from registry import broker_config_cli

from agent.config.site import load_config
from agent.service import Agent
from central import broker_config
from central.app import Central
from central.fleetdb import FleetDB
from central.mosquitto import LocalBroker, TlsFiles, free_port
from contract import Topics
from contract.mqtt import BrokerAddress, Client, Message, make_client

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
    return registry.agent_row(site, agent_id, PASSWORDS[agent_id])


def user_row(name: str, role: str) -> str:
    return registry.user_row(name, PASSWORDS[name], role)


def school_registry(folder: Path, district_port: int, ca: Path) -> Path:
    """School A's broker: its two rooms, a room of school B sharing the building's broker, a technician."""
    text = agent_row(SITE, "room-101") + agent_row(SITE, "room-102") + agent_row(OTHER_SITE, "room-201")
    text += user_row("school-tech", "technician")
    return write(folder / "school.toml", text + bridge_row(f"mqtts://127.0.0.1:{district_port}", str(ca)))


def district_registry(folder: Path, collectors: int = 1, more: str = "") -> Path:
    """The district broker: the centre, a technician, a room of school C on it directly, school A's bridge.

    `collectors` > 1 gives the centre's row helper accounts (``central-1`` …); `more` adds rows.
    """
    central = user_row("central", "central") + (f"collectors = {collectors}\n" if collectors > 1 else "")
    text = central + user_row("tech", "technician") + agent_row(FAR_SITE, "room-901") + more
    return write(folder / "district.toml", text + bridge_row())


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    (path.parent / "bridge.secret").write_text(BRIDGE_SECRET + "\n", encoding="utf-8")
    return path


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
    async with bridged_brokers(tmp_path) as net:
        yield net


@contextlib.asynccontextmanager
async def bridged_brokers(folder: Path, collectors: int = 1, more: str = "") -> AsyncIterator[Bridged]:
    """School A's broker bridged to the district's (`collectors`, `more`: as `district_registry` takes them)."""
    pki = make_pki(folder / "pki")
    district_port, school_port = free_port(), free_port()
    wan = Wan(district_port)
    tls = ["--tls-ca", pki.cafile, "--tls-cert", pki.certfile, "--tls-key", pki.keyfile]
    district_conf, school_conf = folder / "district-conf", folder / "school-conf"
    at_district = ["--registry", district_registry(folder / "district-registry", collectors, more)]
    at_district += ["--out", district_conf]
    at_school = ["--registry", school_registry(folder / "school-registry", wan.port, pki.cafile)]
    assert broker_config_cli(*at_district, "--port", district_port, "--bind", "127.0.0.1", *tls) == 0
    at_school += ["--bridge", BRIDGE, "--out", school_conf, "--port", school_port, "--bind", "127.0.0.1"]
    assert broker_config_cli(*at_school) == 0
    conf = broker_config.CONF_FILE
    district = ConfBroker(folder / "district", district_port, district_conf / conf, tls=pki)
    school = ConfBroker(folder / "school", school_port, school_conf / conf)
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
async def running_agent(net: Bridged, folder: Path, more: str = "") -> AsyncIterator[Agent]:
    """The real agent of room-101 on the school broker (panel simulated; `more`: TOML tables added to its config)."""
    config = folder / "room-101.toml"
    config.write_text(
        AGENT_CONFIG.format(
            site=SITE,
            room=ROOM_NAME,
            data=folder / "room-101",
            url=net.school.url,
            password=PASSWORDS["room-101"],
            port=free_port(),
        )
        + more,
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


def panel_power(db: FleetDB) -> str | None:
    """The power of room-101's panel as the fleet store holds it."""
    found = db.agent("room-101")
    panels = [d for d in found["devices"] if d["id"] == "panel"] if found else []
    return panels[0]["state"].get("power") if panels and panels[0]["state"] else None
