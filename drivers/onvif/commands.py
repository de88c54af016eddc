"""Each vocabulary command of the onvif profile as the PTZ / device requests it takes.

A handler gets the driver (its PTZ profile, its id), a connected client and the checked
arguments, and returns the fields of its answer.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from drivers.errors import DeviceRejected, GarbageReceived
from drivers.onvif import ptz
from drivers.onvif.client import OnvifClient
from drivers.onvif.media import MediaProfile


class Camera(Protocol):
    """What a handler needs of the driver: its id (for errors) and the PTZ media profile."""

    id: str
    presets: ptz.PresetCache | None  # GetPresets' answer, kept a while: a recall is then one request

    def require_ptz(self, command: str) -> MediaProfile:
        """The PTZ media profile; DeviceRejected when the camera has none."""
        ...


Handler = Callable[[Camera, OnvifClient, Mapping[str, Any]], Awaitable[dict[str, object]]]

# Commands that only ask (their reply is a value); the others make the camera do something.
QUERIES = frozenset({"get_position", "get_presets", "get_info"})
# GetDeviceInformation's fields, by the names the state uses.
_IDENTITY = {"Manufacturer": "make", "Model": "model", "FirmwareVersion": "firmware", "SerialNumber": "serial"}
_MAX_IDENTITY = 64


def identity(answer: object) -> dict[str, object]:
    """GetDeviceInformation's answer as ``make``, ``model``, ``firmware``, ``serial`` (what the camera gave)."""
    data = answer if isinstance(answer, Mapping) else {}
    out: dict[str, object] = {}
    for key, name in _IDENTITY.items():
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            out[name] = " ".join(value.split())[:_MAX_IDENTITY]
    return out


async def _ptz(driver: Camera, client: OnvifClient, command: str, operation: str, **params: Any) -> None:
    token = driver.require_ptz(command).token
    await client.request("ptz", operation, {"ProfileToken": token, **params})


async def _move(driver: Camera, client: OnvifClient, args: Mapping[str, Any]) -> dict[str, object]:
    velocity = ptz.move_velocity(args["direction"], args["pan_speed"], args["tilt_speed"])
    await _ptz(driver, client, "move", "ContinuousMove", Velocity=velocity)
    return {"moving": True}


async def _stop(driver: Camera, client: OnvifClient, args: Mapping[str, Any]) -> dict[str, object]:
    await _ptz(driver, client, "stop", "Stop", PanTilt=True, Zoom=True)
    return {"moving": False}


async def _zoom_stop(driver: Camera, client: OnvifClient, args: Mapping[str, Any]) -> dict[str, object]:
    await _ptz(driver, client, "zoom_stop", "Stop", PanTilt=False, Zoom=True)
    return {}


async def _zoom_tele(driver: Camera, client: OnvifClient, args: Mapping[str, Any]) -> dict[str, object]:
    await _ptz(driver, client, "zoom_tele", "ContinuousMove", Velocity=ptz.zoom_velocity(True, args["speed"]))
    return {"moving": True}


async def _zoom_wide(driver: Camera, client: OnvifClient, args: Mapping[str, Any]) -> dict[str, object]:
    await _ptz(driver, client, "zoom_wide", "ContinuousMove", Velocity=ptz.zoom_velocity(False, args["speed"]))
    return {"moving": True}


async def _home(driver: Camera, client: OnvifClient, args: Mapping[str, Any]) -> dict[str, object]:
    await _ptz(driver, client, "home", "GotoHomePosition")
    return {"preset": None, "moving": True}


async def _zoom_to(driver: Camera, client: OnvifClient, args: Mapping[str, Any]) -> dict[str, object]:
    if not driver.require_ptz("zoom_to").absolute_zoom:
        raise DeviceRejected("zoom_to: the camera offers no absolute zoom", code="unsupported", device=driver.id)
    await _ptz(driver, client, "zoom_to", "AbsoluteMove", Position=ptz.zoom_position(args["position"]))
    return {"moving": True}


async def _goto(driver: Camera, client: OnvifClient, args: Mapping[str, Any]) -> dict[str, object]:
    """AbsoluteMove where the camera has it; else RelativeMove by the distance from where it is now."""
    profile = driver.require_ptz("goto")
    speed = ptz.speed(args["pan_speed"], args["tilt_speed"])
    if profile.absolute:
        await _ptz(
            driver, client, "goto", "AbsoluteMove", Position=ptz.pan_tilt(args["pan"], args["tilt"]), Speed=speed
        )
        return {"preset": None, "moving": True}
    if not profile.relative:
        raise DeviceRejected(
            "goto: the camera offers neither AbsoluteMove nor RelativeMove", code="unsupported", device=driver.id
        )
    now = ptz.read_status(await client.request("ptz", "GetStatus", {"ProfileToken": profile.token}))
    pan, tilt = now.get("pan"), now.get("tilt")
    if not isinstance(pan, int) or not isinstance(tilt, int):
        raise GarbageReceived("goto: GetStatus gave no pan/tilt position to move from", device=driver.id)
    step = ptz.pan_tilt(args["pan"] - pan, args["tilt"] - tilt)
    await _ptz(driver, client, "goto", "RelativeMove", Translation=step, Speed=speed)
    return {"preset": None, "moving": True}


async def _presets(driver: Camera, client: OnvifClient, command: str, *, fresh: bool = False) -> tuple[ptz.Preset, ...]:
    """The camera's presets: as read less than `ptz.PRESETS_KEPT_S` ago, else (or when `fresh`) asked anew."""
    now = time.monotonic()
    cached = driver.presets
    if not fresh and cached is not None and cached.valid(now):
        return cached.presets
    token = driver.require_ptz(command).token
    presets = ptz.read_presets(await client.request("ptz", "GetPresets", {"ProfileToken": token}))
    driver.presets = ptz.PresetCache(presets, now)
    return presets


async def _with_preset(driver: Camera, client: OnvifClient, command: str, n: int, operation: str) -> None:
    """`operation` on preset n; when the camera's presets changed behind our back, read them again once."""
    for fresh in (False, True):
        preset = ptz.preset_for(await _presets(driver, client, command, fresh=fresh), n)
        if preset is None and not fresh:
            continue
        if preset is None:
            raise DeviceRejected(f"{command}: the camera has no preset {n}", code="no_preset", device=driver.id)
        try:
            await _ptz(driver, client, command, operation, PresetToken=preset.token)
        except DeviceRejected as exc:
            if fresh or exc.code != "NoToken":  # ONVIF PTZ: ter:NoToken, the preset token does not exist
                raise
            continue
        return


async def _preset_recall(driver: Camera, client: OnvifClient, args: Mapping[str, Any]) -> dict[str, object]:
    await _with_preset(driver, client, "preset_recall", args["n"], "GotoPreset")
    return {"preset": args["n"], "moving": True}


async def _preset_set(driver: Camera, client: OnvifClient, args: Mapping[str, Any]) -> dict[str, object]:
    """SetPreset named n: over the camera's preset n when it has one, else a new one (the camera picks the token)."""
    existing = ptz.preset_for(await _presets(driver, client, "preset_set", fresh=True), args["n"])
    params: dict[str, Any] = {"PresetName": str(args["n"])}
    if existing is not None:
        params["PresetToken"] = existing.token
    driver.presets = None  # the camera's list changes now
    await _ptz(driver, client, "preset_set", "SetPreset", **params)
    return {"preset": args["n"]}


async def _preset_clear(driver: Camera, client: OnvifClient, args: Mapping[str, Any]) -> dict[str, object]:
    await _with_preset(driver, client, "preset_clear", args["n"], "RemovePreset")
    driver.presets = None
    return {}


async def _get_position(driver: Camera, client: OnvifClient, args: Mapping[str, Any]) -> dict[str, object]:
    token = driver.require_ptz("get_position").token
    return ptz.read_status(await client.request("ptz", "GetStatus", {"ProfileToken": token}))


async def _get_presets(driver: Camera, client: OnvifClient, args: Mapping[str, Any]) -> dict[str, object]:
    presets = await _presets(driver, client, "get_presets", fresh=True)
    return {"presets": [{"token": p.token, "name": p.name} for p in presets]}


async def _get_info(driver: Camera, client: OnvifClient, args: Mapping[str, Any]) -> dict[str, object]:
    return identity(await client.request("devicemgmt", "GetDeviceInformation"))


HANDLERS: Mapping[str, Handler] = {
    "move": _move,
    "stop": _stop,
    "home": _home,
    "zoom_tele": _zoom_tele,
    "zoom_wide": _zoom_wide,
    "zoom_stop": _zoom_stop,
    "zoom_to": _zoom_to,
    "goto": _goto,
    "preset_set": _preset_set,
    "preset_recall": _preset_recall,
    "preset_clear": _preset_clear,
    "get_position": _get_position,
    "get_presets": _get_presets,
    "get_info": _get_info,
}
