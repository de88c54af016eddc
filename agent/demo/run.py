"""The demo: devices first (a simulated panel and PTZ camera driven directly), then the fleet."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sys
import threading
import time
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

from drivers.device import Device
from drivers.errors import ArgumentError, DeviceError
from drivers.profile import find_profile
from drivers.sim.model import Simulator
from drivers.sim.runner import Faults, SimServer
from drivers.transport import make_transport
from websession.serve import BindError, bind_error_in

PANEL = "samsung-mdc"
CAMERA = "sony-visca"
STOP_GRACE_S = 60.0  # a loaded PC may take a while to close two rooms' media and the centre


def main(args: argparse.Namespace) -> int:
    """``classroom-agent demo``: until ``--duration``, Ctrl-C or SIGTERM; then everything it started is stopped."""
    host, _, port = args.http.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ArgumentError(f"--http {args.http!r}: expected HOST:PORT")
    http = (host.strip("[]"), int(port))
    change = "; choose another with --http HOST:PORT (without it the demo takes a free port)"
    if failure := _unusable(*http):  # said at once, not after the walkthrough
        raise ArgumentError(f"--http: {failure}{change}")
    demo = run(args.pause, data=Path(args.data), broker_url=args.broker, http=http, duration=args.duration)
    try:
        return _leave(asyncio.run(_until_stopped(demo)))
    except BrokenPipeError:  # whoever read our output (a pipe to tee) is gone: Ctrl-C reached it too
        _mute_stdout()
        return 0
    except Exception as exc:  # only a port that cannot be listened on is translated; the rest goes on up
        if (failure := bind_error_in(exc)) is None:
            raise
        raise ArgumentError(f"--http: {failure}{change}") from None


def _leave(status: int, grace_s: float = 15.0) -> int:
    """`status`, once the worker threads the rooms started have ended; else name them and exit at once.

    Python waits for every such thread before it exits: one stuck in a device or encoder would keep
    the demo alive after it said it stopped.
    """
    deadline = time.monotonic() + grace_s
    workers = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    if stuck := [t.name for t in workers if t.is_alive()]:
        print(f"classroom-agent: threads still running after the demo stopped: {', '.join(stuck)}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status or 1)
    return status


def _unusable(host: str, port: int) -> BindError | None:
    """Why the dashboard could not listen on host:port now (port 0: any free one will do)."""
    if port == 0:
        return None
    try:
        with socket.create_server((host, port)):
            return None
    except OSError as exc:
        return BindError(host, port, exc.errno, exc.strerror or str(exc))


async def _until_stopped(demo: Coroutine[Any, Any, int]) -> int:
    """Run the demo until it ends or SIGINT/SIGTERM arrives; then cancel it and wait until all it started is gone."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(demo)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        _say("\n正在停止演示 (stopping the demo) ...")
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=STOP_GRACE_S)
        if not done:
            print(f"classroom-agent: the demo did not stop within {STOP_GRACE_S:g} s", file=sys.stderr)
            for other in asyncio.all_tasks():
                if other is not asyncio.current_task():
                    print(f"  still running: {other.get_name()} {_awaiting(other.get_coro())}", file=sys.stderr)
            return 1
        with contextlib.suppress(asyncio.CancelledError):
            task.result()
        _say("演示已停止 (demo stopped): its broker, centre and classrooms have all exited")
        return 0
    finally:
        stopping.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _awaiting(coro: Any) -> str:
    """Where a stuck task waits: its chain of awaits, innermost last."""
    chain: list[str] = []
    while coro is not None and len(chain) < 12:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
        if frame is not None:
            chain.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
    return " > ".join(chain)


def _say(text: str) -> None:
    """Print a line; when nobody reads our output any more, keep quiet instead of failing."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        _mute_stdout()


def _mute_stdout() -> None:
    """Point stdout at /dev/null, so that Python's last flush at exit does not complain about the broken pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


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
