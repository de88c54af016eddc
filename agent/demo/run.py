"""The demo: devices first (a simulated panel and PTZ camera driven directly), then the fleet."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Mapping
from pathlib import Path

from drivers.device import Device
from drivers.errors import ArgumentError, DeviceError
from drivers.profile import find_profile
from drivers.sim.model import Simulator
from drivers.sim.runner import Faults, SimServer
from drivers.transport import make_transport

PANEL = "samsung-mdc"
CAMERA = "sony-visca"


async def _step(device: Device, label: str, command: str, args: Mapping[str, object], pause: float) -> None:
    shown = " ".join(f"{k}={v}" for k, v in args.items())
    started = time.perf_counter()
    try:
        result = await device.call(command, args)
        outcome = json.dumps(result.fields, ensure_ascii=False, allow_nan=False) if result.fields else result.kind
        status = "ok  "
    except (ArgumentError, DeviceError) as exc:
        outcome, status = f"refused: {exc}", "no  "
    ms = (time.perf_counter() - started) * 1000
    print(f"  {status} {label:<7} {command:<14} {shown:<28} -> {outcome}  ({ms:.1f} ms)", flush=True)
    await asyncio.sleep(pause)


async def run(
    pause: float = 0.3,
    *,
    data: Path = Path("var/demo"),
    broker_url: str | None = None,
    http: tuple[str, int] = ("127.0.0.1", 8080),
    duration: float | None = None,
) -> int:
    """The device walkthrough, then the fleet (centre + two rooms) until `duration` or Ctrl-C."""
    print("== devices: a panel and a PTZ camera, driven directly through their profiles ==")
    await devices(pause)
    print("\n== the fleet: classroom-central and two classrooms ==")
    from agent.demo.fleet import run_fleet

    return await run_fleet(data, broker_url=broker_url, http=http, pause=pause, duration=duration)


async def devices(pause: float = 0.3) -> int:
    """Start both simulators, drive them, print what happens; returns the exit status."""
    panel_profile, camera_profile = find_profile(PANEL), find_profile(CAMERA)
    source = panel_profile.fields["source"]
    hdmi = next((name for name in source.values if "hdmi" in name.lower()), next(iter(source.values)))
    async with (
        SimServer(Simulator(panel_profile), "tcp://127.0.0.1:0", report=lambda _: None) as panel_sim,
        SimServer(Simulator(camera_profile), "pty", report=lambda _: None) as camera_sim,
    ):
        print(f"simulated panel  {panel_profile.name} at {panel_sim.device_path}")
        print(f"simulated camera {camera_profile.name} at {camera_sim.device_path}")
        async with (
            Device(panel_profile, make_transport(panel_sim.device_path, panel_profile), device_id="panel") as panel,
            Device(camera_profile, make_transport(camera_sim.device_path, camera_profile), device_id="camera") as cam,
        ):
            print("\nstart of lesson: panel on, HDMI, volume (and a volume the panel cannot take)")
            panel_steps: list[tuple[str, dict[str, object]]] = [
                ("power_on", {}),
                ("set_input", {"source": hdmi}),
                ("set_volume", {"level": 30}),
                ("get_power", {}),
                ("get_volume", {}),
                ("set_volume", {"level": 150}),
            ]
            for command, args in panel_steps:
                await _step(panel, "panel", command, args, pause)
            print("\ncamera: frame the blackboard, store it as preset 1, go home, recall it")
            camera_steps: list[tuple[str, dict[str, object]]] = [
                ("get_power", {}),
                ("goto", {"pan": -600, "tilt": 150}),
                ("zoom_to", {"position": 0x2000}),
                ("preset_set", {"n": 1}),
                ("home", {}),
                ("get_position", {}),
                ("preset_recall", {"n": 1}),
                ("get_position", {}),
                ("get_zoom", {}),
            ]
            for command, args in camera_steps:
                await _step(cam, "camera", command, args, pause)
            print("\nend of lesson: camera to standby, a command it cannot run in standby, panel off")
            for device, label, command in [
                (cam, "camera", "power_off"),
                (cam, "camera", "home"),
                (panel, "panel", "power_off"),
            ]:
                await _step(device, label, command, {}, pause)
        print("\nnoisy line: the camera's simulator now drops 30% of replies and adds noise; the driver retries")
        camera_sim.faults = Faults(drop_replies=0.3, garbage=0.3, rng=random.Random(2028))  # same run each time
        async with Device(
            camera_profile, make_transport(camera_sim.device_path, camera_profile), device_id="camera"
        ) as cam:
            for _ in range(5):
                await _step(cam, "camera", "get_power", {}, pause / 3)
            print(f"  camera link: {cam.health.garbage_bytes} bytes of noise skipped, online={cam.health.online}")
    return 0
