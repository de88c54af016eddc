"""`classroom-central fleet`, `alarms` and `send` never hand an agent's control characters to the terminal.

An agent (or anyone holding its broker credentials) chooses its room name and its alarm messages; an
ESC sequence, a BEL, C1's CSI or a bidi override in them would clear, retitle or rewrite the
technician's terminal.  The real CLI runs as a process against a real centre and a real Mosquitto;
its output holds each such character escaped (``\\u001b``), and stays valid JSON where it is JSON.
"""

from __future__ import annotations

import json

from test_central_cli import SITE, Running, central, cli, client, until

from central.fleetdb import FleetDB
from central.mosquitto import LocalBroker
from central.terminal import shown
from contract import DeviceInfo, Event, Info, Status, Topics, encode, now_iso

__all__ = ["central"]  # the running centre, a fixture of test_central_cli

ROOM = "高一\x1b]0;owned\x07\x1b[2J\x9b31m\u202eevil\u2028(1)班"
MESSAGE = "disk \x1b[8mhidden\x1b[0m \x7f\U000e0041 low"
STEERING = ("\x1b", "\x07", "\x9b", "\u202e", "\u2028", "\x7f", "\U000e0041")


def _agent_row(db: str, agent: str) -> bool:
    fleet = FleetDB(db)
    try:
        found = fleet.agent(agent)
        return bool(found and found["room"] == ROOM and found["open_alarms"])
    finally:
        fleet.close()


async def test_room_names_and_alarm_messages_are_escaped_on_the_terminal(broker: LocalBroker, central: Running) -> None:
    topics = Topics(SITE, "r666")
    async with client(broker, "hostile-agent") as c:
        await c.publish(topics.status, encode(Status("online", 1, now_iso(), "1.0").to_dict()), qos=1, retain=True)
        info = Info(ROOM, "pc", "1.0", (DeviceInfo("panel", "display", "lg-rs232"),))
        await c.publish(topics.info, encode(info.to_dict()), qos=1, retain=True)
        await c.publish(
            topics.event, encode(Event("disk_low", "critical", "raise", now_iso(), MESSAGE).to_dict()), qos=1
        )
    await until(lambda: _agent_row(str(central.db), "r666"), "r666 with its room and an alarm")

    fleet = await cli("fleet", "--db", str(central.db))
    alarms = await cli("alarms", "--db", str(central.db))
    for done in (fleet, alarms):
        assert done.code == 0, done.err
        assert not [c for c in STEERING if c in done.out], repr(done.out)
    assert "高一\\u001b]0;owned\\u0007\\u001b[2J\\u009b31m\\u202eevil\\u2028(1)班" in fleet.out
    assert "disk \\u001b[8mhidden\\u001b[0m \\u007f\\udb40\\udc41 low" in alarms.out


def test_escaped_json_is_still_the_same_json() -> None:
    reply = {"status": "failed", "error": MESSAGE, "result": {"room": ROOM}}
    text = shown(json.dumps(reply, ensure_ascii=False))
    assert not [c for c in STEERING if c in text]
    assert json.loads(text) == reply
    assert shown("高一(1)班 · room-101") == "高一(1)班 · room-101"  # printable text untouched
