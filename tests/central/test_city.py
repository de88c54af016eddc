"""A city, as docs/scale.md deploys it: PostgreSQL, a group of collectors, a school's broker bridged to the district's.

Everything runs as it does in a district: two Mosquittos from ``classroom-central broker-config``
(school A's bridged to the district's over TLS, tests/central/bridge_fixture.py), on the district
broker ``classroom-central run --group city --collectors 2 --db postgresql://… --http …`` as a real
process with its helper (each with its own broker-config'd account: ``central``, ``central-1``),
a real agent with a simulated panel on the school broker, and ``classroom-central send`` and
``classroom-central users`` run by a technician as processes of their own, against the district
broker and the same store.  What is checked is what a technician relies on: the room in the
store once, a command answered and audited, an alarm stored once, the dashboard listing the room.
Every wait ends on what the store, the logs or the dashboard show, never on time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
from bridge_fixture import PASSWORDS, ROOM_NAME, SITE, bridged_brokers, panel_power, running_agent
from fleet_stores import rows
from group_processes import cli, connects, helpers, kill_group, start, stop, subscribed, taken_over, until
from registry import user_row

from central.fleetdb import FleetDB
from central.mosquitto import free_port

# The technician's shell has a broker account of its own (one connection per account on
# broker-config's Mosquitto: `send` with the service's account would knock the service off).
SENDER, SENDER_PASSWORD = "central-cli", "pw-central-cli-5b2d"
TECH, TECH_PASSWORD = "tech-li", "pass-word-tech-li"
DISK_ALWAYS_LOW = "[health]\ndisk_low_percent = 100\n"  # the agent's own health check raises disk_low


async def test_a_city_sees_commands_and_alarms_a_room_behind_its_school_broker(pg_url: str, tmp_path: Path) -> None:
    more_accounts = user_row(SENDER, SENDER_PASSWORD, "central")
    async with bridged_brokers(tmp_path, collectors=2, more=more_accounts) as net:
        district = ["--broker", net.district.url, "--ca-file", str(net.pki.cafile)]
        added = await cli("users", "--db", pg_url, "add", TECH, "--role", "technician", stdin=TECH_PASSWORD + "\n")
        assert added[0] == 0, added

        port, log = free_port(), tmp_path / "central.log"
        words = [*district, "--username", "central", "--db", pg_url, "--group", "city", "--collectors", "2"]
        words += ["--http", f"127.0.0.1:{port}", "--recordings", str(tmp_path / "recordings")]
        parent = await start(log, *words, env={"CLASSROOM_BROKER_PASSWORD": PASSWORDS["central"]})
        db = FleetDB(pg_url)
        try:
            await until(lambda: subscribed(log) == 2, "both collectors of the group subscribed")
            assert len(helpers(parent.pid)) == 1  # the parent started its helper
            async with running_agent(net, tmp_path, DISK_ALWAYS_LOW) as room:
                # status, info and the panel's state crossed the bridge and the group into PostgreSQL
                seen = await until(
                    lambda: (a := db.agent("room-101")) and a["state"] == "online" and a["room"] == ROOM_NAME and a,
                    "room-101 online with its info",
                )
                assert (seen["site"], seen["session"]) == (SITE, room.link.session)
                assert [d["id"] for d in seen["devices"]] == ["panel"]
                assert await until(lambda: panel_power(db), "the panel's state") == "on"

                # a technician's command from a shell: answered across the bridge, audited by whom
                sent = await cli(
                    "send", "room-101", "panel.power", "device=panel", "on=false", *district, "--username", SENDER,
                    "--db", pg_url, "--by", TECH, "--timeout", "45",
                    env={"CLASSROOM_BROKER_PASSWORD": SENDER_PASSWORD},
                )  # fmt: skip
                assert sent[0] == 0, sent
                reply = json.loads(sent[1])
                assert reply["status"] == "succeeded", reply
                audit = await until(
                    lambda: (c := db.command(reply["id"])) and c["status"] == "succeeded" and c, "the audit row"
                )
                assert (audit["agent_id"], audit["name"], audit["by"]) == ("room-101", "panel.power", TECH)
                await until(lambda: panel_power(db) == "off", "the panel's new state")

                # the agent's health check raises disk_low on every tick: one event, one alarm in the store,
                # still one after more ticks have crossed (telemetry goes the same way, after it)
                [alarm] = await until(lambda: db.alarms(agent_id="room-101", open_only=False), "the disk alarm")
                ticks = len(db.telemetry_history("room-101", limit=1000))
                await until(lambda: len(db.telemetry_history("room-101", limit=1000)) >= ticks + 3, "3 more ticks")
                assert [(a["id"], a["type"]) for a in db.alarms(agent_id="room-101", open_only=False)] == [
                    (alarm["id"], "disk_low")
                ]
                assert (alarm["site"], alarm["severity"], alarm["cleared_ts"]) == (SITE, "critical", None)
                assert disk_events(pg_url) == 1

                # the room is in the store once: one row, one "online" for its session
                history = db.status_history("room-101")
                assert [h["state"] for h in history if h["session"] == room.link.session] == ["online"]
                assert rows(pg_url, "SELECT count(*) FROM agents WHERE agent_id = ?", ["room-101"]) == [(1,)]

                # the parent's dashboard lists the room (logged in as the technician the CLI added)
                url = f"http://127.0.0.1:{port}"
                await until(lambda: f"dashboard on {url}/" in log.read_text(errors="replace"), "the dashboard")
                fleet = await dashboard_fleet(url)
                listed = [a for a in fleet["agents"] if a["agent_id"] == "room-101"]
                assert [(a["room"], a["state"], a["open_alarms"]) for a in listed] == [(ROOM_NAME, "online", 1)]
                assert fleet["sites"] == [SITE]

            # each process had its own account and nobody was knocked off the district broker
            assert taken_over(net.district) == []
            assert [connects(net.district, name) for name in ("central", "central-1", SENDER)] == [1, 1, 1]
            assert await stop(parent) == 0
        finally:
            db.close()
            await kill_group(parent)


def disk_events(store: str) -> int:
    """How many disk_low events the store holds for room-101."""
    sql = "SELECT count(*) FROM events WHERE agent_id = ? AND type = ?"
    return int(rows(store, sql, ["room-101", "disk_low"])[0][0])


async def dashboard_fleet(url: str) -> Any:
    """``/api/fleet`` of the dashboard at `url`, after logging in."""
    jar = aiohttp.CookieJar(unsafe=True)  # the dashboard is on an IP address: keep its cookie
    async with aiohttp.ClientSession(url, cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=30)) as http:
        form = {"username": TECH, "password": TECH_PASSWORD, "next": "/"}
        async with http.post("/login", data=form, allow_redirects=False) as response:
            assert response.status == 303, await response.text()
        async with http.get("/api/fleet") as response:
            assert response.status == 200, await response.text()
            return await response.json()
