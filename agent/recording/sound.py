"""A recording's sound, as ``[recording] audio`` (or ``record --audio``) names it.

Shared by the recording service and ``classroom-agent record``, so both take the same words and
refuse the same mistakes.  The media stack is imported only when a sound is opened.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from agent.commands.table import Rejected

if TYPE_CHECKING:
    from streaming.recorder import AudioSource
    from streaming.source import Source

__all__ = ["open_sound"]


def open_sound(spec: str, sources: Mapping[str, Source]) -> tuple[AudioSource | None, Callable[[], None]]:
    """A recording's sound and how to let go of it; Rejected naming the choices for an unknown `spec`.

    `spec` is ``silence``, ``tone``, ``none``, ``mic``, ``mic:DEVICE`` or an RTSP source's id (its microphone).
    """
    from streaming.synthetic import ToneSource

    if spec in ("none", "silence", "tone"):
        return (None if spec == "none" else ToneSource(level=0.1 if spec == "tone" else 0.0)), lambda: None
    from streaming.audio import AudioFeed

    feed = AudioFeed()
    if spec == "mic" or spec.startswith("mic:"):
        from streaming.capture import MicrophoneSource

        mic = MicrophoneSource("mic", spec.partition(":")[2] or "default")
        mic.audio = feed
        mic.start()
        return feed, mic.stop
    from streaming.rtsp import RtspSource

    camera = sources.get(spec)
    if not isinstance(camera, RtspSource):
        rtsp = [name for name, source in sources.items() if isinstance(source, RtspSource)]
        choices = ", ".join(["silence", "tone", "none", "mic", "mic:DEVICE", *rtsp])
        raise Rejected(f"audio: got {spec!r}, expected {choices} (only RTSP cameras carry sound)")
    camera.audio = feed

    def release() -> None:
        if camera.audio is feed:
            camera.audio = None

    return feed, release
