"""What a delivery sends: the recording under its remote name, a ``.sha256`` line and a ``.json`` sidecar.

The sidecar says what a platform files the recording under: the school (``site``), the room, the
lesson, its subject and teacher, start and end.  The recording index knows the lesson, the teacher
and the times; the timetable knows the subject: a 课表's lessons are named by subject (语文, 数学),
so the subject is the name of the timetable lesson on when the recording started (or half way
through it), empty for a recording that no timetable lesson covers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agent.config.delivery import DeliveryTarget
from agent.store import RecordingRow
from agent.timetable.model import Lesson, Timetable, plan
from contract import parse_iso

MAX_NAME = 180  # characters of a remote file name, extension included: FTP servers cap at 255 bytes
_UNSAFE = re.compile(r'[\\/:*?"<>|\s\x00-\x1f\x7f]+')


@dataclass(frozen=True, slots=True)
class Room:
    """Who recorded: the school (site), this agent and the room's name."""

    site: str
    agent_id: str
    room: str


@dataclass(frozen=True, slots=True)
class Job:
    """One recording for one target: the local file and the three remote files."""

    recording_id: str
    path: Path
    size: int
    sha256: str
    name: str  # the recording's remote name, e.g. room-101_20250301-080000-math.mp4
    stem: str  # the same without the extension: NAME.sha256 and NAME.json go beside it
    checksum: bytes  # "HEX  NAME.mp4\n": `sha256sum -c` checks it
    metadata: bytes  # the JSON sidecar, UTF-8

    def sidecars(self) -> tuple[tuple[str, bytes], ...]:
        """The checksum and metadata files: (remote name, content)."""
        return (f"{self.stem}.sha256", self.checksum), (f"{self.stem}.json", self.metadata)


def timetable_lesson(timetable: Timetable, row: RecordingRow) -> Lesson | None:
    """The timetable lesson on when the recording started, or half way through it; None when none was."""
    try:
        start = parse_iso(row.started)
    except ValueError:
        return None
    instants = [start]
    try:
        end = parse_iso(row.ended)
    except ValueError:
        pass
    else:
        instants.append(start + (end - start) / 2)
    for instant in instants:
        lesson = plan(timetable, instant).lesson
        if lesson is not None:
            return lesson
    return None


def make_job(
    target: DeliveryTarget,
    room: Room,
    row: RecordingRow,
    file: tuple[Path, int, str],
    timetable: Timetable,
) -> Job:
    """The job for one recording: `file` is its local path, size and SHA-256."""
    path, size, digest = file
    lesson = timetable_lesson(timetable, row)
    local = _local_start(row, timetable)
    fields = {
        "site": room.site, "agent": room.agent_id, "room": room.room, "recording": row.id, "lesson": row.lesson,
        "teacher": row.teacher or (lesson.teacher if lesson else ""),
        "date": local.strftime("%Y%m%d") if local else "", "time": local.strftime("%H%M%S") if local else "",
    }  # fmt: skip
    suffix = path.suffix.lower() if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", path.suffix) else ".mp4"
    stem = safe_name(target.file_name.format(**{k: safe_name(v) for k, v in fields.items()}))
    stem = stem[: MAX_NAME - len(suffix) - len(".sha256")] or row.id
    name = stem + suffix
    metadata = {
        "schema": 1, "site": room.site, "agent_id": room.agent_id, "room": room.room, "recording": row.id,
        "lesson": row.lesson, "subject": lesson.name if lesson else "", "teacher": fields["teacher"],
        "start": row.started, "end": row.ended, "layout": row.layout, "sources": list(row.sources),
        "file": name, "size": size, "sha256": digest,
    }  # fmt: skip
    body = json.dumps(metadata, ensure_ascii=False, indent=2, allow_nan=False).encode() + b"\n"
    return Job(row.id, path, size, digest, name, stem, f"{digest}  {name}\n".encode(), body)


def safe_name(text: str) -> str:
    """`text` fit for a file name on any server: no separators, wildcards, spaces or control characters."""
    return _UNSAFE.sub("_", text).strip("._")


def _local_start(row: RecordingRow, timetable: Timetable) -> datetime | None:
    """When the recording started, in the school's time zone (the timetable's)."""
    try:
        return parse_iso(row.started).astimezone(timetable.tz)
    except ValueError:
        return None
