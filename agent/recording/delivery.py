"""Delivering finished recordings to the ``[[upload.targets]]`` (FTP / FTPS drops, HTTP PUT), besides the centre.

Each target has a loop of its own (a platform that is down holds up no other), sending every
recording that is ``finished`` or ``uploaded`` and not yet delivered there, oldest first, one at a
time.  agent.db keeps, per recording and target, where it goes, how far it got, the attempts and
the last error, so a restarted agent picks up where it was (the transports resume from what the
server says it has).  Failures are retried with the jittered backoff; three in a row raise a
``delivery_failed`` alarm for the target, cleared by its next delivery.  A local file that is gone
or changed since it was indexed is given up (critical alarm).  A transfer that makes no progress
for twice the target's ``timeout_s`` is cut and retried.  Retention deletes a recording only once
every target has it (`may_delete`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.alarms import Alarms
from agent.config.delivery import DeliveryTarget, redact
from agent.config.media import UploadConfig
from agent.recording.ftp import FtpTransport
from agent.recording.http_put import HttpTransport
from agent.recording.sidecar import Job, Room, make_job
from agent.recording.transfer import DeliveryError, Progress, Transport
from agent.recording.upload import FINAL_NAME
from agent.store import AgentStore, DeliveryState, RecordingRow, RecordingState
from agent.timetable.model import Timetable
from contract import now_iso
from drivers.backoff import Backoff

log = logging.getLogger(__name__)

IDLE_S = 10.0  # how often a target with nothing to send looks again
PERSIST_S = 1.0  # how often a transfer's progress is written to agent.db
ALARM_AFTER = 3  # failures in a row before the alarm: one dropped connection is not news
STOP_S = 5.0  # how long a cancelled transfer may take to let go of its sockets


def transport_for(target: DeliveryTarget) -> Transport:
    """The transport that speaks the target's scheme."""
    return FtpTransport(target) if target.kind == "ftp" else HttpTransport(target)


@dataclass
class _Status:
    """One target's state for the status and telemetry."""

    current: str = ""
    progress: Progress | None = None
    failures: int = 0
    last_error: str = ""
    last_delivered: str = ""


class Deliveries:
    """Delivers every finished recording to each target, one loop per target."""

    def __init__(
        self,
        targets: tuple[DeliveryTarget, ...],
        room: Room,
        store: AgentStore,
        alarms: Alarms | None = None,
        *,
        timetable: Callable[[], Timetable] = Timetable,
        backoff: Callable[[], Backoff] = lambda: Backoff(base=2.0, cap=300.0),
        idle_s: float = IDLE_S,
        persist_s: float = PERSIST_S,
    ) -> None:
        """Nothing is sent until `run`; `timetable` gives the timetable in force (for the sidecar's subject)."""
        self.transports = {t.name: transport_for(t) for t in targets}
        self.room = room
        self.store = store
        self.alarms = alarms
        self.timetable = timetable
        self.backoff = backoff
        self.idle_s = idle_s
        self.persist_s = persist_s
        self.status = {t.name: _Status() for t in targets}

    def telemetry(self) -> dict[str, dict[str, object]]:
        """Per target: kind, URL, recordings pending / delivered / given up, the one under way, the last error."""
        out: dict[str, dict[str, object]] = {}
        eligible = {r.id for r in self.store.recordings_in(RecordingState.FINISHED, RecordingState.UPLOADED)}
        for name, transport in self.transports.items():
            states = [str(d["state"]) for i, d in self.store.deliveries_to(name).items() if i in eligible]
            status, progress = self.status[name], self.status[name].progress
            delivered, given_up = states.count(DeliveryState.DELIVERED), states.count(DeliveryState.GIVEN_UP)
            out[name] = {
                "kind": transport.target.kind, "url": transport.target.url,
                "pending": len(eligible) - delivered - given_up, "delivered": delivered, "given_up": given_up,
                "current": status.current, "bytes_sent": progress.offset if progress else 0,
                "size": progress.size if progress else 0, "failures": status.failures,
                "last_error": status.last_error, "last_delivered": status.last_delivered,
            }  # fmt: skip
        return out

    def delivered_everywhere(self, row: RecordingRow) -> bool:
        """Whether every target has the recording."""
        return all(
            (self.store.delivery(row.id, name) or {}).get("state") == DeliveryState.DELIVERED
            for name in self.transports
        )

    async def run(self) -> None:
        """Deliver until cancelled: one task per target.

        Deliveries given up (their file was gone or changed) are tried once more first: a technician
        who restored the file restarts the service (``agent.restart_service service=delivery``).
        """
        if again := self.store.deliveries_given_up_retry():
            log.info("%d given-up deliveries: trying their files again", again)
        async with asyncio.TaskGroup() as tg:
            for name in self.transports:
                tg.create_task(self._serve(name), name=f"delivery[{name}].run")

    def pending(self, name: str) -> list[RecordingRow]:
        """The recordings `name` still lacks and that are not given up, oldest first."""
        rows = self.store.recordings_in(RecordingState.FINISHED, RecordingState.UPLOADED)[::-1]
        states = self.store.deliveries_to(name)
        return [r for r in rows if (states.get(r.id) or {}).get("state", "pending") == DeliveryState.PENDING]

    async def _serve(self, name: str) -> None:
        backoff = self.backoff()
        while True:
            pending = self.pending(name)
            if not pending:
                await asyncio.sleep(self.idle_s)
                continue
            try:
                await self.deliver(name, pending[0])
            except DeliveryError as exc:
                self._failed(name, pending[0], exc)
                await asyncio.sleep(backoff.next_delay())
            else:
                backoff.reset()

    async def deliver(self, name: str, row: RecordingRow) -> None:
        """One attempt at one recording; DeliveryError when it did not get there."""
        transport, status = self.transports[name], self.status[name]
        file = await asyncio.to_thread(_local_file, row)
        job = make_job(transport.target, self.room, row, file, self.timetable())
        where = transport.where(job)
        saved = self.store.delivery(row.id, name) or {}
        moved = saved.get("dest") not in (None, "", where)  # the target's URL or file name changed: start over
        if moved:
            log.info("delivery of %s to %s: now to %s (was %s): from the start", row.id, name, where, saved["dest"])
        progress = Progress(0 if moved else int(saved.get("offset") or 0), job.size)
        progress.ranges = -1 if moved or saved.get("ranges") is None else int(saved["ranges"])
        attempts = int(saved.get("attempts") or 0) + 1
        self.store.delivery_put(row.id, name, dest=where, size=job.size, state=DeliveryState.PENDING, attempts=attempts)
        status.current, status.progress = row.id, progress
        try:
            await self._watched(name, transport, job, progress)
        finally:
            status.current, status.progress = "", None
            self.store.delivery_put(row.id, name, offset=progress.offset, ranges=progress.ranges)
        delivered = now_iso()
        done = {"state": DeliveryState.DELIVERED, "offset": job.size, "error": "", "delivered": delivered}
        self.store.delivery_put(row.id, name, **done)
        status.failures, status.last_error, status.last_delivered = 0, "", delivered
        if self.alarms is not None:
            self.alarms.clear("delivery_failed", name)
        log.info("recording %s delivered to %s: %s (%d bytes, attempt %d)", row.id, name, where, job.size, attempts)

    async def _watched(self, name: str, transport: Transport, job: Job, progress: Progress) -> None:
        """Run the transfer; cut it when it makes no progress, write its progress to agent.db as it goes."""
        idle = 2 * transport.target.timeout_s
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(transport.deliver(job, progress), name=f"delivery[{name}].transfer")
        beat, since, saved = progress.beat, loop.time(), loop.time()
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=min(1.0, self.persist_s))
                if done:
                    return _outcome(task, transport.target)
                now = loop.time()
                if progress.beat != beat:
                    beat, since = progress.beat, now
                elif now - since > idle:
                    raise DeliveryError(f"{transport.where(job)}: no progress for {idle:g} s: cut off")
                if now - saved >= self.persist_s:
                    self.store.delivery_put(job.recording_id, name, offset=progress.offset, ranges=progress.ranges)
                    saved = now
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=STOP_S)
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: it was reported, or replaced by the watchdog's own error

    def _failed(self, name: str, row: RecordingRow, exc: DeliveryError) -> None:
        status = self.status[name]
        status.failures += 1
        status.last_error = f"{row.id}: {exc}"
        again = "; retrying" if exc.retry else "; given up (the local file must be restored)"
        log.warning("delivery of %s to %s: %s%s", row.id, name, exc, again)
        state = DeliveryState.PENDING if exc.retry else DeliveryState.GIVEN_UP
        self.store.delivery_put(row.id, name, error=str(exc), state=state)
        if self.alarms is None:
            return
        message = f"delivery of recording {row.id} to {name}: {exc}"
        if not exc.retry:
            self.alarms.clear("delivery_failed", name)  # a warning already open becomes critical
            self.alarms.raise_("delivery_failed", "critical", message, name)
        elif status.failures >= ALARM_AFTER:
            self.alarms.raise_("delivery_failed", "warning", f"{message} ({status.failures} failures in a row)", name)


def may_delete(upload: UploadConfig | None, deliveries: Deliveries | None) -> Callable[[RecordingRow], bool]:
    """Retention's rule: the centre confirmed the recording (when there is one) and every target has it.

    Without ``[upload]`` only a recording marked ``uploaded`` goes (as it always has).
    """

    def rule(row: RecordingRow) -> bool:
        if (upload is None or upload.url) and row.state != RecordingState.UPLOADED:
            return False
        return deliveries is None or deliveries.delivered_everywhere(row)

    return rule


def _outcome(task: asyncio.Task[None], target: DeliveryTarget) -> None:
    """A finished transfer's result: DeliveryError as it is, anything unexpected as a DeliveryError."""
    try:
        task.result()
    except DeliveryError:
        raise
    except Exception as exc:
        log.exception("delivery to %s: unexpected failure", target.name)
        raise DeliveryError(f"{type(exc).__name__}: {redact(str(exc), target.secrets)[:200]}") from exc


def _local_file(row: RecordingRow) -> tuple[Path, int, str]:
    """The recording's file, size and SHA-256 (blocking); DeliveryError(final) when it is gone or changed."""
    path = Path(row.path)
    path = path / FINAL_NAME if path.is_dir() else path
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DeliveryError(f"cannot read {path}: {exc.strerror}", retry=False) from exc
    if row.size and row.size != size:
        raise DeliveryError(f"{path} has {size} bytes, the index says {row.size}: changed since", retry=False)
    if row.sha256:
        return path, size, row.sha256
    with path.open("rb") as f:
        return path, size, hashlib.file_digest(f, "sha256").hexdigest()
