"""Publish to and pull from an SFU: Janus's VideoRoom plugin, driven over Janus's HTTP API.

Beyond a few receivers a classroom PC should not feed every remote classroom itself: it
publishes each source once to the SFU (`SfuPublisher`) and receivers pull from there
(`SfuSubscriber`).  Janus 1.1 has no WHIP/WHEP, so we speak its own JSON API: a session, a
handle on ``janus.plugin.videoroom``, synchronous requests (``exists``, ``create``,
``listparticipants``) answered in the POST, asynchronous ones (``join``, ``publish``,
``start``) acknowledged and answered later through the session's long-poll.  The media goes
through our own `streaming.rtc.Peer`, so each source is still encoded exactly once.

Every request has a deadline; every failure, whether Janus refuses (its code and reason) or
cannot be reached, becomes one `SfuError`.  The session itself is `streaming.janus`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

from streaming.encoding import AudioEncoder, VideoEncoder
from streaming.ice import IceSettings
from streaming.janus import JanusSession, Jsep, SfuError
from streaming.remote import RemoteAudio, RemoteVideo
from streaming.rtc import Peer

_T = TypeVar("_T")


# --- sans-IO: which track is which in an SDP ----------------------------------------------------


def sdp_tracks(sdp: str) -> dict[str, str]:
    """Mid -> track id (the source name, from ``a=msid:<stream> <track>``) for each media section."""
    tracks: dict[str, str] = {}
    for section in re.split(r"^(?=m=)", sdp, flags=re.MULTILINE)[1:]:
        mid = re.search(r"^a=mid:(\S+)", section, re.MULTILINE)
        msid = re.search(r"^a=msid:\S+ (\S+)", section, re.MULTILINE)
        if mid and msid:
            tracks[mid.group(1)] = msid.group(1)
    return tracks


def sections(sdp: str, kind: str = "video") -> int:
    """How many m-lines of `kind` (video, audio) an SDP offers."""
    return len(re.findall(rf"^m={kind} ", sdp, re.MULTILINE))


# --- the VideoRoom: rooms, publishers, subscribers ----------------------------------------------


async def ensure_room(session: JanusSession, handle: int, room: int, *, create: bool, publishers: int = 6) -> None:
    """Make sure VideoRoom `room` exists, creating it (H.264, Opus) if allowed; `SfuError` otherwise."""
    data, _ = await session.message(handle, {"request": "exists", "room": room})
    if data.get("exists"):
        return
    if not create:
        raise SfuError(f"SFU {session.url}: room {room} does not exist", 426)
    body = {"request": "create", "room": room, "publishers": publishers, "videocodec": "h264", "audiocodec": "opus"}
    await session.message(handle, {**body, "description": f"classroom-agent room {room}"})


async def find_publisher(session: JanusSession, handle: int, room: int, display: str, wait_s: float) -> int:
    """The feed id of the publisher named `display` in `room`, waiting up to `wait_s` for it to start."""
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        data, _ = await session.message(handle, {"request": "listparticipants", "room": room})
        present = [p for p in data.get("participants", []) if isinstance(p, dict) and p.get("publisher")]
        for participant in present:
            if participant.get("display") == display:
                return int(participant["id"])
        if asyncio.get_running_loop().time() > deadline:
            names = ", ".join(repr(p.get("display")) for p in present) or "nobody"
            raise SfuError(f"SFU {session.url}: no publisher {display!r} in room {room} (publishing: {names})")
        await asyncio.sleep(0.2)  # a publisher counts once its media is up: the lesson may just be starting


class SfuPublisher:
    """Publishes local sources to a Janus VideoRoom through one Peer: each source is encoded once."""

    def __init__(
        self,
        url: str,
        room: int,
        display: str,
        ice: IceSettings,
        sources: Mapping[str, VideoEncoder | AudioEncoder],
        *,
        create_room: bool = True,
        timeout_s: float = 10.0,
    ) -> None:
        """`display` is how receivers find this publisher in the room; `sources` pictures and sound (Opus)."""
        if not sources:
            raise ValueError(f"SFU publisher {display!r}: no sources to publish")
        self.room, self.display, self.ice, self.sources = room, display, ice, dict(sources)
        self.create_room = create_room
        self.session = JanusSession(url, timeout_s=timeout_s)
        self.feed = 0
        self.peer: Peer | None = None
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Self:
        """Join the room as a publisher and start sending; `SfuError` if Janus refuses."""
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(self.session)
            handle = await self.session.attach()
            await ensure_room(self.session, handle, self.room, create=self.create_room)
            joined, _ = await self.session.message(
                handle, {"request": "join", "ptype": "publisher", "room": self.room, "display": self.display}
            )
            self.feed = int(joined["id"])
            self.peer = Peer(f"sfu-{self.display}", self.ice, send=self.sources)
            stack.push_async_callback(self.peer.close)
            offer = await self.peer.create_offer()
            # Stream descriptions carry our source names to subscribers, whatever Janus does to msid.
            described = [{"mid": mid, "description": name} for mid, name in sdp_tracks(offer).items()]
            body = {"request": "publish", "display": self.display, "descriptions": described}
            configured, answer = await self.session.message(handle, body, Jsep("offer", offer))
            self._check_accepted(configured, answer)
            assert answer is not None
            await self.peer.accept_answer(answer.sdp)
            await self.session.wait_webrtc_up(handle)
            self._stack = stack.pop_all()
        return self

    def _check_accepted(self, configured: dict[str, Any], answer: Jsep | None) -> None:
        """`SfuError` unless Janus answered and kept every stream (it disables a codec the room lacks)."""
        where = f"SFU {self.session.url}: publish in room {self.room}"
        if answer is None:
            raise SfuError(f"{where} gave no SDP answer")
        disabled = [s.get("mid") for s in configured.get("streams", []) if isinstance(s, dict) and s.get("disabled")]
        if disabled:
            allow = "the room must allow H.264 video and Opus sound: videocodec, audiocodec"
            raise SfuError(f"{where}: Janus disabled streams {disabled} ({allow})")

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop sending and leave the room (destroying the session makes Janus drop the publisher)."""
        await self._stack.aclose()


class SfuSubscriber:
    """Pulls one publisher's sources from a Janus VideoRoom: Janus offers, our Peer answers."""

    def __init__(self, url: str, room: int, display: str, ice: IceSettings, *, timeout_s: float = 10.0) -> None:
        """`display` names the publisher to pull (as given to its `SfuPublisher`)."""
        self.room, self.display, self.ice = room, display, ice
        self.session = JanusSession(url, timeout_s=timeout_s)
        self.peer: Peer | None = None
        self.names: dict[str, str] = {}  # our mid -> the publisher's source name
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Self:
        """Subscribe to every stream of the publisher; `SfuError` if the room or the publisher is missing."""
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(self.session)
            handle = await self.session.attach()
            feed = await find_publisher(self.session, handle, self.room, self.display, self.session.timeout_s)
            body = {"request": "join", "ptype": "subscriber", "room": self.room, "streams": [{"feed": feed}]}
            attached, offer = await self.session.message(handle, body)
            if offer is None:
                raise SfuError(f"SFU {self.session.url}: subscribing in room {self.room} gave no SDP offer")
            streams = [s for s in attached.get("streams", []) if isinstance(s, dict)]
            self.names = {str(s.get("mid")): str(s.get("feed_description", s.get("mid"))) for s in streams}
            video, audio = sections(offer.sdp, "video"), sections(offer.sdp, "audio")
            self.peer = Peer(f"sfu-{self.display}-in", self.ice, receive_video=video, receive_audio=audio)
            stack.push_async_callback(self.peer.close)
            answer = await self.peer.accept_offer(offer.sdp)
            await self.session.message(handle, {"request": "start", "room": self.room}, Jsep("answer", answer))
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop receiving and destroy the session."""
        await self._stack.aclose()

    @property
    def incoming(self) -> dict[str, RemoteVideo]:
        """The received pictures by the publisher's source name (Janus renames the tracks themselves)."""
        return self._by_source(self.peer.incoming) if self.peer is not None else {}

    @property
    def incoming_audio(self) -> dict[str, RemoteAudio]:
        """The received sound by the publisher's source name."""
        return self._by_source(self.peer.incoming_audio) if self.peer is not None else {}

    def _by_source(self, tracks: Mapping[str, _T]) -> dict[str, _T]:
        names = self.peer.track_names if self.peer is not None else {}
        return {self.names.get(mid, name): tracks[name] for mid, name in names.items() if name in tracks}

    async def request_keyframe(self, source: str) -> None:
        """Ask for a keyframe of the publisher's `source` (Janus passes the PLI on to the publisher)."""
        if self.peer is None:
            raise SfuError(f"SFU {self.session.url}: not subscribed in room {self.room}")
        track = next((t for mid, t in self.peer.track_names.items() if self.names.get(mid) == source), source)
        await self.peer.request_keyframe(track)
