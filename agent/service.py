"""The agent service: config in, every service supervised, reporting to the centre."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import signal
import socket
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from agent import outbox
from agent.alarms import Alarms
from agent.broadcast.service import BroadcastService
from agent.commands.broadcast import add_broadcast_commands
from agent.commands.lesson import add_lesson_commands
from agent.commands.power import add_power_commands
from agent.commands.record import add_record_commands
from agent.commands.room import RoomCommands
from agent.commands.schedule import Schedule, TimetableStore, register_schedule_commands
from agent.commands.table import CommandTable, Outcome
from agent.commands.tracking import add_tracking_commands
from agent.commands.watch import add_watch_commands
from agent.config.site import SiteConfig
from agent.devices import DeviceService
from agent.health import HealthService
from agent.lesson.media import LessonMedia
from agent.lesson.pictures import RecordingSources
from agent.lesson.service import LessonService
from agent.lesson.web import lesson_web_part
from agent.link import AgentLink
from agent.power.service import PowerService
from agent.recording.delivery import Deliveries, may_delete
from agent.recording.service import RecordingService, timetable_lesson_on
from agent.recording.sidecar import Room
from agent.recording.upload import Uploader
from agent.sources import SourceService, make_source
from agent.store import AgentStore
from agent.supervisor import Supervisor
from agent.timetable.model import is_timetable_main
from agent.timetable.scheduler import SchedulerService
from agent.tracking.service import build_tracking, manual_camera
from agent.tracking.virtual import simulators
from agent.tracking.web import tracking_web_part
from agent.web.api import WebPart, create_api, serve
from agent.web.page import page_part
from contract import Command, CommandReply, DeviceInfo, DeviceState, Info, SourceInfo, Topics, for_audit
from contract.rtc import RtcMessage
from drivers.profile_model import DISPLAY_KINDS
from hosting import package_version

log = logging.getLogger(__name__)



def version() -> str:
    """The installed package's version (the source tree's when it is not installed)."""
    return package_version()


class Agent:
    """One classroom's agent: devices, health, the central link, the command table, the local API."""

    def __init__(self, config: SiteConfig) -> None:
        """Wire everything in dependency order; nothing runs until `run`.

        Every callback handed out reads only attributes that exist by then.  The link comes first
        (alarms, devices and telemetry report through it); what it reads back (info, device states,
        the command table, the lesson) starts empty here and is filled below.
        """
        self.config = config
        self.version = version()
        self.store = AgentStore(config.db_path)
        self.schedule = Schedule(TimetableStore(config.db_path), config.timetable)
        self.devices: dict[str, DeviceService] = {}
        self.sources: dict[str, SourceService] = {}
        self.table = CommandTable()
        self.lesson: LessonService | None = None
        self.link = AgentLink(
            config.broker,
            Topics(config.site, config.agent_id),
            self.store,
            version=self.version,
            info=self.info,
            states=self._device_states,
            run_command=self._run_command,
            on_rtc=self._on_rtc if config.lesson else None,
        )
        self.alarms = Alarms(self.link.send_event)
        self.devices.update((d.id, DeviceService(d, self.link.publish_state, self.alarms)) for d in config.devices)
        size, fps = _picture(config)
        sim = simulators(self.devices)
        self.sources.update(
            (
                s.id,
                SourceService(
                    s.id,
                    s.url,
                    make_source(s.url, s.id, size, fps, stream_uris=self._stream_uri, simulator=sim),
                    self.alarms,
                ),
            )
            for s in config.sources
        )
        self.supervisor = Supervisor(self.alarms, config.agent_id)
        self._add_room_commands()
        upload = config.upload
        self.uploader = Uploader(upload, config.agent_id, self.store, self.alarms) if upload and upload.url else None
        self.deliveries = (
            Deliveries(
                upload.targets,
                Room(config.site, config.agent_id, config.room),
                self.store,
                self.alarms,
                timetable=self.schedule.current,
            )
            if upload and upload.targets
            else None
        )
        self.recording = self._build_recording()
        self.tracking = build_tracking(config.tracking, self.devices, self.sources, self.recording.director)
        add_tracking_commands(self.table, self.tracking)
        self.broadcast = self._build_broadcast()
        # Features that serve pages or media on the local API add their routes here.
        self.web_parts: list[WebPart] = [page_part(self.table, self.status, config, self.schedule.current)]
        if self.tracking:
            self.web_parts.append(tracking_web_part(self.tracking))
        self.scheduler = SchedulerService(
            self.schedule.current,
            lambda name, args: self.table.execute(name, args, by="timetable", door="scheduler"),
            clock=lambda: datetime.now(UTC),
            is_recording=self._recording_lesson,
            is_live=self._leading_lesson,
            is_broadcasting=self.broadcast.target,
            displays=[d.id for d in config.devices if d.kind in DISPLAY_KINDS],
        )
        link = self.link
        self.power = PowerService(config.power, self.schedule.current, link.publish_info, lambda: link.connected)
        add_power_commands(self.table, self.power, config.power, self.recording.telemetry, self._lesson_status)
        register_schedule_commands(self.table, self.schedule, on_change=self._timetable_changed)
        self.health = HealthService(
            config.disk_path,
            config.telemetry_s,
            config.disk_low_percent,
            self.alarms,
            self.link.publish_telemetry,
            extra=self._telemetry_extra,
        )
        self._supervise()

    def _add_room_commands(self) -> None:
        """The room's device and agent commands, every one audited."""
        room = RoomCommands(
            self.devices, version=self.version, restart_service=self.supervisor.restart, services=self.supervisor.names
        )
        for command in room.table().commands.values():
            self.table.add(command)
        self.table.audit = self._audit

    def _build_recording(self) -> RecordingService:
        """The recording service and its commands."""
        own = {i: s.source for i, s in self.sources.items()}
        # A recording may show lesson pictures (remote:1, ...): looked up in the lesson on every frame.
        # Without [lesson] there are none, and record.start rejects such references.
        recordable = (
            RecordingSources(own, lambda: self.lesson.classrooms() if self.lesson is not None else [])
            if self.config.lesson
            else own
        )
        schedule = self.schedule
        recording = RecordingService(
            self.config.recording,
            recordable,
            self.store,
            self.alarms,
            lesson_on=lambda row: timetable_lesson_on(schedule.current(), datetime.now(UTC), row),
            may_delete=may_delete(self.config.upload, self.deliveries),
            broadcast=self.config.broadcast,
        )
        add_record_commands(self.table, recording)
        return recording

    def _build_broadcast(self) -> BroadcastService:
        """The broadcast service and its commands; it shares the recording's programmes (one encoder per picture)."""
        recording = self.recording
        broadcast = BroadcastService(
            self.config.broadcast, self.config.recording, recording.sources, recording.programmes, self.alarms
        )
        add_broadcast_commands(self.table, broadcast)
        return broadcast

    def _supervise(self) -> None:
        """Every service under the supervisor, in the order they start."""
        self.supervisor.add("link", self.link.run, stop_last=True)  # the others' goodbyes still go out
        self.supervisor.add("health", self.health.run)
        config = self.config
        trimmed = partial(outbox.keep_trimmed, self.store, config.outbox_max_age_h, config.outbox_max_rows, self.alarms)
        self.supervisor.add("outbox", trimmed)
        for device in self.devices.values():
            self.supervisor.add(f"device.{device.id}", device.run)
        for source in self.sources.values():
            self.supervisor.add(f"source.{source.id}", source.run)
        self.supervisor.add("recording", self.recording.run)
        self.supervisor.add("broadcast", self.broadcast.run)
        self.lesson = self._build_lesson()  # before the scheduler: booted inside a live lesson, it starts it at once
        self.supervisor.add("scheduler", self.scheduler.run)
        self.supervisor.add("power", self.power.run)
        if self.uploader is not None:
            self.supervisor.add("upload", self.uploader.run)
        if self.deliveries is not None:
            self.supervisor.add("delivery", self.deliveries.run)
        for camera, tracking in self.tracking.items():
            self.supervisor.add(f"tracking.{camera}", tracking.run)

    def _build_lesson(self) -> LessonService | None:
        """The lesson service, its commands and its web part, only with ``[lesson]`` (media loads lazily)."""
        lesson = self.config.lesson
        if lesson is None:
            return None
        sources = {i: s.source for i, s in self.sources.items()}
        kinds = {i: s.kind for i, s in self.sources.items()}
        service = LessonService(
            lesson,
            agent_id=self.config.agent_id,
            site=self.config.site,
            room=self.config.room,
            media=lambda: LessonMedia(lesson, sources, kinds),
            send=self.link.send_rtc,
            alarms=self.alarms,
            timetable_main=self._timetable_main,
        )
        add_lesson_commands(self.table, service, lambda: tuple(self.sources))
        self.supervisor.add("lesson", service.run)
        self.web_parts.append(lesson_web_part(service, allowed_origins=self.config.http_allowed_origins))
        add_watch_commands(self.table, self.web_parts, lambda: (*self.sources, *service.pictures()))
        return service

    def _on_rtc(self, site: str, agent: str, message: RtcMessage) -> None:
        if self.lesson is not None:
            self.lesson.on_rtc(site, agent, message)

    def _timetable_main(self, site: str, agent: str) -> bool:
        return is_timetable_main(self.schedule.current(), datetime.now(UTC), site, agent)

    def _lesson_status(self) -> dict[str, Any] | None:
        return self.lesson.status() if self.lesson is not None else None

    def _timetable_changed(self) -> None:
        self.scheduler.changed()
        self.power.changed()

    def _leading_lesson(self) -> str | None:
        status = self.lesson.status() if self.lesson is not None else {}
        return str(status["id"]) if status.get("active") and status.get("role") == "main" else None

    def _recording_lesson(self) -> str | None:
        now = self.recording.telemetry()
        return str(now["lesson"]) if now["active"] else None

    def _stream_uri(self, device: str, selector: str) -> concurrent.futures.Future[str]:
        """An onvif source's RTSP URI, asked of its camera's device service (from the source's reader thread)."""
        return self.devices[device].stream_uri_soon(selector)

    def _device_states(self) -> list[DeviceState]:
        return [d.state() for d in self.devices.values()]

    def info(self) -> Info:
        """What the centre shows about this room."""
        devices = tuple(
            DeviceInfo(d.id, d.config.kind, d.config.profile.id, d.config.name, d.config.inputs)
            for d in self.devices.values()
        )
        names = {s.id: s.name for s in self.config.sources}
        sources = tuple(SourceInfo(**s.info(), name=names.get(i, "")) for i, s in self.sources.items())
        nics, wake, hours = self.power.report()
        telemetry_s, hostname = self.config.telemetry_s, socket.gethostname()
        return Info(self.config.room, hostname, self.version, devices, telemetry_s, sources, nics, wake, hours)

    def status(self) -> dict[str, Any]:
        """The local API's view of the room."""
        return {
            "agent_id": self.config.agent_id,
            "site": self.config.site,
            "room": self.config.room,
            "version": self.version,
            "broker": {"url": self.config.broker.url, "connected": self.link.connected, "session": self.link.session},
            "devices": [d.state().to_dict() for d in self.devices.values()],
            "alarms": [_alarm(a) for a in self.alarms.open.values()],
            "outbox": self.store.outbox_size(),
            "dropped": self.link.drops.count,  # messages the link dropped for breaking the contract
            "sources": {i: s.health() for i, s in self.sources.items()},
            "recording": self.recording.telemetry(),
            "broadcast": self.broadcast.telemetry(),
            "programmes": self.recording.programmes.stats(),  # the encoders running, each with who takes it
            "upload": self.upload_status(),
            "lesson": self.lesson.status() if self.lesson else None,
            "tracking": [t.status() for t in self.tracking.values()] or None,
        }

    def upload_status(self) -> dict[str, object] | None:
        """``upload``: the centre's upload (pending, current, ...) and ``targets``, each delivery target's state."""
        if self.uploader is None and self.deliveries is None:
            return None
        status: dict[str, object] = self.uploader.telemetry() if self.uploader else {}
        if self.deliveries is not None:
            status["targets"] = self.deliveries.telemetry()
        return status

    def _telemetry_extra(self) -> dict[str, object]:
        states = [d.state() for d in self.devices.values()]
        return {
            "devices_online": sum(s.online for s in states),
            "devices_total": len(states),
            "outbox": self.store.outbox_size(),
            "dropped": self.link.drops.count,  # messages the link dropped for breaking the contract
            "sources": {i: s.health() for i, s in self.sources.items()},
            "recording": self.recording.telemetry(),
            "broadcast": self.broadcast.telemetry(),
            "programmes": self.recording.programmes.stats(),  # the encoders running, each with who takes it
            "upload": self.upload_status(),
            "lesson": self.lesson.status() if self.lesson else None,
            "tracking": [t.status() for t in self.tracking.values()] or None,
        }

    async def _run_command(self, command: Command) -> CommandReply:
        outcome = await self.table.execute(command.name, command.args, by=command.by, door="mqtt")
        reply = CommandReply(command.id, outcome.status, outcome.result, outcome.error, command.name)
        return replace(reply, code=outcome.code, params=outcome.params)

    def _audit(self, name: str, args: Any, by: str, door: str, outcome: Outcome) -> None:
        manual_camera(self.tracking, name, args, outcome.status)  # a hand on the camera pauses its tracking
        message = f"{name} by {by or '?'} via {door}: {outcome.status}"
        audit = {"command": name, "args": for_audit(args), "by": by, "door": door, "status": outcome.status}
        self.alarms.log("command", message, **audit, error=outcome.error)

    def trim_outbox(self) -> int:
        """Keep the outbox within its bounds now (`agent.outbox.trim`)."""
        return outbox.trim(self.store, self.config.outbox_max_age_h, self.config.outbox_max_rows, self.alarms)

    async def run(self) -> None:
        """Run until cancelled; a clean stop publishes ``offline``."""
        api = create_api(self.table, self.status, self.web_parts)
        runner = await serve(api, self.config.http_host, self.config.http_port)
        try:
            await self.supervisor.run()
        finally:
            await runner.cleanup()
            self.store.close()
            self.schedule.store.close()


def _picture(config: SiteConfig) -> tuple[tuple[int, int], float]:
    """The size and rate local sources are drawn or captured at: the recording's, else the lesson cameras'."""
    if config.recording:
        return config.recording.size, config.recording.fps
    if config.lesson:
        camera = config.lesson.video_for("camera", "")
        return camera.size, camera.fps
    return (1280, 720), 25.0


def _alarm(alarm: Any) -> dict[str, Any]:
    return {k: getattr(alarm, k) for k in ("type", "severity", "message", "device", "since")}


STOP_GRACE_S = 15.0


async def run_until_signalled(config: SiteConfig) -> None:
    """Run the agent until SIGTERM or SIGINT, then stop cleanly (publishing ``offline``)."""
    agent = Agent(config)
    task = asyncio.ensure_future(agent.run())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not task.done():
        log.info("stopping")
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=STOP_GRACE_S)
        if not done:
            for other in asyncio.all_tasks():
                if other is not asyncio.current_task():
                    log.error(
                        "still running %.0f s after stop: %s %s",
                        STOP_GRACE_S,
                        other.get_name(),
                        other.get_stack(limit=8),
                    )
            raise SystemExit("classroom-agent: services did not stop in time")
    with contextlib.suppress(asyncio.CancelledError):
        await task
