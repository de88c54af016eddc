"""Publish to and pull from an SFU: Janus's VideoRoom plugin, driven over Janus's HTTP API.

Beyond a few receivers a classroom PC should not feed every remote classroom itself: it
publishes each source once to the SFU (`SfuPublisher`) and receivers pull from there
(`SfuSubscriber`).  Janus 1.1 has no WHIP/WHEP, so we speak its own JSON API: a session, a
handle on ``janus.plugin.videoroom``, synchronous requests (``exists``, ``create``,
``listparticipants``) answered in the POST, asynchronous ones (``join``, ``publish``,
``start``) acknowledged and answered later through the session's long-poll.  The media goes
through our own `streaming.rtc.Peer`, so each source is still encoded exactly once.

Every request has a deadline; every failure, whether Janus refuses (its code and reason) or
cannot be reached, becomes one `SfuError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp

from drivers.backoff import Backoff
from streaming.encoding import AudioEncoder, VideoEncoder
from streaming.errors import StreamingError
from streaming.rtc import IceSettings, Peer, RemoteAudio, RemoteVideo

log = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"
_T = TypeVar("_T")
LONG_POLL_S = 30.0  # Janus answers an idle long-poll with a keepalive after 30 s
KEEPALIVE_S = 25.0  # Janus drops a session after 60 s without a request (session_timeout)


class SfuError(StreamingError):
    """The SFU refused a request or could not be reached; `code` is Janus's error code, if it gave one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Jsep:
    """An SDP offer or answer as Janus carries it."""

    type: str
    sdp: str

    def to_dict(self) -> dict[str, str]:
        """Janus's ``jsep`` object."""
        return {"type": self.type, "sdp": self.sdp}

    @classmethod
    def from_dict(cls, raw: object) -> Jsep:
        """Validate Janus's ``jsep`` object; `SfuError` if it is not an offer or answer with SDP."""
        if not isinstance(raw, dict) or raw.get("type") not in ("offer", "answer") or not raw.get("sdp"):
            raise SfuError(f"SFU sent a malformed jsep: {json.dumps(raw)[:200]}")
        return cls(str(raw["type"]), str(raw["sdp"]))


# --- sans-IO: what Janus's replies mean ---------------------------------------------------------


def check_reply(reply: object, what: str) -> dict[str, Any]:
    """The reply as a dict; `SfuError` with Janus's code and reason if the core or the plugin refused."""
    if not isinstance(reply, dict):
        raise SfuError(f"SFU {what}: not a JSON object: {str(reply)[:200]}")
    if reply.get("janus") == "error":
        error = reply.get("error") or {}
        raise SfuError(f"SFU {what}: Janus error {error.get('code')}: {error.get('reason')}", error.get("code"))
    data = reply.get("plugindata", {}).get("data", {})
    if isinstance(data, dict) and "error_code" in data:
        code = data["error_code"]
        raise SfuError(f"SFU {what}: VideoRoom error {code}: {data.get('error')}", code)
    return reply


def plugin_data(reply: dict[str, Any]) -> dict[str, Any]:
    """The VideoRoom's own answer inside a Janus reply."""
    data = reply.get("plugindata", {}).get("data", {})
    return data if isinstance(data, dict) else {}


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


# --- one Janus session over HTTP ----------------------------------------------------------------


class JanusSession:
    """One Janus session over its HTTP API: requests with deadlines, long-polled events, keepalives."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        """`url` is Janus's HTTP API root, e.g. ``http://sfu.school.lan:8088/janus``."""
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.id = 0
        self._http: aiohttp.ClientSession | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._transactions = itertools.count(1)
        self.hangups: list[str] = []
        self.failures = 0  # event polls failed in a row: Janus is gone (or the network to it) once this grows
        self._webrtc_up: dict[int, asyncio.Event] = {}

    async def __aenter__(self) -> Self:
        """Create the session on Janus and start its long-poll and keepalive loops."""
        self._http = aiohttp.ClientSession()
        try:
            reply = await self._post(self.url, {"janus": "create"}, "create session")
        except BaseException:
            await self._http.close()
            raise
        self.id = int(reply["data"]["id"])
        # The loops never raise (they log and retry), so leaving this group never wraps the
        # caller's own exception in an ExceptionGroup.
        self._tasks = asyncio.TaskGroup()
        await self._tasks.__aenter__()
        name = f"sfu[{self.id}]"
        self._loops = [
            self._tasks.create_task(self._poll(), name=f"{name}.poll"),
            self._tasks.create_task(self._keepalive(), name=f"{name}.keepalive"),
        ]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the loops, destroy the session on Janus (best effort), close the HTTP client."""
        for task in self._loops:
            task.cancel()
        if self._tasks is not None:
            await self._tasks.__aexit__(None, None, None)
        with contextlib.suppress(SfuError):
            await self._post(f"{self.url}/{self.id}", {"janus": "destroy"}, "destroy session")
        if self._http is not None:
            await self._http.close()

    async def attach(self, plugin: str = VIDEOROOM) -> int:
        """Attach to `plugin`; returns the handle id."""
        reply = await self._post(f"{self.url}/{self.id}", {"janus": "attach", "plugin": plugin}, f"attach {plugin}")
        return int(reply["data"]["id"])

    async def message(
        self, handle: int, body: dict[str, Any], jsep: Jsep | None = None
    ) -> tuple[dict[str, Any], Jsep | None]:
        """Send a plugin request; returns its answer (and jsep), waiting for the event if Janus only acks."""
        what = f"{body.get('request')} (room {body.get('room')})"
        label = f"{self.url}: {what}"
        request: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            request["jsep"] = jsep.to_dict()
        transaction = f"t{next(self._transactions)}"
        answer = asyncio.get_running_loop().create_future()
        self._waiting[transaction] = answer
        try:
            reply = await self._post(f"{self.url}/{self.id}/{handle}", request, what, transaction)
            if reply.get("janus") == "ack":
                async with asyncio.timeout(self.timeout_s):
                    reply = check_reply(await answer, label)
        except TimeoutError as exc:
            raise SfuError(f"SFU {label}: no answer within {self.timeout_s:g} s") from exc
        finally:
            del self._waiting[transaction]
        return plugin_data(reply), None if reply.get("jsep") is None else Jsep.from_dict(reply["jsep"])

    async def _post(
        self, url: str, request: dict[str, Any], what: str, transaction: str | None = None
    ) -> dict[str, Any]:
        """POST one request with a deadline; the checked reply."""
        assert self._http is not None
        label = f"{self.url}: {what}"
        request = {**request, "transaction": transaction or f"t{next(self._transactions)}"}
        try:
            async with asyncio.timeout(self.timeout_s), self._http.post(url, json=request) as response:
                if response.status != 200:
                    raise SfuError(f"SFU {label}: HTTP {response.status} {(await response.text())[:200]}")
                reply = await response.json(content_type=None)
        except TimeoutError as exc:
            raise SfuError(f"SFU {label}: no reply within {self.timeout_s:g} s") from exc
        except (aiohttp.ClientError, ValueError) as exc:
            raise SfuError(f"SFU {label}: cannot reach Janus: {exc}") from exc
        return check_reply(reply, label)

    async def _poll(self) -> None:
        """Long-poll the session's events and hand each answer to the request waiting for it."""
        backoff = Backoff(base=0.5, cap=5.0)
        assert self._http is not None
        while True:
            try:
                async with (
                    asyncio.timeout(LONG_POLL_S + self.timeout_s),
                    self._http.get(f"{self.url}/{self.id}", params={"maxev": "10"}) as response,
                ):
                    events = await response.json(content_type=None)
                if isinstance(events, dict):  # a list of events, or an error such as 458 (session expired)
                    check_reply(events, f"{self.url}: session {self.id} events")
            except (TimeoutError, aiohttp.ClientError, ValueError, SfuError) as exc:
                log.warning("SFU %s: session %d: event poll failed: %s", self.url, self.id, exc)
                self.failures += 1
                self._fail_waiting(SfuError(f"SFU {self.url}: lost the event stream: {exc}"))
                await asyncio.sleep(backoff.next_delay())
                continue
            backoff.reset()
            self.failures = 0
            for event in events if isinstance(events, list) else [events]:
                self._dispatch(event)

    def _dispatch(self, event: object) -> None:
        """Route one event: an answer to its waiting request, a hangup to the log."""
        if not isinstance(event, dict):
            return
        waiting = self._waiting.get(str(event.get("transaction")))
        if waiting is not None and not waiting.done() and event.get("janus") in ("event", "error"):
            waiting.set_result(event)
        elif event.get("janus") == "webrtcup":
            self._up(int(event.get("sender", 0))).set()
        elif event.get("janus") == "hangup":
            self.hangups.append(str(event.get("reason", "")))
            log.warning("SFU %s: handle %s hung up: %s", self.url, event.get("sender"), event.get("reason"))

    def _up(self, handle: int) -> asyncio.Event:
        return self._webrtc_up.setdefault(handle, asyncio.Event())

    async def wait_webrtc_up(self, handle: int) -> None:
        """Wait until Janus says the handle's PeerConnection is up (ICE and DTLS done); `SfuError` at the deadline."""
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._up(handle).wait()
        except TimeoutError as exc:
            raise SfuError(f"SFU {self.url}: no WebRTC connection within {self.timeout_s:g} s (ICE/DTLS)") from exc

    def _fail_waiting(self, error: SfuError) -> None:
        for waiting in self._waiting.values():
            if not waiting.done():
                waiting.set_exception(error)

    async def _keepalive(self) -> None:
        """Tell Janus the session is alive, or it times the session out after 60 s."""
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            try:
                await self._post(f"{self.url}/{self.id}", {"janus": "keepalive"}, "keepalive")
            except SfuError as exc:
                log.warning("%s", exc)


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
