"""The lesson's media stack behind one door: shared encoders and WebRTC peers, loaded on first use.

An agent config without ``[lesson]`` never builds a `LessonMedia`, so it never imports aiortc,
PyAV or the encoders (see TRAPS: import cost).  Each local source gets one encoder, whatever
the number of peers it is sent to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from agent.commands.table import Failed, Rejected
from agent.config.lesson import LessonConfig

if TYPE_CHECKING:
    from streaming.source import Source

log = logging.getLogger(__name__)

AUDIO = "audio"  # the name the room's sound travels under


class PeerStatsLike(Protocol):
    """What the lesson reads from a peer's statistics."""

    def to_dict(self) -> dict[str, Any]:
        """State, frames sent and received, RTT, loss, bitrates, fps."""


class RtcPeer(Protocol):
    """The part of `streaming.rtc.Peer` the lesson uses."""

    @property
    def incoming(self) -> Mapping[str, Any]:
        """Incoming pictures by the sender's source name (each a streaming Source with `frozen_for()`)."""

    @property
    def state(self) -> str:
        """new, connecting, connected, failed or closed."""

    async def create_offer(self) -> str:
        """The offer SDP."""

    async def accept_offer(self, sdp: str) -> str:
        """Take an offer; the answer SDP."""

    async def accept_answer(self, sdp: str) -> None:
        """Take the answer to our offer."""

    async def request_keyframe(self, name: str) -> None:
        """Ask the sender of incoming picture `name` for a keyframe."""

    async def stats(self) -> PeerStatsLike:
        """The peer's statistics now."""

    async def close(self) -> None:
        """Hang up."""


class LessonMedia:
    """Encoders (one per local source, shared by every peer) and peers, for one agent."""

    def __init__(self, config: LessonConfig, sources: Mapping[str, Source], kinds: Mapping[str, str]) -> None:
        """`sources` are the room's running sources; `kinds` their kinds (screen, rtsp, ...)."""
        self.config = config
        self.sources = sources
        self.kinds = kinds
        self._encoders: dict[str, Any] = {}
        self._pictures: dict[str, tuple[Any, Any]] = {}  # received picture name -> (its Source, encoder)
        self._retired: list[Any] = []  # picture encoders to close (closing blocks: not on the loop)
        self._release_audio: Callable[[], None] = lambda: None
        self.muted = False
        from streaming.rtc import RtcError

        self.errors: tuple[type[Exception], ...] = (RtcError,)

    def ice(self) -> Any:
        """The configured STUN/TURN servers, host addresses and transport policy, as `streaming.rtc.IceSettings`."""
        from streaming.ice import IceServer, IceSettings

        servers = tuple(IceServer(s.urls, s.username, s.credential) for s in self.config.ice_servers)
        relay_only = self.config.ice_transport_policy == "relay"
        return IceSettings(servers=servers, host_addresses=self.config.ice_host_addresses, relay_only=relay_only)

    def peer(self, peer_id: str, send: Sequence[str], *, receive_video: int, receive_audio: int) -> RtcPeer:
        """A new peer sending `send` (source ids, and ``audio``), receiving that many tracks."""
        from streaming.rtc import Peer

        encoders = {name: self.encoder(name) for name in send}
        peer: RtcPeer = Peer(
            peer_id, self.ice(), send=encoders, receive_video=receive_video, receive_audio=receive_audio
        )
        return peer

    def video_or_none(self, name: str) -> Any:
        """The encoder of a local video source, or None when there is no such source (for WHEP)."""
        return self.encoder(name) if name in self.sources else None

    def audio_or_none(self, name: str) -> Any:
        """The room's sound for any source a browser watches, or None when it sends none."""
        return self.encoder(AUDIO) if self.sends_audio() and name in self.sources else None

    def picture_encoder(self, name: str, video: Source) -> Any:
        """The one encoder sending received picture `name` on (to the page over WHEP), made for its first viewer.

        A picture that arrives anew under the same name (a renegotiated link) gets a new encoder;
        the old one is retired and closed by `retire`.
        """
        from streaming.encoding import EncoderError, VideoEncoder

        held = self._pictures.get(name)
        if held is not None and held[0] is video:
            return held[1]
        if held is not None:
            self._retired.append(held[1])
        frame = video.latest()
        camera = self.config.video_for(name, "")
        width, height = frame.size if frame is not None else camera.size
        size = (max(16, width - width % 2), max(16, height - height % 2))
        try:
            bitrate = camera.bitrate_kbps * 1000
            encoder = VideoEncoder(video, size=size, fps=camera.fps, bitrate=bitrate, adapt=self.config.adapt)
        except EncoderError as exc:
            raise Failed(str(exc)) from exc
        self._pictures[name] = (video, encoder)
        return encoder

    def retire(self, live: Mapping[str, Any]) -> tuple[list[str], list[Any]]:
        """Forget the picture encoders whose picture is gone from `live`: (their names, encoders to close)."""
        gone = [name for name, (video, _) in self._pictures.items() if live.get(name) is not video]
        closing, self._retired = [*self._retired, *(self._pictures.pop(name)[1] for name in gone)], []
        return gone, closing

    def mute(self, on: bool) -> None:
        """Send silence instead of the room's sound to every peer and viewer at once (or the sound again)."""
        if not self.sends_audio():
            raise Rejected('this room sends no sound (lesson.audio = "none"): there is nothing to mute')
        self.encoder(AUDIO).mute(on)
        self.muted = on

    def encoder(self, name: str) -> Any:
        """The one encoder of a local source (or of the room's sound, ``audio``); Failed when it cannot be."""
        from streaming.encoding import EncoderError

        if name not in self._encoders:
            try:
                self._encoders[name] = self._audio_encoder() if name == AUDIO else self._video_encoder(name)
            except EncoderError as exc:
                raise Failed(str(exc)) from exc
        return self._encoders[name]

    def sending(self, names: Sequence[str]) -> dict[str, Any]:
        """Each named source's one encoder: frames encoded, to how many links it goes, and its level.

        The level is a video's fps and size now and whether (and why) it is degraded, e.g.
        ``{"degraded": "fps", "fps": 15, "size": "1280x720", "reason": "cpu: ..."}``.
        """
        return {name: _encoding(self._encoders[name]) for name in names if name in self._encoders}

    def relaying(self) -> dict[str, Any]:
        """The encoders sending received pictures on to the page (WHEP), with their levels, by picture name."""
        return {name: _encoding(encoder) for name, (_, encoder) in list(self._pictures.items())}

    def _video_encoder(self, name: str) -> Any:
        from streaming.encoding import VideoEncoder

        source = self.sources.get(name)
        if source is None:
            raise Failed(f"source {name!r} is not one of this room's sources ({', '.join(self.sources)})")
        kind = self.kinds.get(name, "")
        video = self.config.video_for(name, kind)
        # On a busy PC the screen keeps its sharpness (loses frames first), a camera its motion (loses size first).
        sharp = kind == "screen" or name == "courseware"
        bitrate = video.bitrate_kbps * 1000
        adapt = self.config.adapt
        return VideoEncoder(
            source, size=video.size, fps=video.fps, bitrate=bitrate, prefer="fps" if sharp else "size", adapt=adapt
        )

    def _audio_encoder(self) -> Any:
        from streaming.encoding import AudioEncoder

        encoder = AudioEncoder(AUDIO, self._sound())
        encoder.mute(self.muted)
        return encoder

    def _sound(self) -> Any:
        """The room's sound: a tone, the PC's microphone or a camera's (see `LessonConfig.audio`)."""
        audio = self.config.audio
        if audio.startswith("tone"):
            from streaming.synthetic import ToneSource

            return ToneSource(float(audio.partition(":")[2] or 440.0))
        from streaming.audio import AudioFeed

        feed = AudioFeed()
        if audio == "mic" or audio.startswith("mic:"):
            from streaming.capture import MicrophoneSource

            mic = MicrophoneSource("lesson-mic", audio.partition(":")[2] or "default")
            mic.audio = feed
            mic.start()
            self._release_audio = mic.stop
            return feed
        camera = self.sources.get(audio)
        if camera is None or getattr(camera, "audio", "absent") is not None:
            raise Failed(f"lesson.audio: the sound of {audio!r} is not free (is a recording using it?)")
        camera.audio = feed  # type: ignore[attr-defined]
        return feed

    def sends_audio(self) -> bool:
        """Whether the room sends sound at all."""
        return self.config.audio != "none"

    def close(self) -> None:
        """Stop every encoder and let go of the microphone (blocking: call from a worker thread)."""
        encoders, self._encoders = list(self._encoders.values()), {}
        encoders += [encoder for _, encoder in self._pictures.values()] + self._retired
        self._pictures, self._retired = {}, []
        for encoder in encoders:
            encoder.close()
        release, self._release_audio = self._release_audio, lambda: None
        release()


def _encoding(encoder: Any) -> dict[str, Any]:
    """One encoder's frames, links and level (a sound encoder has no level)."""
    stats = encoder.stats()
    level = stats.get("level")
    out = {"frames_encoded": stats.get("frames_encoded"), "links": stats.get("subscribers")}
    return out | (level if isinstance(level, dict) else {})
