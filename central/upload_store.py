"""The uploads the centre is receiving and the recordings store they end in (`central.uploads` is the HTTP side).

Uploads in progress live in fleet.db's ``uploads`` table (a connection of their own) with their
bytes in ``.partial/``; a complete one moves into the store and gets a ``recordings`` row, a
failed one is kept aside in ``.failed/``.  Every refusal is an `UploadRefused` carrying the HTTP
status to answer with.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from central.errors import CentralError
from central.schema import migrate
from central.store import Location, Store
from contract import now_iso

log = logging.getLogger(__name__)

PARTIAL, FAILED = ".partial", ".failed"
_HEX64 = re.compile(r"[0-9a-f]{64}")
# An agent or recording id names a directory and a file of the store (with "-<upload id>.mp4" added),
# within a file name's 255 bytes; a recording id is letters, digits, "_", "-", "." (not first).
_NAME = re.compile(r"[\w-][\w.-]*")
MAX_NAME, MAX_NAME_BYTES, MAX_TEXT = 128, 200, 1000
MAX_RECORDING_BYTES = 32 * 2**30  # the default largest recording the centre takes (`Uploads(max_size=)`)


class UploadRefused(CentralError):
    """An upload request the centre will not take; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        """`extra` travels in the JSON answer (e.g. the confirmed ``offset`` of a 409)."""
        super().__init__(message)
        self.status = status
        self.extra = extra


@dataclass(frozen=True, slots=True)
class UploadRequest:
    """What an agent announces before sending a recording."""

    agent_id: str
    recording_id: str
    lesson: str
    size: int
    sha256: str
    started: str = ""
    fresh: bool = False  # start an unfinished upload over from 0

    @classmethod
    def from_dict(cls, data: Any) -> UploadRequest:
        """Parse the POST body; UploadRefused(400) naming the first bad field."""
        if not isinstance(data, dict):
            raise UploadRefused(400, "body: expected a JSON object")
        for key in ("agent_id", "recording_id"):
            _check_name(key, data.get(key))
        size, digest = data.get("size"), data.get("sha256")
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise UploadRefused(400, f"size: got {size!r}, expected a positive number of bytes")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise UploadRefused(400, f"sha256: got {digest!r}, expected 64 lowercase hex digits")
        lesson, started, fresh = data.get("lesson", ""), data.get("started", ""), data.get("fresh", False)
        for key, text in (("lesson", lesson), ("started", started)):
            if not isinstance(text, str) or len(text) > MAX_TEXT:
                got = f"{len(text)} characters" if isinstance(text, str) else repr(text)
                raise UploadRefused(400, f"{key}: got {got}, expected text of at most {MAX_TEXT} characters")
        if not isinstance(fresh, bool):
            raise UploadRefused(400, f"fresh: got {fresh!r}, expected true or false")
        return cls(data["agent_id"], data["recording_id"], lesson, size, digest, started, fresh)

    def to_dict(self) -> dict[str, Any]:
        """The POST body."""
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class Upload:
    """One upload as the centre has confirmed it."""

    id: str
    agent_id: str
    recording_id: str
    size: int
    sha256: str
    offset: int
    state: str  # uploading | complete | failed
    error: str = ""
    resets: int = 0  # times a failed upload was started again from 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON answer."""
        keys = ("offset", "size", "state", "error", "resets")
        return {"upload_id": self.id, **{k: getattr(self, k) for k in keys}}


class Uploads:
    """The uploads in progress (in fleet.db) and the recordings store they end in."""

    def __init__(
        self,
        location: str | os.PathLike[str] | Location,
        recordings_dir: str | Path,
        *,
        max_size: int = MAX_RECORDING_BYTES,
    ) -> None:
        """Open the upload tables of the fleet store (a connection of its own) and the recordings directory.

        `max_size`: the largest recording taken, in bytes; a larger announcement is refused with 413.
        """
        self.dir = Path(recordings_dir)
        self.max_size = max_size
        self._db = Store(location)
        try:
            migrate(self._db)
        except BaseException:
            self._db.close()
            raise
        self._busy: dict[str, asyncio.Lock] = {}

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def register_agent(self, agent_id: str, token: str) -> None:
        """Let `agent_id` upload with `token` (replacing its previous token)."""
        if len(token) < 16:
            raise UploadRefused(400, "upload token: at least 16 characters")
        self._db.execute(
            "INSERT INTO upload_agents (agent_id, token_sha256, since) VALUES (?, ?, ?) ON CONFLICT (agent_id)"
            " DO UPDATE SET token_sha256 = excluded.token_sha256, since = excluded.since",
            (agent_id, _digest(token.encode()), now_iso()),
        )

    def authenticate(self, agent_id: str, token: str) -> None:
        """UploadRefused(403) unless `token` is the one registered for `agent_id`."""
        row = self._db.execute("SELECT token_sha256 FROM upload_agents WHERE agent_id = ?", (agent_id,)).fetchone()
        if row is None:
            raise UploadRefused(
                403, f"agent {agent_id!r} is not registered for uploads: register its [upload] token at the centre "
                f"(classroom-central upload-token {agent_id} TOKEN)",
            )  # fmt: skip
        if not hmac.compare_digest(row[0], _digest(token.encode())):
            raise UploadRefused(403, f"agent {agent_id!r}: wrong upload token (see [upload] token in its site config)")

    def get(self, upload_id: str) -> Upload | None:
        """One upload; None when unknown."""
        rows = self._db.query("SELECT * FROM uploads WHERE id = ?", (upload_id,))
        if not rows:
            return None
        row = rows[0]
        keys = ("id", "agent_id", "recording_id", "size", "sha256", "offset", "state", "error", "resets")
        return Upload(*(row[k] for k in keys))

    def received_bytes(self, upload_id: str) -> int:
        """Every byte written for this upload, counting any rewritten after a crash."""
        return int(self._db.scalar("SELECT received_bytes FROM uploads WHERE id = ?", (upload_id,)) or 0)

    def recording_path(self, recording_pk: int) -> Path | None:
        """The stored MP4 of a received recording; None when unknown or gone."""
        file = self._db.scalar("SELECT file FROM recordings WHERE id = ?", (recording_pk,))
        path = self.dir / str(file) if file is not None else None
        return path if path is not None and path.is_file() else None

    async def begin(self, request: UploadRequest) -> Upload:
        """The upload of this agent's recording: created once, afterwards the existing one."""
        if request.size > self.max_size:
            raise UploadRefused(413, f"size: got {request.size} bytes, at most {self.max_size} (classroom-central run "
                                "--max-recording-gib)")  # fmt: skip
        found = self._find(request.agent_id, request.recording_id)
        if found is None:
            now = now_iso()
            self._db.execute(
                "INSERT INTO uploads (id, agent_id, recording_id, lesson, started, size, sha256, state,"
                " created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, 'uploading', ?, ?) ON CONFLICT DO NOTHING",
                (secrets.token_hex(8), request.agent_id, request.recording_id, request.lesson, request.started)
                + (request.size, request.sha256, now, now),
            )
            found = self._find(request.agent_id, request.recording_id)
            assert found is not None
            log.info("upload %s: %s %s, %d bytes", found.id, request.agent_id, request.recording_id, request.size)
        elif request.fresh and found.state != "complete":
            found = await self._start_over(found, request)
        if (found.size, found.sha256) != (request.size, request.sha256):
            raise UploadRefused(
                409, f"recording {request.recording_id!r} was announced with {found.size} bytes and sha256 "
                f"{found.sha256[:12]}…, now {request.size} bytes and {request.sha256[:12]}…", **found.to_dict(),
            )  # fmt: skip
        if found.state == "uploading" and found.offset == found.size:
            async with self._busy_lock(found.id):  # the centre stopped while completing it: complete it now
                found = await self._complete(found)
        return found

    async def append(self, upload: Upload, offset: int, chunk: bytes, chunk_sha256: str) -> Upload:
        """Append one chunk at the confirmed offset (durably); complete the upload with its last chunk."""
        async with self._busy_lock(upload.id):
            current = self.get(upload.id)
            assert current is not None
            if current.state == "complete":
                return current  # a resend of the last chunk whose answer was lost
            if current.state != "uploading":
                raise UploadRefused(409, f"upload {upload.id} is {current.state}: {current.error}", **current.to_dict())
            if offset != current.offset:
                raise UploadRefused(
                    409, f"offset {offset} is not the confirmed offset {current.offset}", **current.to_dict()
                )
            if not chunk or offset + len(chunk) > current.size:
                raise UploadRefused(400, f"chunk of {len(chunk)} bytes at {offset}: the file has {current.size}")
            if not hmac.compare_digest(_digest(chunk), chunk_sha256.lower()):
                raise UploadRefused(400, f"chunk at offset {offset}: checksum mismatch, send it again")
            await asyncio.to_thread(_write_at, self._partial(current.id), offset, chunk)
            sets = '"offset" = ?, received_bytes = received_bytes + ?'
            self._update(current.id, sets, offset + len(chunk), len(chunk))
            current = self.get(upload.id)
            assert current is not None
            return await self._complete(current) if current.offset == current.size else current

    async def reset(self, upload: Upload) -> Upload:
        """Start a ``failed`` upload again from 0, discarding what was received; an ``uploading`` one is left as is."""
        async with self._busy_lock(upload.id):
            current = self.get(upload.id)
            assert current is not None
            if current.state == "uploading":
                return current  # reset twice (an answer lost on the way): nothing more to do
            if current.state != "failed":
                raise UploadRefused(409, f"upload {upload.id} is {current.state}: only a failed one is reset")
            self._discard(current.id)
            self._update(current.id, "state = 'uploading', \"offset\" = 0, error = '', resets = resets + 1")
            log.warning("upload %s from %s reset to 0 after: %s", current.id, current.agent_id, current.error)
        done = self.get(upload.id)
        assert done is not None
        return done

    async def _start_over(self, upload: Upload, request: UploadRequest) -> Upload:
        """Discard what was received of an unfinished upload; it starts again from 0 as announced now."""
        async with self._busy_lock(upload.id):
            current = self.get(upload.id)
            if current is None or current.state == "complete":  # completed meanwhile: kept
                return current or upload
            self._discard(upload.id)
            sets = "size = ?, sha256 = ?, lesson = ?, started = ?, state = 'uploading', \"offset\" = 0, error = ''"
            sets += ", resets = 0"  # a fresh start: the agent's give-up count begins again
            self._update(upload.id, sets, request.size, request.sha256, request.lesson, request.started)
            log.warning(
                "upload %s from %s started over at the agent's request (was %s at %d of %d bytes, %d reset(s))",
                upload.id, upload.agent_id, current.state, current.offset, current.size, current.resets,
            )  # fmt: skip
        done = self.get(upload.id)
        assert done is not None
        return done

    async def _complete(self, upload: Upload) -> Upload:
        """Check the whole file, move it into the store and record it (or keep it aside as failed)."""
        partial = self._partial(upload.id)
        digest = await asyncio.to_thread(_file_digest, partial) if partial.exists() else ""
        if digest != upload.sha256:
            aside = self.dir / FAILED / f"{upload.id}.part"
            aside.parent.mkdir(exist_ok=True)
            if partial.exists():
                os.replace(partial, aside)
            error = f"whole-file sha256 {digest or 'missing'} does not match the announced {upload.sha256}"
            self._update(upload.id, "state = 'failed', error = ?", f"{error}; the received file is kept in {aside}")
            log.error("upload %s from %s failed: %s", upload.id, upload.agent_id, error)
        else:
            name = self._final_name(upload)
            (self.dir / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(partial, self.dir / name)
            _sync_dir(self.dir / name)
            with self._db.transaction():
                self._db.execute(
                    "INSERT INTO recordings (agent_id, recording_id, lesson, started, size, sha256, file,"
                    " received) SELECT agent_id, recording_id, lesson, started, size, sha256, ?, ? FROM uploads"
                    " WHERE id = ? ON CONFLICT DO NOTHING",
                    (name, now_iso(), upload.id),
                )
                sql = "UPDATE uploads SET state = 'complete', updated = ? WHERE id = ?"
                self._db.execute(sql, (now_iso(), upload.id))
            log.info("upload %s complete: %s", upload.id, self.dir / name)
        done = self.get(upload.id)
        assert done is not None
        return done

    def _final_name(self, upload: Upload) -> str:
        agent, recording = _safe(upload.agent_id), _safe(upload.recording_id)
        name = f"{agent}/{recording}.mp4"
        return name if not (self.dir / name).exists() else f"{agent}/{recording}-{upload.id}.mp4"

    def _find(self, agent_id: str, recording_id: str) -> Upload | None:
        sql = "SELECT id FROM uploads WHERE agent_id = ? AND recording_id = ?"
        found = self._db.scalar(sql, (agent_id, recording_id))
        return self.get(str(found)) if found is not None else None

    def _update(self, upload_id: str, assignments: str, *values: Any) -> None:
        sql = f"UPDATE uploads SET {assignments}, updated = ? WHERE id = ?"
        self._db.execute(sql, (*values, now_iso(), upload_id))

    def _discard(self, upload_id: str) -> None:
        """Delete what was received of an upload: the partial file and a failed copy kept aside."""
        for path in (self._partial(upload_id), self.dir / FAILED / f"{upload_id}.part"):
            path.unlink(missing_ok=True)

    def _partial(self, upload_id: str) -> Path:
        return self.dir / PARTIAL / f"{upload_id}.part"

    def _busy_lock(self, upload_id: str) -> asyncio.Lock:
        return self._busy.setdefault(upload_id, asyncio.Lock())


def _check_name(key: str, value: Any) -> None:
    """UploadRefused(400) unless `value` is an id fit to name a file of the store."""
    if not isinstance(value, str) or not value:
        raise UploadRefused(400, f"{key}: expected a non-empty string")
    if len(value) > MAX_NAME:
        raise UploadRefused(400, f"{key}: got {len(value)} characters, expected at most {MAX_NAME}")
    if len(value.encode()) > MAX_NAME_BYTES:
        raise UploadRefused(400, f"{key}: got {len(value.encode())} bytes in UTF-8, expected at most {MAX_NAME_BYTES}")
    if key == "agent_id":  # any name the agent's config takes (its directory name is made safe)
        if not value.isprintable() or any(c in value for c in "/\\+#"):
            raise UploadRefused(400, f"{key}: {value!r}: expected printable characters without / \\ + #")
    elif not _NAME.fullmatch(value):
        raise UploadRefused(400, f"{key}: {value!r}: expected letters, digits, '_', '-' and '.' (not first)")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).lstrip(".") or "_"


def _write_at(path: Path, offset: int, chunk: bytes) -> None:
    """Cut the file to the confirmed offset (a crash may have left more), append, fsync (blocking)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "r+b" if path.exists() else "wb") as f:
        f.truncate(offset)
        f.seek(offset)
        f.write(chunk)
        f.flush()
        os.fsync(f.fileno())


def _file_digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _sync_dir(path: Path) -> None:
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
