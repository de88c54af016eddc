"""The uploader: finished recordings go to classroom-central, resumably, and become ``uploaded``.

The protocol is `central.uploads`'s.  The centre's confirmed offset is the truth: every attempt
(after a network failure or an agent restart) first asks for it, then sends chunks from there,
each with its SHA-256.  agent.db keeps the upload id and the last confirmed offset for the status
page; the recording's row turns ``uploaded`` only when the centre says ``complete``.  Network
failures, a stopped centre and a refused token are retried with the jittered backoff.  A recording
the centre received but whose whole-file checksum did not match (``failed``) is sent again from
offset 0 after the centre discards what it has (``reset``), at most `max_resets` times; then the
uploader gives up on it with a critical ``upload_failed`` alarm.  A technician's ``upload.retry``
(`retry`) sends a given-up recording again from zero: it forgets the upload id, and an upload the
agent announces without one is announced ``fresh``, so the centre discards whatever it received of
it and counts its resets from 0 again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from enum import StrEnum
from pathlib import Path
from typing import Any

import aiohttp

from agent.alarms import Alarms
from agent.commands.table import Rejected
from agent.config.site import UploadConfig
from agent.errors import AgentError
from agent.store import AgentStore, RecordingRow, RecordingState
from drivers.backoff import Backoff

log = logging.getLogger(__name__)

IDLE_S = 10.0
REQUEST_S = 120.0  # one chunk of at most 8 MiB on a slow school uplink
CHUNK_RETRIES = 3
MAX_RESETS = 3  # whole-file checksum failures that are sent again from 0 before giving up
FINAL_NAME = "recording.mp4"  # streaming.segments.FINAL_NAME, without loading the media stack


class CentreState(StrEnum):
    """An upload's state as the centre answers it (`central.uploads`)."""

    UPLOADING = "uploading"  # more chunks wanted, from the confirmed offset
    COMPLETE = "complete"  # every byte received and the whole-file checksum matched
    FAILED = "failed"  # the whole-file checksum did not match: a reset sends it again from 0


class UploadError(AgentError):
    """An upload attempt failed; `retry` says whether trying again later can help."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        """`message` names the recording and what the centre or the network said."""
        super().__init__(message)
        self.retry = retry


class Uploader:
    """Uploads every ``finished`` recording in agent.db, oldest first, one at a time."""

    def __init__(
        self,
        config: UploadConfig,
        agent_id: str,
        store: AgentStore,
        alarms: Alarms | None = None,
        *,
        backoff: Backoff | None = None,
        idle_s: float = IDLE_S,
        max_resets: int = MAX_RESETS,
    ) -> None:
        """Nothing is sent until `run`."""
        self.config = config
        self.agent_id = agent_id
        self.store = store
        self.alarms = alarms
        self.backoff = backoff or Backoff(base=1.0, cap=60.0)
        self.idle_s = idle_s
        self.max_resets = max_resets
        self.current = ""
        self.bytes_sent = 0
        self.last_error = ""

    def telemetry(self) -> dict[str, object]:
        """``upload: {pending, current, bytes_sent, last_error}`` (bytes confirmed of the current one)."""
        return {
            "pending": len(self._pending()),
            "current": self.current,
            "bytes_sent": self.bytes_sent,
            "last_error": self.last_error,
        }

    async def run(self) -> None:
        """Upload until cancelled; wait `idle_s` when nothing is pending, the backoff after a failure."""
        headers = {"Authorization": f"Bearer {self.config.token}"}
        async with aiohttp.ClientSession(self.config.url, headers=headers) as session:
            while True:
                pending = self._pending()
                if not pending:
                    self.current, self.bytes_sent = "", 0
                    await asyncio.sleep(self.idle_s)
                    continue
                try:
                    await self.upload(session, pending[0])
                except UploadError as exc:
                    self._failed(pending[0].id, exc)
                    await asyncio.sleep(self.backoff.next_delay())
                else:
                    self.backoff.reset()
                    self.last_error = ""
                    if self.alarms is not None:
                        self.alarms.clear("upload_failed")

    def _pending(self) -> list[RecordingRow]:
        """Finished recordings not yet uploaded whose upload has not failed for good, oldest first."""
        rows = self.store.recordings_in(RecordingState.FINISHED)[::-1]
        return [r for r in rows if not _given_up(self.store, r.id)]

    def _failed(self, recording_id: str, exc: UploadError) -> None:
        self.last_error = f"{recording_id}: {exc}"
        log.warning("upload of %s: %s%s", recording_id, exc, "; retrying" if exc.retry else "; not retrying")
        self.store.upload_put(recording_id, error=str(exc), error_final=0 if exc.retry else 1)
        if self.alarms is not None:
            if not exc.retry:  # given up: a warning already open becomes critical
                self.alarms.clear("upload_failed")
            severity = "warning" if exc.retry else "critical"
            message, params = f"upload of recording {recording_id}: {exc}", {"recording": recording_id}
            self.alarms.raise_("upload_failed", severity, message, params=params | {"retry": exc.retry})

    async def upload(self, session: aiohttp.ClientSession, row: RecordingRow) -> None:
        """Send one recording from the centre's confirmed offset; mark it ``uploaded`` when complete."""
        recording_id, path = row.id, _file(row)
        self.current, self.bytes_sent = recording_id, 0
        size, digest = await asyncio.to_thread(_size_and_digest, path, row)
        fresh = not (self.store.upload_progress(recording_id) or {}).get("upload_id")  # first, or upload.retry
        announce: dict[str, object] = {"agent_id": self.agent_id, "recording_id": recording_id, "lesson": row.lesson}
        announce |= {"size": size, "sha256": digest, "started": row.started, "fresh": fresh}
        status, answer = await self._call(session, "POST", "/api/uploads", json=announce)
        if status != 200:
            error = f"the centre refused the upload ({status}): {answer.get('error', answer)}"
            # 400/413: this recording's announcement is out of the centre's bounds; 409: announced before with
            # another size or checksum.  Asking again cannot help (a technician's upload.retry still can).
            raise UploadError(error, retry=status not in (400, 409, 413))
        upload_id, offset, state = answer["upload_id"], int(answer["offset"]), answer["state"]
        if state == CentreState.FAILED:
            offset, state = await self._reset(session, upload_id, answer)
        self.store.upload_put(recording_id, upload_id=upload_id, offset=offset, size=size, error="", error_final=0)
        refusals = 0
        while state == CentreState.UPLOADING:
            self.bytes_sent = offset
            chunk = await asyncio.to_thread(_read, path, offset, self.config.chunk_bytes)
            headers = {"X-Chunk-SHA256": hashlib.sha256(chunk).hexdigest()}
            where = f"/api/uploads/{upload_id}?offset={offset}"
            status, answer = await self._call(session, "PUT", where, data=chunk, headers=headers)
            if status == 409 and answer.get("state") == CentreState.UPLOADING:
                offset = int(answer["offset"])  # the centre confirmed something else: continue from there
            elif status == 400 and (refusals := refusals + 1) < CHUNK_RETRIES:
                log.warning("upload %s: chunk at %d refused (%s), sending it again", upload_id, offset, answer)
            elif status != 200 and status != 409:
                raise UploadError(f"chunk at {offset} refused ({status}): {answer.get('error', answer)}")
            else:
                offset, state, refusals = int(answer["offset"]), answer["state"], 0
                self.store.upload_put(recording_id, offset=offset)
        self.bytes_sent = offset
        if state != CentreState.COMPLETE:  # failed: the next attempt asks for a reset (or gives up, see _reset)
            raise UploadError(f"the centre says {state}: {answer.get('error', '')}", retry=state == CentreState.FAILED)
        self.store.mark(recording_id, RecordingState.UPLOADED)
        self.store.upload_put(recording_id, offset=size, error="")
        log.info("recording %s uploaded (%d bytes, upload %s)", recording_id, size, upload_id)

    async def _reset(self, session: aiohttp.ClientSession, upload_id: str, answer: dict[str, Any]) -> tuple[int, str]:
        """Have the centre discard a failed upload and start it again from 0; UploadError(final) after `max_resets`."""
        resets = int(answer.get("resets", 0))
        if resets >= self.max_resets:
            raise UploadError(
                f"the centre's copy failed its whole-file checksum {resets + 1} times, giving up "
                f"(last: {answer.get('error', '')}); check the disk of this PC and of the centre",
                retry=False,
            )
        log.warning("upload %s failed at the centre (%s): sending it again from 0", upload_id, answer.get("error", ""))
        status, answer = await self._call(session, "POST", f"/api/uploads/{upload_id}/reset")
        if status != 200:
            why = answer.get("error", answer)
            raise UploadError(f"the centre refused to reset upload {upload_id} ({status}): {why}")
        return int(answer["offset"]), str(answer["state"])

    async def _call(
        self, session: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
    ) -> tuple[int, dict[str, Any]]:
        """One request with a deadline: the status and the JSON answer; UploadError for the network or a 403."""
        try:
            async with asyncio.timeout(REQUEST_S), session.request(method, path, **kwargs) as response:
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            raise UploadError(f"{self.config.url}{path}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(answer, dict):
            raise UploadError(f"{self.config.url}{path}: got {answer!r}, expected a JSON object")
        if response.status == 403:
            raise UploadError(f"refused by the centre: {answer.get('error', '')}")
        if response.status >= 500:
            raise UploadError(f"{self.config.url}{path}: the centre answered {response.status}")
        return response.status, answer


def retry(store: AgentStore, recording_id: str) -> dict[str, Any]:
    """Send a recording whose upload was given up again from zero (``upload.retry``); Rejected saying why not."""
    given_up = [r.id for r in store.recordings_in(RecordingState.FINISHED) if _given_up(store, r.id)]
    row = store.recording(recording_id)
    if row is None:
        which = f"; given up: {', '.join(given_up)}" if given_up else "; no upload was given up"
        raise Rejected(f"recording: got {recording_id!r}, expected a recording in agent.db{which}")
    if row.state != RecordingState.FINISHED:
        why = "uploaded already" if row.state == RecordingState.UPLOADED else f"{row.state}, not finished"
        raise Rejected(f"recording {recording_id!r} is {why}: only a finished recording is uploaded")
    progress = store.upload_progress(recording_id)
    if progress is None:
        raise Rejected(f"the upload of {recording_id!r} has not begun: it does by itself, with [upload] configured")
    if progress.get("error_final") != 1:
        raise Rejected(f"the upload of {recording_id!r} was not given up: it is retried by itself (telemetry upload)")
    store.upload_put(recording_id, upload_id="", offset=0, error="", error_final=0)
    was = progress.get("error") or ""
    log.warning("upload of %s: sent again from zero at a technician's request (was: %s)", recording_id, was)
    return {"recording": recording_id, "lesson": row.lesson, "was": was, "pending": True}


def _given_up(store: AgentStore, recording_id: str) -> bool:
    return (store.upload_progress(recording_id) or {}).get("error_final") == 1


def _file(row: RecordingRow) -> Path:
    """The file a recording row points at: its final MP4 when the row names its directory."""
    path = Path(row.path)
    return path / FINAL_NAME if path.is_dir() else path


def _size_and_digest(path: Path, row: RecordingRow) -> tuple[int, str]:
    """The file's size and SHA-256 (checked against the row's when it has them; blocking)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UploadError(f"cannot read {path}: {exc.strerror}", retry=False) from exc
    if row.size and row.size != size:
        raise UploadError(f"{path} has {size} bytes, the index says {row.size}: changed since", retry=False)
    if row.sha256:
        return size, row.sha256
    with path.open("rb") as f:
        return size, hashlib.file_digest(f, "sha256").hexdigest()


def _read(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(length)
