"""classroom-central composed: writer, collector, retention and (optionally) the dashboard, one TaskGroup."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from central.collector import Collector
from central.collectors import Helpers, parent_gone
from central.errors import ConfigError
from central.fleetdb import FleetDB
from central.group import QUIET_S
from central.hours import HoursFleet, HoursWatch
from central.live import Changes
from central.live_feed import StoreFeed
from central.retention import LOG_MIN_DAYS, Retention
from central.sender import BrokerLink, CommandSender
from central.store import Location
from central.upload_store import MAX_RECORDING_BYTES, Uploads
from central.wake import Waker, WakeSchedule
from central.writer import BatchWriter
from contract.mqtt import BrokerAddress
from drivers.protocol.wol import WOL_PORT

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)

AppFactory = Callable[..., "web.Application"]  # central.web.create_app(db, changes, sender, uploads=..., waker=...)


def dashboard_factory() -> AppFactory:
    """`central.web.create_app`, imported only when the dashboard is wanted; ConfigError when missing."""
    try:
        from central.web import create_app
    except ImportError as exc:
        raise ConfigError(f"the web dashboard is not available (central.web: {exc}); run without --http") from exc
    return create_app


class Central:
    """The centre's services around one fleet.db: build, then `run` until cancelled, then `close`."""

    def __init__(
        self,
        broker: BrokerAddress,
        db_path: str | Path | Location,
        *,
        retention_days: float = 30.0,
        retention: Retention | None = None,
        retention_every_s: float = 3600.0,
        silence_check_s: float = 0.25,
        version: str = "",
        recordings_dir: str | Path | None = None,
        client_id: str = "",
        max_recording_bytes: int = MAX_RECORDING_BYTES,
        wake_port: int = WOL_PORT,
        group: str = "",
        housekeeping: bool = True,
        replay_quiet_s: float = QUIET_S,
    ) -> None:
        """Open fleet.db and wire writer, collector and sender together (nothing runs yet).

        `group`: share the fleet's topics with the other collectors of that group (`central.group`);
        `housekeeping`: also prune old rows, wake PCs on schedule and raise offline_in_hours (one process
        of a group is enough).

        `client_id`: the MQTT client id of the centre's persistent session (default: the broker user
        name, else ``classroom-central``); one per collector process.

        Uploaded recordings are kept in `recordings_dir` (default: ``recordings`` beside fleet.db).
        `retention` says how long each table is kept (default: `retention_days` of telemetry, the rest
        as `Retention`'s defaults).  Magic packets that wake a room's PC go to UDP `wake_port` (`central.wake`).
        """
        self.db = FleetDB(db_path)
        recordings = recordings_dir or self.db.location.default_recordings()
        try:
            self.uploads = Uploads(self.db.location, recordings, max_size=max_recording_bytes)
        except BaseException:
            self.db.close()
            raise
        self.changes = Changes()
        self.writer = BatchWriter(self.db, self.changes)
        self.feed = StoreFeed(self.db, self.changes)  # what the other processes on the store commit
        self.link = BrokerLink()
        self.sender = CommandSender(self.db, self.writer, self.link, follow_replies=bool(group))
        self.collector = Collector(
            broker,
            self.db,
            self.writer,
            link=self.link,
            sender=self.sender,
            identifier=client_id,
            version=version,
            silence_check_s=silence_check_s,
            group=group,
            replay_quiet_s=replay_quiet_s,
        )
        self._housekeeping = housekeeping
        self.waker = Waker(self.db, self.sender, port=wake_port)
        self.wake_schedule = WakeSchedule(self.db.wake_plans, self.waker)
        self.hours = HoursWatch(HoursFleet(self.db.agents, lambda: self.db.alarms(open_only=True)), self.writer.put)
        self._retention = (retention or Retention(telemetry_days=retention_days)).validate()
        self._retention_every = retention_every_s
        self.http_url = ""
        self.http_ready = asyncio.Event()

    async def run(self, http: tuple[str, int] | None = None) -> None:
        """Run every service until cancelled; the dashboard only when `http` is given.

        The dashboard listens first: a port it cannot have (websession's BindError) ends the run
        before the collector has connected or pruned anything.
        """
        factory = dashboard_factory() if http is not None else None  # fail before anything starts
        runner = await self._listen(factory, *http) if http is not None and factory is not None else None
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.writer.run(), name=f"writer[{self.db.location.name}].flush")
                tg.create_task(self.collector.run(), name="collector[fleet].run")
                if runner is not None:  # the dashboard is live whichever process committed
                    tg.create_task(self.feed.run(), name=f"live[{self.db.location.name}].listen")
                if self._housekeeping:  # once per group: its other collectors only collect
                    tg.create_task(self._retention_loop(), name=f"retention[{self.db.location.name}].prune")
                    tg.create_task(self.wake_schedule.run(), name="wake[fleet].schedule")
                    tg.create_task(self.hours.run(), name="hours[fleet].watch")  # offline_in_hours
        finally:
            if runner is not None:
                await runner.cleanup()

    def close(self) -> None:
        """Close fleet.db (after `run` has ended)."""
        self.uploads.close()
        self.db.close()

    async def _retention_loop(self) -> None:
        for name in self._retention.below_log_minimum():
            log.warning("retention: %s is below the %g days network logs must be kept", name, LOG_MIN_DAYS)
        while True:
            for row in self._retention.rows(datetime.now(UTC)):
                await self.writer.put(row)
            await asyncio.sleep(self._retention_every)

    async def _listen(self, factory: AppFactory, host: str, port: int) -> web.AppRunner:
        from websession.serve import serve_app

        # Headers within 15 s, at most 512 connections (fewer under a small descriptor limit): see websession.serve.
        app = factory(self.db, self.changes, self.sender, uploads=self.uploads, waker=self.waker)
        runner = await serve_app(app, host, port)
        bound = runner.addresses[0] if runner.addresses else (host, port)
        self.http_url = f"http://{host}:{bound[1]}/"
        self.http_ready.set()
        log.info("dashboard on %s", self.http_url)
        return runner


async def run_central(
    broker: BrokerAddress,
    db_path: str | Path | Location,
    http: tuple[str, int] | None,
    *,
    retention_days: float = 30.0,
    retention: Retention | None = None,
    version: str = "",
    recordings_dir: str | Path | None = None,
    client_id: str = "",
    max_recording_bytes: int = MAX_RECORDING_BYTES,
    wake_port: int = WOL_PORT,
    group: str = "",
    housekeeping: bool = True,
    helpers: Helpers | None = None,
    watch_parent: bool = False,
) -> None:
    """Run classroom-central until SIGTERM or SIGINT, then stop cleanly (status ``offline``).

    `helpers`: collector processes to start beside this one (``run --collectors N``), stopped with it.
    `watch_parent`: this is such a helper: stop cleanly too when the parent's pipe on stdin closes.
    """
    if http is not None:
        dashboard_factory()  # a missing dashboard is a plain ConfigError, before anything starts
    central = Central(
        broker,
        db_path,
        retention_days=retention_days,
        retention=retention,
        version=version,
        recordings_dir=recordings_dir,
        client_id=client_id,
        max_recording_bytes=max_recording_bytes,
        wake_port=wake_port,
        group=group,
        housekeeping=housekeeping,
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        async with asyncio.TaskGroup() as tg:
            service = tg.create_task(central.run(http), name="central[main].run")
            waiter = tg.create_task(stop.wait(), name="central[main].signals")
            children = tg.create_task(helpers.run(), name="central[main].collectors") if helpers else None
            orphan = tg.create_task(_stop_when_orphaned(stop), name="central[main].parent") if watch_parent else None
            await asyncio.wait({service, waiter}, return_when=asyncio.FIRST_COMPLETED)
            log.info("stopping")
            for task in (service, waiter, children, orphan):
                if task is not None:
                    task.cancel()
    finally:
        for sig in signals:
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(sig)
        central.close()


async def _stop_when_orphaned(stop: asyncio.Event) -> None:
    """A helper collector (``run --collectors N``) stops when the process that started it is gone."""
    await parent_gone()
    log.warning("the collector that started this one is gone: stopping")
    stop.set()
