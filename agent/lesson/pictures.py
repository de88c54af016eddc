"""Lesson pictures as recording sources: ``remote:N``, ``remote:N/SOURCE`` and ``lesson:AGENT/SOURCE``.

A lesson's received pictures come and go with their WebRTC sessions (a remote classroom that
reboots comes back as a new session with new picture objects), so a recording cannot hold one.
It holds a `LessonPicture` instead, which looks the picture up again on every frame: while the
classroom is away the lookup finds nothing and the compositor draws its "no signal" tile.

``remote:N`` is the N-th other classroom of whatever lesson is on (on the leading side the
remote classrooms in ``lesson.start`` order, then those that joined; on a remote classroom
``remote:1`` is the leading one) and shows the first picture it sends; ``remote:N/SOURCE`` a
named one.  ``lesson:AGENT/SOURCE`` names the classroom by its agent id.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from streaming.source import Frame, Source, SourceHealth

EXPECTED = "a source declared in [sources], remote:N, remote:N/SOURCE or lesson:AGENT/SOURCE"
_REMOTE = re.compile(r"remote:([1-9][0-9]*)(?:/([^/+#]+))?")
_LESSON = re.compile(r"lesson:([^/+#:]+)/([^/+#]+)")
NO_PICTURE_WAIT_S = 0.1


@dataclass(frozen=True, slots=True)
class Classroom:
    """One other classroom of the lesson as seen from here: its agent, received pictures, what it said it sends."""

    agent: str
    pictures: Mapping[str, Any]  # source name -> streaming Source
    sends: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PictureRef:
    """A parsed reference: by position (`position` >= 1) or by agent id, optionally naming the source."""

    position: int
    agent: str
    source: str

    @classmethod
    def parse(cls, text: str) -> PictureRef | None:
        """The reference `text` stands for, or None when it is not one."""
        remote = _REMOTE.fullmatch(text)
        if remote:
            return cls(int(remote.group(1)), "", remote.group(2) or "")
        lesson = _LESSON.fullmatch(text)
        return cls(0, lesson.group(1), lesson.group(2)) if lesson else None

    def find(self, classrooms: Sequence[Classroom]) -> Any:
        """The picture this reference names among `classrooms` now, or None."""
        if self.position:
            room = classrooms[self.position - 1] if self.position <= len(classrooms) else None
        else:
            room = next((c for c in classrooms if c.agent == self.agent), None)
        if room is None:
            return None
        if self.source:
            return room.pictures.get(self.source)
        first = next((name for name in room.sends if name in room.pictures), None)
        return room.pictures.get(first) if first else next(iter(room.pictures.values()), None)


Classrooms = Callable[[], Sequence[Classroom]]


class LessonPicture:
    """A recording's handle on a lesson picture: the current one on every call, None while it is away.

    It has the part of `streaming.source.Source` that consumers use (`latest`, `wait_newer`,
    `health`); `start` and `stop` do nothing because the lesson's peer owns the picture.
    """

    def __init__(self, name: str, ref: PictureRef, classrooms: Classrooms) -> None:
        """`classrooms` is called from the recorder's thread: it must only read."""
        self.name = name
        self.ref = ref
        self._classrooms = classrooms
        self.error = ""
        self.reconnects = 0

    def current(self) -> Source | None:
        """The picture now (None while the classroom or its picture is away)."""
        try:
            return cast("Source | None", self.ref.find(self._classrooms()))
        except RuntimeError:  # the lesson changed while we looked (another thread): next frame looks again
            return None

    @property
    def connected(self) -> bool:
        """Whether the picture is there now."""
        return self.current() is not None

    def start(self) -> None:
        """Nothing to start."""

    def stop(self, timeout: float = 5.0) -> None:
        """Nothing to stop."""

    def latest(self) -> Frame | None:
        """The current picture's newest frame, or None."""
        picture = self.current()
        return picture.latest() if picture is not None else None

    def wait_newer(self, index: int, timeout: float) -> Frame | None:
        """Block until the current picture has a frame newer than `index` (or `timeout`)."""
        picture = self.current()
        if picture is None:
            time.sleep(min(timeout, NO_PICTURE_WAIT_S))
            return None
        return picture.wait_newer(index, timeout)

    def health(self) -> SourceHealth:
        """The current picture's health, or a disconnected one saying the classroom is away."""
        picture = self.current()
        if picture is not None:
            return picture.health()
        from streaming.source import SourceHealth

        return SourceHealth(self.name, False, 0.0, None, 0, "not in the lesson now")


class RecordingSources(Mapping[str, "Source"]):
    """The room's own sources, as a mapping; lesson pictures are found by reference (see the module doc).

    The references are endless (``remote:7`` is fine before a seventh classroom exists), so they
    cannot be keys: membership, iteration, size and lookup all cover the room's own sources
    alone, and `picture` (or `source_for`) finds a lesson picture by its reference.
    """

    def __init__(self, local: Mapping[str, Source], classrooms: Classrooms) -> None:
        """`classrooms` lists the lesson's other classrooms now (empty when there is no lesson)."""
        self.local = local
        self.classrooms = classrooms
        self._pictures: dict[str, LessonPicture] = {}

    def picture(self, name: str) -> Source | None:
        """The `LessonPicture` of reference `name` (the same one each time), or None when `name` is no reference."""
        if name not in self._pictures:
            ref = PictureRef.parse(name)
            if ref is None:
                return None
            self._pictures[name] = LessonPicture(name, ref, self.classrooms)
        return cast("Source", self._pictures[name])

    def __getitem__(self, key: str) -> Source:
        """One of the room's own sources; KeyError for anything else."""
        return self.local[key]

    def __contains__(self, key: object) -> bool:
        """Whether `key` is one of the room's own sources."""
        return key in self.local

    def __iter__(self) -> Iterator[str]:
        """The room's own sources."""
        return iter(self.local)

    def __len__(self) -> int:
        """How many sources the room has of its own."""
        return len(self.local)


def source_for(sources: Mapping[str, Source], name: str) -> Source:
    """What a recording shows as `name`: one of `sources`, else (a room with lessons) the lesson picture it names.

    KeyError when it is neither: a source the room lacks, or a reference in a room without ``[lesson]``.
    """
    if name in sources:
        return sources[name]
    picture = sources.picture(name) if isinstance(sources, RecordingSources) else None
    if picture is None:
        raise KeyError(name)
    return picture


def recordable(sources: Mapping[str, Source], name: str) -> bool:
    """Whether a recording can show `name` from `sources` (`source_for` finds it)."""
    try:
        source_for(sources, name)
    except KeyError:
        return False
    return True
