"""One service per configured device: polling, state reports, offline alarms, and calls."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from agent.alarms import Alarms
from agent.commands.table import Failed, Rejected
from agent.config.site import SIM, DeviceConfig
from contract import DeviceState, now_iso
from drivers.device import Health, Result
from drivers.driver import Driver, MediaDriver, PollsSoon, open_driver, simulated
from drivers.errors import ArgumentError, DeviceError, DeviceRejected, error_code

log = logging.getLogger(__name__)

StateSink = Callable[[DeviceState], Awaitable[None]]
# Failed rounds in a row before `device_offline` is raised: a device flooding its line loses one
# poll now and then, and an alarm raised and cleared on every other poll is noise, not news.
OFFLINE_AFTER = 2

# A device's reported fault level -> the alarm's severity.
FAULT_SEVERITY = {"warning": "warning", "error": "critical"}


class DeviceService:
    """Keeps one device polled and its state reported; runs commands on it."""

    def __init__(self, config: DeviceConfig, on_state: StateSink, alarms: Alarms) -> None:
        """Nothing opens until `run`."""
        self.config = config
        self.on_state = on_state
        self.alarms = alarms
        self.device: Driver | None = None
        self._last: DeviceState | None = None
        self._failed = 0  # failed rounds in a row
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def id(self) -> str:
        """The device id from the config."""
        return self.config.id

    def state(self) -> DeviceState:
        """The last known state (offline until the first poll)."""
        return self._last or DeviceState(self.id, False, now_iso(), {}, "not polled yet")

    async def run(self) -> None:
        """Open (starting the simulator for ``sim``), then poll until cancelled."""
        self._loop = asyncio.get_running_loop()
        async with contextlib.AsyncExitStack() as stack:
            address, profile = self.config.address, self.config.profile
            if address == SIM:
                address = await stack.enter_async_context(simulated(profile, lambda line: log.debug("%s", line)))
            self.device = open_driver(profile, address, device_id=self.id, poll_interval=self.config.poll_s)
            stack.push_async_callback(self.device.close)
            await self.device.run(self.report)

    async def call(self, command: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """Run one driver command; Rejected for bad arguments, Failed when the device fails."""
        if self.device is None:
            raise self.not_started()
        try:
            result: Result = await self.device.call(command, args)
        except ArgumentError as exc:
            raise self.refusal(exc) from exc
        except DeviceError as exc:
            await self.report(self.device.health)
            raise self.failure(exc) from exc
        if isinstance(self.device, PollsSoon):
            self.device.poll_soon()  # its poll loop polls and reports the new state next, off this round trip
        else:
            with contextlib.suppress(DeviceError):
                await self.device.poll()  # report the new state now, not at the next poll
            await self.report(self.device.health)
        return {"device": self.id, "reply": result.kind, **result.fields}

    async def stream_uri(self, selector: str = "") -> str:
        """The RTSP URI of this camera's media profile `selector` (``main``, ``sub``, a token), asked now."""
        media = self._media()
        try:
            return await media.stream_uri(selector)
        except ArgumentError as exc:
            raise self.refusal(exc) from exc
        except DeviceError as exc:
            await self.report(self._health())
            raise self.failure(exc) from exc

    def stream_uri_soon(self, selector: str = "") -> concurrent.futures.Future[str]:
        """`stream_uri` from another thread (a source's reader): a future of the URI."""
        loop = self._loop
        if loop is None or loop.is_closed():
            failed: concurrent.futures.Future[str] = concurrent.futures.Future()
            failed.set_exception(self.not_started())
            return failed
        return asyncio.run_coroutine_threadsafe(self.stream_uri(selector), loop)

    async def snapshot(self, selector: str = "", max_bytes: int = 8 * 1024 * 1024) -> bytes:
        """A still picture from this camera (its own JPEG); Failed when it cannot give one."""
        media = self._media()
        try:
            return await media.snapshot(selector, max_bytes)
        except ArgumentError as exc:
            raise self.refusal(exc) from exc
        except DeviceError as exc:
            await self.report(self._health())
            raise self.failure(exc) from exc

    def not_started(self) -> Failed:
        """The device service has not opened its device yet."""
        return Failed(f"{self.id}: not started yet", code="device_starting", params={"device": self.id})

    def refusal(self, error: ArgumentError) -> Rejected:
        """A request the driver refused before sending it, worded ``device_argument``."""
        return Rejected(f"{self.id}: {error}", code=error_code(error), params={"device": self.id})

    def failure(self, error: DeviceError) -> Failed:
        """A device that failed a request: its code (``device_no_reply`` …), the device and its own reason."""
        params: dict[str, object] = {"device": self.id}
        if isinstance(error, DeviceRejected):
            params["reason"] = str(error.code)  # the device's own error code (PJLink's unavailable_time)
        return Failed(f"{self.id}: {error}", code=error_code(error), params=params)

    def _media(self) -> MediaDriver:
        if self.device is None:
            raise self.not_started()
        if not isinstance(self.device, MediaDriver):
            why = f"{self.id} ({self.config.profile.id}) serves no video of its own (an onvif camera does)"
            raise Rejected(why, code="device_unsupported", params={"device": self.id, "command": "camera.snapshot"})
        return self.device

    def _health(self) -> Health:
        return self.device.health if self.device is not None else Health()

    async def report(self, health: Health) -> None:
        """After each poll or call: publish a changed state; `device_offline` after OFFLINE_AFTER failures in a row."""
        error = "" if health.online else health.last_error
        code = health.error_code if error else ""
        state = DeviceState(self.id, health.online, now_iso(), dict(health.state), error, code)
        last = self._last
        self._last = state
        self._failed = 0 if health.online else self._failed + 1
        if health.online:
            self.alarms.clear("device_offline", self.id)
            self._state_alarms(state.state)
        elif self._failed >= OFFLINE_AFTER and error:  # no error: never asked (a panel with no status query)
            params = {"device": self.id, "code": code or "device_failed"}
            self.alarms.raise_("device_offline", "warning", f"{self.id} does not answer: {error}", self.id, params)
        now = (state.online, dict(state.state), error, code)
        if last is None or (last.online, dict(last.state), last.error, last.code) != now:
            await self.on_state(state)

    def _state_alarms(self, state: Mapping[str, Any]) -> None:
        """Alarms a device's own report raises and clears: ``<part>_status`` faults, lamp hours.

        A projector's error status (PJLink ERST: fan, lamp, temperature, cover, filter, other)
        comes as ``fan_status = "warning" | "error" | "ok"``; each part is its own alarm
        ``fault_<part>`` (a warning is a warning, an error critical).  ``lamp_hours`` at or past
        the device's `lamp_hours_limit` raises ``lamp_end_of_life``.  Each clears when its
        condition goes.
        """
        for key, value in state.items():
            if not key.endswith("_status") or not isinstance(value, str):
                continue
            part = key.removesuffix("_status")
            code = f"fault_{part}"
            if value in FAULT_SEVERITY:
                message = f"{self.id}: {part} {value}"
                self.alarms.raise_(code, FAULT_SEVERITY[value], message, self.id, {"part": part, "level": value})
            else:
                self.alarms.clear(code, self.id)
        hours, limit = state.get("lamp_hours"), self.config.lamp_hours_limit
        if isinstance(hours, int) and not isinstance(hours, bool):
            if hours >= limit:
                message = f"{self.id}: lamp at {hours} h (limit {limit} h): order a spare"
                self.alarms.raise_("lamp_end_of_life", "warning", message, self.id, {"hours": hours, "limit": limit})
            else:
                self.alarms.clear("lamp_end_of_life", self.id)
