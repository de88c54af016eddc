"""The room's commands: panel.*, camera.*, agent.* mapped onto the devices' shared vocabulary."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Mapping
from typing import Any

from agent.commands.table import Arg, CommandDef, CommandTable, Failed, Rejected
from agent.devices import DeviceService
from contract import now_iso
from contract.limits import for_kind
from drivers.profile_model import DISPLAY_KINDS

DIRECTIONS = ("up", "down", "left", "right", "upleft", "upright", "downleft", "downright")
# A snapshot's JPEG, base64 in a reply, leaves this much of the contract's reply size for the rest.
REPLY_HEADROOM = 4 * 1024


class RoomCommands:
    """Builds the command table for one room's devices."""

    def __init__(
        self,
        devices: Mapping[str, DeviceService],
        *,
        version: str,
        restart_service: Callable[[str], None],
        services: Callable[[], list[str]],
    ) -> None:
        """`restart_service` and `services` come from the supervisor."""
        self.devices = devices
        self.version = version
        self.restart_service = restart_service
        self.services = services
        self.started = time.monotonic()

    def _ids(self, *kinds: str) -> Callable[[], tuple[str, ...]]:
        return lambda: tuple(d.id for d in self.devices.values() if d.config.kind in kinds)

    def table(self) -> CommandTable:
        """Every command the room accepts."""
        table = CommandTable()
        panel = Arg(
            "device", choices=self._ids(*DISPLAY_KINDS), doc="a display's or projector's id from the site config"
        )
        camera = Arg("device", choices=self._ids("camera"), doc="a camera's id from the site config")
        on = Arg("on", "bool")
        table.add(CommandDef("panel.power", (panel, on), self._panel_power, "switch a panel on or to standby"))
        table.add(CommandDef("panel.input", (panel, Arg("source")), self._panel_input, "choose a panel's input"))
        table.add(CommandDef("panel.volume", (panel, Arg("level", "int", min=0, max=100)), self._panel_volume))
        table.add(CommandDef("panel.mute", (panel, on), self._panel_mute))
        preset = Arg("preset", "int", min=0, max=255)
        table.add(CommandDef("camera.preset.recall", (camera, preset), self._preset_recall))
        table.add(CommandDef("camera.preset.save", (camera, preset), self._preset_save))
        speed = Arg("speed", "int", required=False, min=1, max=24, doc="pan and tilt speed (default 8)")
        table.add(CommandDef("camera.move", (camera, Arg("direction", choices=DIRECTIONS), speed), self._move))
        table.add(CommandDef("camera.stop", (camera,), self._stop))
        table.add(CommandDef("camera.zoom", (camera, Arg("direction", choices=("tele", "wide", "stop"))), self._zoom))
        table.add(CommandDef("camera.home", (camera,), self._home, "send a camera to its home position"))
        stream = Arg("stream", required=False, doc="main (default), sub or a media profile token")
        table.add(CommandDef("camera.snapshot", (camera, stream), self._snapshot, "a still from an onvif camera"))
        table.add(CommandDef("agent.ping", (), self._ping, "is the agent alive; its version and uptime"))
        service = Arg("service", choices=lambda: tuple(self.services()))
        table.add(CommandDef("agent.restart_service", (service,), self._restart, "restart one of the agent's services"))
        return table

    async def _call(self, args: Mapping[str, Any], command: str, **driver_args: object) -> dict[str, Any]:
        device = self.devices[args["device"]]
        profile = device.config.profile
        if command not in profile.commands:
            why = " (its source publishes no code for it)" if command in profile.provenance.unsourced else ""
            params = {"device": device.id, "command": command}
            why = f"{device.id} ({profile.id}) cannot {command}{why}"
            raise Rejected(why, code="device_unsupported", params=params)
        return await device.call(command, driver_args)

    async def _panel_power(self, args: Mapping[str, Any]) -> dict[str, Any]:
        return await self._call(args, "power_on" if args["on"] else "power_off")

    async def _panel_input(self, args: Mapping[str, Any]) -> dict[str, Any]:
        return await self._call(args, "set_input", source=args["source"])

    async def _panel_volume(self, args: Mapping[str, Any]) -> dict[str, Any]:
        return await self._call(args, "set_volume", level=args["level"])

    async def _panel_mute(self, args: Mapping[str, Any]) -> dict[str, Any]:
        return await self._call(args, "mute_on" if args["on"] else "mute_off")

    async def _preset_recall(self, args: Mapping[str, Any]) -> dict[str, Any]:
        return await self._call(args, "preset_recall", n=args["preset"])

    async def _preset_save(self, args: Mapping[str, Any]) -> dict[str, Any]:
        return await self._call(args, "preset_set", n=args["preset"])

    async def _move(self, args: Mapping[str, Any]) -> dict[str, Any]:
        speed = args.get("speed", 8)
        fields = self.devices[args["device"]].config.profile.fields
        # One speed for both axes, within what each axis of this camera accepts.
        pan, tilt = (min(speed, fields[n].max) if n in fields else speed for n in ("pan_speed", "tilt_speed"))
        return await self._call(args, "move", direction=args["direction"], pan_speed=pan, tilt_speed=tilt)

    async def _stop(self, args: Mapping[str, Any]) -> dict[str, Any]:
        return await self._call(args, "stop")

    async def _zoom(self, args: Mapping[str, Any]) -> dict[str, Any]:
        command = {"tele": "zoom_tele", "wide": "zoom_wide", "stop": "zoom_stop"}[args["direction"]]
        return await self._call(args, command)

    async def _home(self, args: Mapping[str, Any]) -> dict[str, Any]:
        return await self._call(args, "home")

    async def _snapshot(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """The camera's still, scaled and re-encoded to fit a reply: ``jpeg`` (base64), ``width``, ``height``."""
        from streaming.still import StillError, fit_jpeg  # OpenCV loads only when a still is asked for

        device = self.devices[args["device"]]
        image = await device.snapshot(args.get("stream", ""))
        budget = (for_kind("reply").size - REPLY_HEADROOM) * 3 // 4  # base64 makes 4 bytes of 3
        try:
            still = await asyncio.to_thread(fit_jpeg, image, budget)
        except StillError as exc:
            raise Failed(f"{device.id}: snapshot: {exc}") from exc
        jpeg = base64.b64encode(still.jpeg).decode("ascii")
        return {"device": device.id, "jpeg": jpeg, "width": still.width, "height": still.height, "ts": now_iso()}

    async def _ping(self, args: Mapping[str, Any]) -> dict[str, Any]:
        return {"pong": True, "version": self.version, "uptime_s": round(time.monotonic() - self.started, 1)}

    async def _restart(self, args: Mapping[str, Any]) -> dict[str, Any]:
        try:
            self.restart_service(args["service"])
        except KeyError:
            raise Failed(f"no service {args['service']!r}", code="service_unknown", params=dict(args)) from None
        return {"restarted": args["service"]}
