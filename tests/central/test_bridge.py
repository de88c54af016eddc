"""Bridged school brokers: a school's Mosquitto carries its rooms to the district's, both run from broker-config.

Two real Mosquittos on loopback, each started from ``classroom-central broker-config``'s own
``mosquitto.conf`` (plus persistence and a log, as Debian's main config adds): the school broker
(plain MQTT for its rooms, and ``--bridge``) and the district broker (TLS, the bridge's account).
Between them runs the school's "WAN": a TCP relay on loopback the test cuts and restores. A real
agent (agent.service.Agent, on a simulated panel) talks to the school broker only; the real centre
(central.app.Central, fleet.db) talks to the district broker only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bridge_fixture import (
    BRIDGE,
    BRIDGE_SECRET,
    BRIDGE_STATE,
    ROOM_NAME,
    SENTINEL,
    SITE,
    T101,
    T102,
    T201,
    T901,
    Bridged,
    ConfBroker,
    account,
    bridged,
    broker_config_cli,
    connect,
    district_registry,
    panel_power,
    receive_until,
    running_agent,
    running_centre,
    topics_of,
    until,
)
from pki import make_pki

from central import broker_config
from central.mosquitto import LocalBroker, free_port
from contract import Topics
from contract.mqtt import MqttError

__all__ = ["bridged"]  # the fixture, used by name


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
        assert await until(lambda: panel_power(central.db), "the panel's state") == "on"
        await until(lambda: central.db.telemetry_history("room-101"), "telemetry")

        # a technician's command goes down the bridge, its reply comes back up, and both are audited
        reply = await central.sender.send("room-101", "panel.power", {"device": "panel", "on": False}, "tech-li")
        assert reply["status"] == "succeeded", reply
        audit = await until(
            lambda: (c := central.db.command(reply["id"])) and c["status"] == "succeeded" and c, "the audit row"
        )
        assert (audit["agent_id"], audit["name"], audit["by"]) == ("room-101", "panel.power", "tech-li")
        await until(lambda: panel_power(central.db) == "off", "the panel's new state")


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
