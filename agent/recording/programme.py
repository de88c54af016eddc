"""The room's programmes: each composed picture encoded once, whoever takes it (recording, broadcast).

A recording and a live broadcast that show the same `Picture` (layout, sources, sound and encoder
settings) share one `streaming.programme.ProgrammeEncoder`: the second one to start attaches to
the encoder the first one started, and the last one to stop stops it (and lets go of its sound).
So that they can, a room with ``[broadcast]`` at the recording's size and rate records with the
broadcast's encoder settings (`encoder_settings`): one bitrate, profile and keyframe interval
(the shorter of the broadcast's and the recording's fragment) for both.

`Programmes.acquire` and `release` block (opening codecs and sound, joining the encoder thread):
call them from a worker thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.commands.table import Failed, Rejected
from agent.config.broadcast import BroadcastConfig
from agent.config.site import RecordingConfig
from agent.lesson.pictures import source_for
from agent.recording.sound import open_sound

if TYPE_CHECKING:
    from streaming.director import Director
    from streaming.programme import EncoderSettings, ProgrammeEncoder
    from streaming.source import Source

log = logging.getLogger(__name__)

__all__ = ["Picture", "Programmes", "encoder_settings"]


@dataclass(frozen=True, slots=True)
class Picture:
    """What a programme shows and how it is encoded: equal pictures share one encoder."""

    layout: str
    sources: tuple[str, ...]
    corner: str
    audio: str
    settings: EncoderSettings


def encoder_settings(
    recording: RecordingConfig | None, broadcast: BroadcastConfig | None, *, for_broadcast: bool
) -> EncoderSettings:
    """The encoder settings of a recording (or, `for_broadcast`, a broadcast) in this room.

    Where both are configured at the same size and rate they get the same settings, the
    broadcast's (platforms set the bitrate and keyframe interval; a recording is happy with
    them), with the shorter keyframe interval: the recording's fragments end at keyframes.
    """
    from streaming.programme import EncoderSettings

    same = (
        recording is not None
        and broadcast is not None
        and (recording.size, recording.fps) == (broadcast.size, broadcast.fps)
    )
    if broadcast is not None and (for_broadcast or same):
        keyframe_s = min(broadcast.keyframe_s, recording.fragment_s) if same and recording else broadcast.keyframe_s
        return EncoderSettings(
            broadcast.size, broadcast.fps, keyframe_s, broadcast.bitrate_kbps * 1000, broadcast.profile,
            broadcast.audio_kbps * 1000,
        )  # fmt: skip
    if recording is None:
        raise Rejected("recording is not configured: add [sources] and [recording] to the site config")
    return EncoderSettings(recording.size, recording.fps, keyframe_s=recording.fragment_s)


@dataclass
class _Running:
    """One programme being encoded, who takes it, and how to let go of its sound."""

    picture: Picture
    encoder: ProgrammeEncoder
    release_audio: Callable[[], None]
    users: set[str] = field(default_factory=set)


class Programmes:
    """The programmes being encoded in this room, shared by picture."""

    def __init__(self, sources: Mapping[str, Source], director: Director | None) -> None:
        """`sources` are the room's (and lesson pictures'); `director` chooses the ``directed`` layout's picture."""
        self.sources = sources
        self.director = director
        self._lock = threading.Lock()
        self._running: list[_Running] = []

    def acquire(self, picture: Picture, user: str, name: str) -> ProgrammeEncoder:
        """The running encoder of `picture` (now also `user`'s), else a new one called `name`, started.

        Rejected for a picture that cannot be (a layout, a sound), Failed when the encoder cannot start.
        """
        with self._lock:
            for running in self._running:
                if running.picture == picture and running.encoder.running and not running.encoder.error:
                    running.users.add(user)
                    log.info("%s joins programme %s (encoded once)", user, running.encoder.name)
                    return running.encoder
            running = self._start(picture, name)
            running.users.add(user)
            self._running.append(running)
            return running.encoder

    def release(self, encoder: ProgrammeEncoder, user: str) -> None:
        """`user` no longer takes `encoder`'s packets; the last one out stops it."""
        with self._lock:
            running = next((r for r in self._running if r.encoder is encoder), None)
            if running is None:
                return
            running.users.discard(user)
            if running.users:
                return
            self._running.remove(running)
        try:
            encoder.stop()
        finally:
            running.release_audio()

    def users(self, encoder: ProgrammeEncoder) -> tuple[str, ...]:
        """Who takes `encoder`'s packets."""
        with self._lock:
            running = next((r for r in self._running if r.encoder is encoder), None)
            return tuple(sorted(running.users)) if running else ()

    def stats(self) -> list[dict[str, Any]]:
        """Each programme being encoded: its encoder's stats and who takes it."""
        with self._lock:
            running = [(r.encoder, sorted(r.users)) for r in self._running]
        return [{**encoder.stats(), "users": users} for encoder, users in running]

    def _start(self, picture: Picture, name: str) -> _Running:
        from streaming.compose import Compositor, Layout, LayoutError
        from streaming.programme import ProgrammeEncoder, ProgrammeError

        try:
            layout = Layout(picture.layout, picture.sources, picture.settings.size, picture.corner)
        except LayoutError as exc:
            raise Rejected(f"layout: {exc}") from None
        compositor = Compositor(layout, {n: source_for(self.sources, n) for n in layout.sources})
        render: Callable[[], Any] = compositor.render
        if layout.name == "directed":
            from streaming.director import DirectedPicture

            if self.director is None:
                raise Rejected("layout 'directed' needs a [director] section in the site config")
            render = DirectedPicture(compositor, self.director).render
        audio, release_audio = open_sound(picture.audio, self.sources)
        encoder = ProgrammeEncoder(render, picture.settings, audio, name=name)
        try:
            encoder.start()
        except ProgrammeError as exc:
            release_audio()
            raise Failed(str(exc)) from exc
        log.info("programme %s: %s of %s", name, layout.name, ", ".join(layout.sources))
        return _Running(picture, encoder, release_audio)
