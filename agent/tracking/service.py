"""One tracking camera as an agent service: pictures in, camera commands and director cues out.

The analysis (OpenCV) runs in a worker thread, one picture at a time at ``fps``, on the newest
frame of the configured source (older ones are skipped, never queued).  Its commands go to the
camera's `DeviceService`, each within a deadline; a camera that fails a command costs that
command (counted, logged at most once a minute), never the service.  A person pressing the
camera's buttons (a ``camera.*`` command on the same camera) pauses tracking for
``manual_pause_s``; `disable` stops the camera where it is, `enable` sends it home to search.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agent.commands.table import Failed, Rejected
from agent.config.tracking import TrackingConfig
from agent.devices import DeviceService
from agent.sources import SourceService

if TYPE_CHECKING:
    from streaming.director import Director
    from streaming.source import Source
    from streaming.tracking.follow import PtzCommand
    from streaming.tracking.standing import StudentsLoop
    from streaming.tracking.teacher import TeacherLoop

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 5.0
WAIT_FRAME_S = 1.0
LOG_EVERY_S = 60.0
# The room's commands that move a camera (a snapshot or saving a preset leaves it where it is).
DRIVING = frozenset({"camera.move", "camera.stop", "camera.zoom", "camera.preset.recall", "camera.home"})
Cue = Callable[[str, bool], None]


class TrackingService:
    """Auto-tracking for one camera (see the module's docstring)."""

    def __init__(
        self,
        config: TrackingConfig,
        device: DeviceService,
        source: Source,
        *,
        cue: Cue = lambda name, on: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Nothing runs until `run`; `cue` tells the director (``student standing``, ``teacher writing``)."""
        from agent.tracking.build import build_loop
        from streaming.tracking.optics import field_ranges

        self.config = config
        self.device = device
        self.source = source
        self.cue = cue
        self.clock = clock
        self.loop: TeacherLoop | StudentsLoop = build_loop(config, field_ranges(device.config.profile))
        self.enabled = config.enabled
        self.paused_until = 0.0
        self.errors = 0
        self.last_error = ""
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._started = False  # the first picture after (re)enabling sends the camera home
        self._logged = 0.0
        self._cues: dict[str, bool] = {}
        self._release: list[PtzCommand] = []  # to send on the next turn of the loop (stop our own zoom)

    @property
    def camera(self) -> str:
        """The tracking camera's device id."""
        return self.config.camera

    async def run(self) -> None:
        """Analyse and steer until cancelled; the camera is stopped on the way out."""
        from agent.tracking.build import aim_simulator

        if self.device.simulator is not None:
            aim_simulator(self.config, self.device.simulator)
        last = -1
        try:
            while True:
                if self._release:
                    async with self._lock:
                        release, self._release = self._release, []
                        await self._send(release)
                if not self.enabled or self.clock() < self.paused_until:
                    self._wake.clear()
                    wait = max(0.05, self.paused_until - self.clock()) if self.enabled else None
                    await _wait(self._wake, wait)
                    continue
                started = self.clock()
                frame = await asyncio.to_thread(self.source.wait_newer, last, WAIT_FRAME_S)
                if frame is None or frame.index == last:
                    continue
                last = frame.index
                await self._step(frame.image, frame.captured)
                await asyncio.sleep(max(0.0, 1.0 / self.config.fps - (self.clock() - started)))
        finally:
            await self._off()

    async def _step(self, image: Any, captured: float) -> None:
        async with self._lock:
            if not self.enabled or self.clock() < self.paused_until:
                return
            commands: list[PtzCommand] = []
            if not self._started:
                self._started = True
                commands += self._go_home(captured)
            commands += await asyncio.to_thread(self.loop.feed, image, captured)
            await self._send(commands)
            self._publish_cues()

    def _go_home(self, now: float) -> list[PtzCommand]:
        from streaming.tracking.teacher import TeacherLoop

        if isinstance(self.loop, TeacherLoop):
            return self.loop.go_home(now)
        return self.loop.halt()  # the student camera waits at home for someone to stand

    async def enable(self) -> dict[str, Any]:
        """Switch tracking on: the camera goes home and searches (``tracking.enable``)."""
        async with self._lock:
            self.enabled, self._started, self.paused_until = True, False, 0.0
            self._wake.set()
        log.info("tracking %s: on", self.camera)
        return self.status()

    async def disable(self) -> dict[str, Any]:
        """Switch tracking off: the camera stops where it is, cues go off (``tracking.disable``)."""
        async with self._lock:
            self.enabled = False
            self._wake.set()
            await self._send(self._halt())
            self._publish_cues(off=True)
        log.info("tracking %s: off", self.camera)
        return self.status()

    def manual(self, command: str = "") -> None:
        """Someone drove the camera by hand (`command`): leave it to them for ``manual_pause_s``.

        A zoom tracking had started is stopped (unless they zoomed themselves); their pan is theirs.
        """
        if not self.enabled or self.config.manual_pause_s <= 0:
            return
        self.paused_until = self.clock() + self.config.manual_pause_s
        self._started = True  # after the pause, carry on from where they left the camera
        release = self.loop.resume()
        if command != "camera.zoom":
            self._release += release
        self._publish_cues(off=True)
        self._wake.set()

    def _halt(self) -> list[PtzCommand]:
        from streaming.tracking.teacher import TeacherLoop

        if isinstance(self.loop, TeacherLoop):
            return self.loop.halt(self.clock())
        return self.loop.halt()

    async def _off(self) -> None:
        """On the way out: stop the camera (best effort, within the deadline) and clear the cues."""
        self._publish_cues(off=True)
        if self.enabled:
            try:
                async with asyncio.timeout(CALL_TIMEOUT_S):
                    await self._send(self._halt(), quiet=True)  # the camera may be stopping too
            except TimeoutError:
                pass

    async def _send(self, commands: list[PtzCommand], *, quiet: bool = False) -> None:
        for command in commands:
            try:
                async with asyncio.timeout(CALL_TIMEOUT_S):
                    await self.device.call(command.name, command.kwargs)
            except (Failed, Rejected, TimeoutError) as exc:
                self.errors += 1
                self.last_error = f"{command}: {exc or 'no answer in time'}"
                if not quiet and self.clock() - self._logged >= LOG_EVERY_S:
                    self._logged = self.clock()
                    log.warning("tracking %s: %s (%d failed so far)", self.camera, self.last_error, self.errors)

    def _publish_cues(self, *, off: bool = False) -> None:
        for name, on in self.loop_cues().items():
            on = on and not off
            if self._cues.get(name) != on:
                self._cues[name] = on
                self.cue(name, on)

    def loop_cues(self) -> dict[str, bool]:
        """The director cues this camera's loop holds now."""
        from streaming.tracking.teacher import TeacherLoop

        if isinstance(self.loop, TeacherLoop):
            return {"teacher writing": self.loop.status.writing}
        return {"student standing": self.loop.cue}

    def snapshot(self) -> bytes | None:
        """The analysed picture now as JPEG, with the zones (or seat groups) and the target drawn (blocking)."""
        from agent.tracking.build import overlay

        frame = self.source.latest()
        if frame is None:
            return None
        return overlay(self.loop, frame.image)

    def status(self) -> dict[str, Any]:
        """For telemetry and the page: on/off, paused, what the loop sees, failed commands."""
        paused = max(0.0, self.paused_until - self.clock())
        out: dict[str, Any] = {
            "camera": self.camera,
            "role": self.config.role,
            "enabled": self.enabled,
            "paused_s": round(paused, 1),
            **self.loop.status.to_dict(),
            "errors": self.errors,
        }
        if not self.enabled:
            out["state"] = "off"
        elif paused:
            out["state"] = "paused"
        return out


async def _wait(event: asyncio.Event, timeout: float | None) -> None:
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        pass


def build_tracking(
    configs: Sequence[TrackingConfig],
    devices: Mapping[str, DeviceService],
    sources: Mapping[str, SourceService],
    director: Director | None,
) -> dict[str, TrackingService]:
    """A service per ``[[tracking]]`` table, its cues wired to the recording's director (if it has one)."""

    def cue(name: str, on: bool) -> None:
        if director is not None:
            director.set_cue(name, on)

    return {
        t.camera: TrackingService(t, devices[t.camera], sources[t.source].source, cue=cue)
        for t in configs
        if t.camera in devices and t.source in sources
    }


def manual_camera(services: Mapping[str, TrackingService], command: str, args: Any, status: str) -> None:
    """A command that drove a tracking camera pauses its tracking (a person took over)."""
    if command in DRIVING and status == "succeeded" and isinstance(args, Mapping):
        service = services.get(str(args.get("device", "")))
        if service is not None:
            service.manual(command)
