"""A PJLink projector in a room: driven like a panel, its lamp and faults raised and cleared as alarms.

The agent runs against a real Mosquitto; the projector is our PJLink simulator on loopback TCP,
asking for a password, with a clock the test moves (so warm-up and cool-down last as long as needed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rooms import site_toml

from agent.config.site import DeviceConfig, load_config
from agent.web.view import device_light, room_layout
from central.mosquitto import LocalBroker
from drivers.profile import find_profile
from drivers.sim.model import Simulator
from drivers.sim.runner import SimServer
from tests.agent.test_service import AGENT, ROOT, SITE, Inbox, command, listen, running

PASSWORD = "classroom7"


def write_config(tmp: Path, broker: LocalBroker, address: str) -> Path:
    return site_toml(
        tmp,
        broker.url,
        f"""[[devices]]
id = "projector"
profile = "pjlink"
address = "{address}?password={PASSWORD}"
poll_s = 0.3
lamp_hours_limit = 1500
[[devices]]
id = "projector-b"
profile = "pjlink"
address = "{address}?password=not-{PASSWORD}"
poll_s = 0.3
""",
        agent_id=AGENT,
        site=SITE,
    )


def events(inbox: Inbox, action: str, code: str) -> Callable[[], list[dict[str, Any]]]:
    return lambda: [
        e
        for e in inbox.on(f"{ROOT}/event")
        if e["action"] == action and e["type"] == code and e.get("device") == "projector"
    ]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_lamp_and_fault_alarms_are_raised_with_codes_and_cleared(tmp_path: Path, broker: LocalBroker) -> None:
    sim = Simulator(find_profile("pjlink"), clock=Clock())
    async with SimServer(sim, "tcp://127.0.0.1:0", password=PASSWORD) as server:
        config = load_config(write_config(tmp_path, broker, server.device_path))
        async with running(config), listen(broker) as (inbox, _):
            state = await inbox.until(
                lambda: [s for s in inbox.on(f"{ROOT}/state/projector") if s.get("online")], timeout=40
            )
            assert state[-1]["state"]["lamp_hours"] == 1200 and state[-1]["state"]["fan_status"] == "ok"
            assert not events(inbox, "raise", "lamp_end_of_life")()

            sim.set("lamp_hours", 1510)
            sim.set("fan_status", "error")
            lamp = (await inbox.until(events(inbox, "raise", "lamp_end_of_life"), timeout=40))[0]
            assert lamp["severity"] == "warning" and lamp["params"] == {"hours": 1510, "limit": 1500}
            fan = (await inbox.until(events(inbox, "raise", "fault_fan"), timeout=40))[0]
            assert fan["severity"] == "critical" and fan["params"] == {"part": "fan", "level": "error"}

            sim.set("fan_status", "warning")  # better, not gone: the centre hears the new severity
            await inbox.until(lambda: [e for e in events(inbox, "raise", "fault_fan")() if e["severity"] == "warning"])
            sim.set("fan_status", "ok")
            sim.set("lamp_hours", 0)  # a new lamp
            cleared = await inbox.until(events(inbox, "clear", "fault_fan"), timeout=40)
            assert cleared[0]["params"] == {"part": "fan", "level": "warning"}
            await inbox.until(events(inbox, "clear", "lamp_end_of_life"), timeout=40)
            # Each alarm was raised once more only for its change of severity, and cleared once.
            assert len(events(inbox, "raise", "lamp_end_of_life")()) == 1
            assert len(events(inbox, "raise", "fault_fan")()) == 2
            assert not events(inbox, "raise", "fault_lamp")()


async def test_panel_commands_drive_the_projector_and_a_wrong_password_fails_naming_it(
    tmp_path: Path, broker: LocalBroker
) -> None:
    clock = Clock()
    sim = Simulator(find_profile("pjlink"), clock=clock)
    async with SimServer(sim, "tcp://127.0.0.1:0", password=PASSWORD) as server:
        config = load_config(write_config(tmp_path, broker, server.device_path))
        async with running(config), listen(broker) as (inbox, client):

            async def ask(name: str, args: dict[str, Any]) -> dict[str, Any]:
                payload = command(name, args)
                ident = json.loads(payload)["id"]
                await client.publish(f"{ROOT}/cmd/{name}", payload, qos=1)
                found = lambda: next((p for p in inbox.on(f"{ROOT}/reply") if p["id"] == ident), None)  # noqa: E731
                reply: dict[str, Any] = await inbox.until(found, timeout=40)
                return reply

            def reported(**want: object) -> Callable[[], bool]:
                return lambda: any(
                    all(s["state"].get(k) == v for k, v in want.items()) for s in inbox.on(f"{ROOT}/state/projector")
                )

            assert (await ask("panel.input", {"device": "projector", "source": "video1"}))["status"] == "succeeded"
            assert (await ask("panel.mute", {"device": "projector", "on": True}))["status"] == "succeeded"
            await inbox.until(reported(source="video1", mute="on"))
            assert (await ask("panel.power", {"device": "projector", "on": False}))["status"] == "succeeded"
            await inbox.until(reported(power="cooling"))
            refused = await ask("panel.input", {"device": "projector", "source": "digital1"})
            assert refused["status"] == "failed" and "unavailable_time" in refused["error"]
            clock.now += 60
            assert (await ask("panel.power", {"device": "projector", "on": True}))["status"] == "succeeded"
            await inbox.until(reported(power="warming"))

            wrong = await ask("panel.power", {"device": "projector-b", "on": True})
            assert wrong["status"] == "failed"
            assert wrong["error"].startswith("projector-b: ") and "PJLINK ERRA" in wrong["error"]
            assert PASSWORD not in wrong["error"]
            offline = await inbox.until(
                lambda: [
                    s for s in inbox.on(f"{ROOT}/state/projector-b") if "authentication failed" in s.get("error", "")
                ]
            )
            assert offline[-1]["online"] is False


def test_the_classroom_page_offers_a_projector_power_and_inputs_but_no_volume() -> None:
    projector = DeviceConfig("projector", find_profile("pjlink"), "sim", 10)
    (panel,) = room_layout([projector], ["panel.power"])["panels"]
    assert panel["kind"] == "projector" and panel["volume"] is False
    assert panel["inputs"] == [] and panel["reports_inputs"] is True  # the ones it has come with its state (INST)
    cooling = device_light("projector", {"online": True, "state": {"power": "cooling"}})
    assert (cooling.level, cooling.why) == ("amber", "standby")
    lost = device_light("projector", {"online": False, "error": "PJLink authentication failed"}, "network")
    assert (lost.level, lost.why, lost.link) == ("red", "projector_offline", "network")
