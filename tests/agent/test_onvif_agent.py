"""An ONVIF camera in the agent: the command table over MQTT -> DeviceService -> onvif driver -> HTTP -> simulator."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from rooms import site_toml
from test_service import ROOT, command, listen, running  # the agent test helpers (tests/agent is on sys.path)

from agent.config.site import load_config, parse_config
from agent.errors import ConfigError
from central.mosquitto import LocalBroker
from contract.limits import for_kind
from drivers.sim.onvif import OnvifCamera, OnvifServer


def write_config(tmp: Path, broker: LocalBroker, camera: str = "sim") -> Path:
    return site_toml(
        tmp,
        broker.url,
        f"""[[devices]]
id = "camera"
profile = "onvif"
address = "{camera}"
poll_s = 0.5
[[devices]]
id = "visca"
profile = "sony-visca"
address = "sim"
""",
        agent_id="room-7",
    )


async def test_an_onvif_camera_answers_the_room_commands_over_mqtt(tmp_path: Path, broker: LocalBroker) -> None:
    config = load_config(write_config(tmp_path, broker))
    async with running(config), listen(broker) as (inbox, client):

        async def ask(name: str, args: dict[str, Any]) -> dict[str, Any]:
            payload = command(name, args)
            ident = json.loads(payload)["id"]
            await client.publish(f"{ROOT}/cmd/{name}", payload, qos=1)
            found = lambda: next((p for p in inbox.on(f"{ROOT}/reply") if p["id"] == ident), None)  # noqa: E731
            reply: dict[str, Any] = await inbox.until(found, timeout=40)
            return reply

        def camera_state() -> dict[str, Any]:
            states = inbox.on(f"{ROOT}/state/camera")
            return dict(states[-1]["state"]) if states and states[-1]["online"] else {}

        # Identity and position reach the contract like any camera's state.
        await inbox.until(lambda: camera_state().get("model") == "SimPTZ")
        assert {camera_state()[k] for k in ("make", "firmware")} == {"Classroom", "1.0.0"} and camera_state()["serial"]

        saved = await ask("camera.preset.save", {"device": "camera", "preset": 3})
        assert saved["status"] == "succeeded" and saved["result"]["preset"] == 3
        moved = await ask("camera.move", {"device": "camera", "direction": "right", "speed": 24})
        assert moved["status"] == "succeeded"
        await inbox.until(lambda: camera_state().get("pan", 0) > 100)
        assert (await ask("camera.stop", {"device": "camera"}))["status"] == "succeeded"

        recalled = await ask("camera.preset.recall", {"device": "camera", "preset": 3})
        assert recalled["status"] == "succeeded" and recalled["result"]["preset"] == 3
        await inbox.until(lambda: camera_state().get("pan") == 0 and camera_state().get("moving") is False)
        assert camera_state()["preset"] == 3

        missing = await ask("camera.preset.recall", {"device": "camera", "preset": 9})
        assert missing["status"] == "failed" and "camera" in missing["error"] and "no preset 9" in missing["error"]
        assert (await ask("camera.zoom", {"device": "camera", "direction": "tele"}))["status"] == "succeeded"
        await inbox.until(lambda: camera_state().get("zoom", 0) > 0)
        assert (await ask("camera.home", {"device": "camera"}))["status"] == "succeeded"
        await inbox.until(lambda: (camera_state().get("zoom"), camera_state().get("moving")) == (0, False))
        assert "preset" not in camera_state()
        assert (await ask("camera.home", {"device": "visca"}))["status"] == "succeeded"  # every camera has home

        still = await ask("camera.snapshot", {"device": "camera"})
        assert still["status"] == "succeeded", still
        jpeg = base64.b64decode(still["result"]["jpeg"])
        picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert picture.shape[1] == still["result"]["width"] <= 640 and picture.shape[0] == still["result"]["height"]
        assert len(json.dumps(still).encode()) <= for_kind("reply").size
        refused = await ask("camera.snapshot", {"device": "visca"})
        assert refused["status"] == "rejected" and "serves no video" in refused["error"]


async def test_a_wrong_password_is_a_failed_command_naming_the_camera(tmp_path: Path, broker: LocalBroker) -> None:
    camera = OnvifCamera(user="admin", password="the-right-one")
    async with OnvifServer(camera, host="127.0.0.1", port=0, report=lambda line: None) as server:
        address = f"onvif://admin:not-it@127.0.0.1:{server.port}"
        async with running(load_config(write_config(tmp_path, broker, camera=address))) as agent:
            outcome = await agent.table.execute("camera.preset.recall", {"device": "camera", "preset": 1})
            assert outcome.status == "failed"
            assert outcome.error.startswith("camera:") and "refused the user name or password" in outcome.error
            assert not agent.devices["camera"].state().online
            alarms = [a for a in agent.alarms.open.values() if a.type == "device_offline" and a.device == "camera"]
            assert alarms and "user name or password" in alarms[0].message
            assert "not-it" not in json.dumps(agent.status(), ensure_ascii=False)
            assert "not-it" not in json.dumps(agent.info().to_dict(), ensure_ascii=False)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("onvif:nosuch", "sources.teacher: got 'onvif:nosuch', expected an onvif camera's device id (camera)"),
        ("onvif:visca", "sources.teacher: got 'onvif:visca': visca is a sony-visca device, not onvif"),
        ("onvif:camera/", "sources.teacher: got 'onvif:camera/', expected rtsp://"),
        ("onvif:", "sources.teacher: got 'onvif:', expected rtsp://..., onvif:DEVICE[/main|/sub|/TOKEN]"),
    ],
)
def test_an_onvif_source_must_name_an_onvif_camera(tmp_path: Path, source: str, problem: str) -> None:
    data = {
        "agent_id": "a",
        "site": "s",
        "room": "r",
        "devices": [
            {"id": "camera", "profile": "onvif", "address": "onvif://admin:x@10.0.0.5"},
            {"id": "visca", "profile": "sony-visca", "address": "sim"},
        ],
        "sources": {"teacher": source},
    }
    with pytest.raises(ConfigError) as err:
        parse_config(data, base=tmp_path)
    assert problem in str(err.value)


def test_an_onvif_source_and_its_profiles_are_accepted(tmp_path: Path) -> None:
    data = {
        "agent_id": "a",
        "site": "s",
        "room": "r",
        "devices": [{"id": "camera", "profile": "onvif", "address": "onvif://admin:x@10.0.0.5"}],
        "sources": {"teacher": "onvif:camera", "wide": "onvif:camera/sub", "third": "onvif:camera/Profile_3"},
    }
    config = parse_config(data, base=tmp_path)
    assert {s.id: s.kind for s in config.sources} == {"teacher": "rtsp", "wide": "rtsp", "third": "rtsp"}


def test_an_onvif_address_is_checked_with_the_config_and_never_shown(tmp_path: Path) -> None:
    data = {
        "agent_id": "a",
        "site": "s",
        "room": "r",
        "devices": [{"id": "camera", "profile": "onvif", "address": "onvif://admin:hunter2@10.0.0.5:99999"}],
    }
    with pytest.raises(ConfigError) as err:
        parse_config(data, base=tmp_path)
    assert "devices[0].address: onvif://admin:***@10.0.0.5:99999: bad port" in str(err.value)
    assert "hunter2" not in str(err.value)
