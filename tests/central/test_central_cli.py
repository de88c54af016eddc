"""The ``classroom-central`` console script, run as a technician would, against a running centre."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fleet_stores import fleet_at

from central.fleetdb import FleetDB
from central.mosquitto import LocalBroker
from central.store import Location
from contract import CENTRAL_STATUS, DeviceInfo, DeviceState, Event, Info, Status, Topics, encode, now_iso
from contract.mqtt import BrokerAddress, Client, make_client

_SCRIPT = Path(sys.executable).with_name("classroom-central")
CENTRAL = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "central.cli"]
SITE = "school-9"
LIMIT = 20.0


@dataclass
class Done:
    code: int
    out: str
    err: str


async def cli(*args: str) -> Done:
    proc = await asyncio.create_subprocess_exec(
        *CENTRAL, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(LIMIT):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return Done(proc.returncode, out.decode(), err.decode())


async def until(check: Callable[[], Any], what: str) -> Any:
    try:
        async with asyncio.timeout(LIMIT):
            while not (value := check()):
                await asyncio.sleep(0.05)
            return value
    except TimeoutError:
        raise AssertionError(f"gave up waiting for {what}") from None


@contextlib.asynccontextmanager
async def client(broker: LocalBroker, name: str) -> AsyncIterator[Client]:
    async with make_client(BrokerAddress.parse(broker.url), f"test-{name}-{os.getpid()}") as c:
        yield c


async def central_state(broker: LocalBroker) -> str:
    """The centre's own retained status."""
    async with client(broker, "watch-central") as c:
        await c.subscribe(CENTRAL_STATUS, qos=1)
        async with asyncio.timeout(LIMIT):
            message = await anext(aiter(c.messages))
    return str(json.loads(message.payload)["state"])


@dataclass
class Running:
    db: Path
    proc: asyncio.subprocess.Process


@pytest.fixture
async def central(broker: LocalBroker, tmp_path: Path) -> AsyncIterator[Running]:
    """``classroom-central run`` as a subprocess, collecting into tmp_path/fleet.db."""
    db = fleet_at(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        *CENTRAL, "run", "--broker", broker.url, "--db", str(db), stderr=asyncio.subprocess.DEVNULL
    )
    try:
        await until(lambda: Location.parse(db).exists(), "fleet.db")
        async with asyncio.timeout(LIMIT):
            while await central_state(broker) != "online":
                await asyncio.sleep(0.05)
        yield Running(db, proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def announce_with_alarm(broker: LocalBroker, agent: str) -> None:
    topics = Topics(SITE, agent)
    devices = (DeviceInfo("panel", "display", "lg-rs232"), DeviceInfo("camera", "camera", "sony-visca"))
    async with client(broker, f"{agent}-announce") as c:
        await c.publish(topics.status, encode(Status("online", 1, now_iso(), "1.0").to_dict()), qos=1, retain=True)
        await c.publish(topics.info, encode(Info("物理实验室", "pc", "1.0", devices).to_dict()), qos=1, retain=True)
        for device, online in (("panel", True), ("camera", False)):
            state = DeviceState(device, online, now_iso(), {"power": "on"} if online else {})
            await c.publish(topics.state(device), encode(state.to_dict()), qos=1, retain=True)
        alarm = Event("disk_low", "critical", "raise", now_iso(), "3 GB free")
        await c.publish(topics.event, encode(alarm.to_dict()), qos=1)


def fleet_row(db: Path, agent: str) -> dict[str, Any] | None:
    fleet = FleetDB(db)
    try:
        found = fleet.agent(agent)
        return found if found and len(found["devices"]) == 2 and found["open_alarms"] else None
    finally:
        fleet.close()


async def test_fleet_and_alarms_print_tables(broker: LocalBroker, central: Running) -> None:
    await announce_with_alarm(broker, "r101")
    await until(lambda: fleet_row(central.db, "r101"), "r101 with devices and an alarm")

    table = await cli("fleet", "--db", str(central.db))
    assert table.code == 0, table.err
    header, *rows = [line.split() for line in table.out.splitlines()]
    assert header == ["SITE", "AGENT", "ROOM", "STATE", "LAST", "SEEN", "DEVICES", "ALARMS"]
    [row] = rows
    assert row[:4] == [SITE, "r101", "物理实验室", "online"] and row[-2:] == ["1/2", "1"]

    offline = await cli("fleet", "--db", str(central.db), "--offline")
    assert offline.code == 0 and len(offline.out.splitlines()) == 1  # the header only
    elsewhere = await cli("fleet", "--db", str(central.db), "--site", "other-school")
    assert elsewhere.code == 0 and len(elsewhere.out.splitlines()) == 1

    alarms = await cli("alarms", "--db", str(central.db))
    assert alarms.code == 0, alarms.err
    [line] = alarms.out.splitlines()[1:]
    assert line.split()[1:5] == [SITE, "r101", "critical", "disk_low"] and line.endswith("3 GB free")

    missing = await cli("fleet", "--db", "no-such-folder/nowhere.db")
    assert missing.code == 2 and "nowhere.db" in missing.err


def site_of(db: Path, agent: str) -> str | None:
    fleet = FleetDB(db)
    try:
        return fleet.site_of(agent)
    finally:
        fleet.close()


@contextlib.asynccontextmanager
async def agent_answering(broker: LocalBroker, agent: str) -> AsyncIterator[None]:
    """Succeeds ``agent.ping`` (echoing the args), rejects everything else."""
    topics = Topics(SITE, agent)

    async def serve(c: Client) -> None:
        async for message in c.messages:
            command = json.loads(message.payload)
            name = message.topic.value.rsplit("/", 1)[-1]
            if name == "agent.ping":
                answer = {"status": "succeeded", "result": {"pong": command["args"], "by": command["by"]}}
            else:
                answer = {"status": "rejected", "error": f"unknown command {name!r}"}
            await c.publish(topics.reply, encode({"id": command["id"], **answer}), qos=1)

    async with client(broker, f"{agent}-cmd") as c:
        await c.subscribe(topics.cmd(), qos=1)
        await c.publish(topics.status, encode(Status("online", 1, now_iso(), "1").to_dict()), qos=1, retain=True)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(serve(c))
            try:
                yield
            finally:
                task.cancel()


async def test_send_prints_the_reply_and_exits_by_its_status(broker: LocalBroker, central: Running) -> None:
    db = str(central.db)
    async with agent_answering(broker, "r102"):
        await until(lambda: site_of(central.db, "r102"), "r102 known")
        ok = await cli(
            "send", "r102", "agent.ping", "on=true", "level=30", "src=hdmi1", "--broker", broker.url, "--db", db,
            "--by", "tech1",
        )  # fmt: skip
        assert ok.code == 0, ok.err
        reply = json.loads(ok.out)
        assert reply["status"] == "succeeded"
        assert reply["result"] == {"pong": {"on": True, "level": 30, "src": "hdmi1"}, "by": "tech1"}

        refused = await cli("send", "r102", "panel.explode", "--broker", broker.url, "--db", db)
        assert refused.code == 1 and json.loads(refused.out)["status"] == "rejected"

    bad = await cli("send", "r102", "agent.ping", "oops", "--broker", broker.url, "--db", db)
    assert bad.code == 2 and "oops" in bad.err
    unknown = await cli("send", "nobody", "agent.ping", "--broker", broker.url, "--db", db)
    assert unknown.code == 2 and "nobody" in unknown.err
    silent = await cli("send", "r102", "agent.ping", "--broker", broker.url, "--db", db, "--timeout", "0.5")
    assert silent.code == 1 and json.loads(silent.out)["status"] == "timeout"

    fleet = FleetDB(central.db)
    try:
        log = {c["id"]: c for c in fleet.commands(agent_id="r102")}
    finally:
        fleet.close()
    assert log[reply["id"]]["status"] == "succeeded" and log[reply["id"]]["by"] == "tech1"
    assert sorted(c["status"] for c in log.values()) == ["rejected", "succeeded", "timeout"]


async def test_sigterm_stops_central_cleanly_and_says_offline(broker: LocalBroker, central: Running) -> None:
    central.proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(LIMIT):
        assert await central.proc.wait() == 0
    assert await central_state(broker) == "offline"


# ---- secrets: the broker password off the command line, fleet.db private -----------------------


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[LocalBroker]:
    """A Mosquitto that knows only the centre (``central``) and a technician (``tech``), by password."""
    from central.broker_config import write_broker_config
    from central.broker_registry import Registry, UserAccount

    users = (UserAccount("central", "pw-central-9", "central"), UserAccount("tech", "pw-tech-9", "technician"))
    files = write_broker_config(Registry((), users), tmp_path / "conf", None, 1883)
    with LocalBroker(tmp_path / "broker", password_file=files.password_file, acl_file=files.acl_file) as running:
        yield running


async def secured_central_state(broker: LocalBroker) -> str:
    address = BrokerAddress.parse(broker.url, username="tech", password="pw-tech-9")
    async with make_client(address, "tech") as c:
        await c.subscribe(CENTRAL_STATUS, qos=1)
        async with asyncio.timeout(LIMIT):
            message = await anext(aiter(c.messages))
    return str(json.loads(message.payload)["state"])


@pytest.mark.parametrize("source", ["file", "environment"])
async def test_the_broker_password_comes_from_a_file_or_the_environment_not_argv(
    secured: LocalBroker, tmp_path: Path, source: str
) -> None:
    db = fleet_at(tmp_path)
    words = ["run", "--broker", secured.url, "--username", "central", "--db", str(db)]
    env = {k: v for k, v in os.environ.items() if k != "CLASSROOM_BROKER_PASSWORD"}
    if source == "file":
        secret = tmp_path / "broker-password"
        secret.write_text("pw-central-9\n")
        words += ["--password-file", str(secret)]
    else:
        env["CLASSROOM_BROKER_PASSWORD"] = "pw-central-9"
    proc = await asyncio.create_subprocess_exec(*CENTRAL, *words, env=env, stderr=asyncio.subprocess.DEVNULL)
    try:
        async with asyncio.timeout(LIMIT):
            while await secured_central_state(secured) != "online":
                await asyncio.sleep(0.05)
        assert b"pw-central-9" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes()  # what `ps` shows
        if isinstance(db, Path):  # a SQLite file (a PostgreSQL server keeps its own files private)
            for path in (db, db.with_name("fleet.db-wal"), db.with_name("fleet.db-shm")):
                assert path.stat().st_mode & 0o777 == 0o600, path  # it holds the cookie secret and password hashes
    finally:
        proc.kill()
        await proc.wait()


async def test_an_unreadable_password_file_is_one_line_naming_it(tmp_path: Path) -> None:
    done = await cli("run", "--broker", "mqtt://127.0.0.1:1", "--password-file", str(tmp_path / "nope"))
    assert done.code == 2 and "--password-file" in done.err and "nope" in done.err, done.err
    assert len(done.err.strip().splitlines()) == 1, done.err


async def test_fleet_db_made_by_users_or_upload_token_is_private(tmp_path: Path) -> None:
    for words in (
        ["users", "--db", str(tmp_path / "a.db"), "list"],
        ["upload-token", "a1", "--db", str(tmp_path / "b.db")],
    ):
        done = await cli(*words)
        assert done.code == 0, done.err
    for name in ("a.db", "b.db"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name
