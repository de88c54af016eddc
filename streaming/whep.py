"""WHEP (draft-ietf-wish-whep) egress and WHIP (RFC 9725) ingest as aiohttp handlers.

`POST /whep/<source>` with an SDP offer gets `201 Created`, the answer and a `Location` to
`DELETE` when the viewer leaves; the viewer is one more `Peer` on the source's shared encoder,
so it costs packetising, not encoding.  `POST /whip/<name>` lets a browser send its camera and
microphone into the agent (双师 from nothing but a browser): the received tracks are handed to
`on_ingest(name, peer)` as `RemoteVideo`/`RemoteAudio` (streaming.remote).  `GET /watch/<source>` is a small page
that plays `/whep/<source>`.  aiortc does not trickle, so the answer carries every candidate and
`PATCH` (trickle ICE) is answered 405, as both specifications allow.

The same viewer sessions open without HTTP through `WhepService.open_viewer` and
`WhepService.close_viewer` (the centre relays a dashboard's 巡课 offer over MQTT: commands
``media.watch``/``media.unwatch``): one viewer cap, one set of sessions, the same lifetime.

Browsers: the server's own pages may always use these endpoints; scripts of another site only
when its origin is in `allowed_origins` (e.g. the centre's dashboard for 巡课), since any page
open in the panel's browser can reach the agent on loopback.  Requests without ``Origin`` (the
CLI, another agent) are not a browser's cross-site script.  Who may come in at all (a PIN off
loopback) is the embedding application's middleware's business.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from streaming.encoding import AudioEncoder, VideoEncoder
from streaming.errors import StreamingError
from streaming.ice import IceServer, IceSettings
from streaming.rtc import Peer, RtcError

log = logging.getLogger(__name__)

__all__ = ["MAX_PUBLISHERS", "WHEP_KEY", "Viewer", "WhepRefused", "WhepService", "whep_routes"]

MAX_SDP_BYTES = 64 * 1024
MAX_PUBLISHERS = 4  # WHIP sessions at once (each is decoded here): a browser master teacher or two
_NAME = re.compile(r"[\w.-]{1,64}")
# ICE gathering waits for STUN/TURN servers that do not answer: bounded, so a viewer hears why.
ANSWER_TIMEOUT_S = 20.0
WATCH_PAGE = Path(__file__).with_name("static") / "watch.html"
EXPOSE = {"Access-Control-Expose-Headers": "Location, Link, ETag", "Vary": "Origin"}
PREFLIGHT = {
    # No PATCH: clients that learn trickle support from this list then send complete offers.
    "Access-Control-Allow-Methods": "POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, If-Match",
    "Access-Control-Max-Age": "600",
}
Handler = Callable[[web.Request], Awaitable[web.Response]]


class WhepRefused(StreamingError):
    """A viewer or publisher was not let in; `status` is the HTTP status that says why (404, 413, 400, 503)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Viewer:
    """A viewer session just opened: its id (to close it) and the SDP answer for the viewer."""

    session: str
    answer: str


@dataclass
class _Session:
    """One viewer (WHEP) or one publisher (WHIP)."""

    id: str
    kind: str  # "whep" or "whip"
    name: str  # the source watched, or the name ingested under
    peer: Peer


def _link(url: str, server: IceServer) -> str:
    """One `Link` header value announcing an ICE server, with TURN credentials (RFC 9725 section 4.6)."""
    value = f'<{url}>; rel="ice-server"'
    if server.username:
        value += f'; username="{server.username}"; credential="{server.credential}"; credential-type="password"'
    return value


def _fail(status: int, reason: str) -> web.Response:
    """A plain-text error that says what was wrong."""
    return web.Response(status=status, text=reason + "\n")


def check_offer(offer: str) -> None:
    """WhepRefused (413, 400) for an offer too big or empty to be an SDP offer."""
    size = len(offer.encode("utf-8"))
    if size > MAX_SDP_BYTES:
        raise WhepRefused(413, f"offer is {size} bytes, at most {MAX_SDP_BYTES} (an SDP offer is a few KB)")
    if not offer.strip():
        raise WhepRefused(400, "offer is empty (expected an SDP offer)")


def request_origin(request: web.Request) -> str:
    """The server's own origin as a browser names it (``http://127.0.0.1:8765``)."""
    return f"{request.scheme}://{request.host}".lower()


def origin_refusal(request: web.Request, allowed: Iterable[str]) -> str:
    """Why a browser script from another site may not use this endpoint ("" when it may).

    No ``Origin`` header: not a browser's cross-site script (the CLI, an agent).  The same origin:
    the agent's own pages.  Any other site must be listed: a page open in the panel's browser
    reaches loopback, and must not be able to watch the classroom's cameras.
    """
    origin = request.headers.get("Origin")
    if origin is None or origin.lower() == request_origin(request) or origin.lower() in allowed:
        return ""
    return f"origin {origin!r} may not use WHEP/WHIP here (not this server, not in allowed_origins)"


class WhepService:
    """The WHEP/WHIP sessions of one agent and the aiohttp routes that create and end them."""

    def __init__(
        self,
        video: Callable[[str], VideoEncoder | None],
        ice: IceSettings,
        *,
        audio: Callable[[str], AudioEncoder | None] | None = None,
        on_ingest: Callable[[str, Peer], None] | None = None,
        on_ingest_end: Callable[[str, Peer], None] | None = None,
        max_viewers: int = 8,
        max_publishers: int = MAX_PUBLISHERS,
        allowed_origins: Iterable[str] = (),
    ) -> None:
        """`video(source)`/`audio(source)` give the shared encoder for a source name, None if unknown.

        At most `max_viewers` WHEP and `max_publishers` WHIP sessions are open (or opening) at once.

        `allowed_origins` (``https://host[:port]``) are the other sites whose scripts may watch or
        publish from a browser; the server's own origin always may.
        """
        self._video = video
        self._audio = audio
        self._ice = ice
        self._on_ingest = on_ingest
        self._on_ingest_end = on_ingest_end
        self.max_viewers = max_viewers
        self.max_publishers = max_publishers
        self._publishing: set[str] = set()  # names of WHIP sessions being opened: they count already
        self.allowed_origins = frozenset(o.lower().rstrip("/") for o in allowed_origins)
        self.sessions: dict[str, _Session] = {}
        self._opening = 0  # viewers let in whose answer is being made: they count against the cap
        self._closing: set[asyncio.Task[None]] = set()

    def routes(self) -> list[web.RouteDef]:
        """The handlers, to add to an application (`app.add_routes`)."""
        guard = self._guard
        return [
            web.post("/whep/{source}", guard(self.whep_offer)),
            web.options("/whep/{source}", guard(self.preflight)),
            web.delete("/whep/{source}/{session}", guard(self.end)),
            web.patch("/whep/{source}/{session}", guard(self.no_trickle)),
            web.options("/whep/{source}/{session}", guard(self.preflight)),
            web.post("/whip/{source}", guard(self.whip_offer)),
            web.options("/whip/{source}", guard(self.preflight)),
            web.delete("/whip/{source}/{session}", guard(self.end)),
            web.patch("/whip/{source}/{session}", guard(self.no_trickle)),
            web.options("/whip/{source}/{session}", guard(self.preflight)),
            web.get("/watch/{source}", self.watch_page),
        ]

    def _guard(self, handler: Handler) -> Handler:
        """Refuse scripts of sites not allowed; let allowed ones read the answer (CORS)."""

        async def guarded(request: web.Request) -> web.Response:
            refusal = origin_refusal(request, self.allowed_origins)
            if refusal:
                log.warning("%s %s refused: %s", request.method, request.path, refusal)
                return web.Response(status=403, text=refusal + "\n", headers={"Vary": "Origin"})
            response = await handler(request)
            origin = request.headers.get("Origin")
            response.headers.update(EXPOSE)
            if origin is not None:
                response.headers["Access-Control-Allow-Origin"] = origin
            return response

        return guarded

    def attach(self, app: web.Application) -> None:
        """Add the routes to `app` (findable as ``app[WHEP_KEY]``) and close every session when it shuts down."""
        app.add_routes(self.routes())
        app[WHEP_KEY] = self

        async def close_sessions(_: web.Application) -> None:
            await self.close()

        app.on_shutdown.append(close_sessions)

    @property
    def viewers(self) -> int:
        """Open WHEP sessions."""
        return sum(1 for s in self.sessions.values() if s.kind == "whep")

    async def preflight(self, request: web.Request) -> web.Response:
        """CORS preflight: a page of an allowed origin (the centre's) may POST and DELETE."""
        return web.Response(status=204, headers=PREFLIGHT)

    async def no_trickle(self, request: web.Request) -> web.Response:
        """Trickle ICE is not supported: the answer already carries every candidate."""
        return web.Response(status=405, text="trickle ICE is not supported\n", headers={"Allow": "DELETE"})

    async def _read_offer(self, request: web.Request) -> str | web.Response:
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/sdp":
            return _fail(415, f"expected Content-Type application/sdp, got {content_type or 'none'!r}")
        if request.content_length is not None and request.content_length > MAX_SDP_BYTES:
            return _fail(413, f"offer is {request.content_length} bytes, at most {MAX_SDP_BYTES}")
        body = await request.content.read(MAX_SDP_BYTES + 1)
        if len(body) > MAX_SDP_BYTES:
            return _fail(413, f"offer is over {MAX_SDP_BYTES} bytes")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            return _fail(400, "offer is not UTF-8 text")

    async def whep_offer(self, request: web.Request) -> web.Response:
        """A viewer's offer for `source`: 201 with the answer, or 404/413/415/400/503 with the reason."""
        offer = await self._read_offer(request)
        if isinstance(offer, web.Response):
            return offer
        try:
            viewer = await self.open_viewer(request.match_info["source"], offer)
        except WhepRefused as exc:
            return _fail(exc.status, exc.reason)
        return self._created(request, viewer.session, viewer.answer)

    async def open_viewer(self, source: str, offer: str) -> Viewer:
        """Let a viewer of `source` in from its SDP offer (any door); WhepRefused says why not.

        The session ends like an HTTP one: `close_viewer` (or DELETE), the peer failing, or shutdown.
        """
        check_offer(offer)
        if self.viewers + self._opening >= self.max_viewers:
            raise WhepRefused(503, f"already {self.viewers + self._opening} viewers, the limit is {self.max_viewers}")
        video = self._video(source)
        if video is None:
            raise WhepRefused(404, f"no live source {source!r}")
        send: dict[str, VideoEncoder | AudioEncoder] = {source: video}
        sound = self._audio(source) if self._audio is not None else None
        if sound is not None:
            send[f"{source}-audio"] = sound
        session = secrets.token_urlsafe(12)
        peer = Peer(f"whep-{source}-{session}", self._ice, send=send)
        self._opening += 1
        try:
            answer = await self._open(_Session(session, "whep", source, peer), offer)
        finally:
            self._opening -= 1
        return Viewer(session, answer)

    async def close_viewer(self, session_id: str) -> bool:
        """End a viewer session (the viewer left); False when there is no such viewer (already ended?)."""
        session = self.sessions.get(session_id)
        if session is None or session.kind != "whep":
            return False
        await self._end(session_id)
        return True

    def viewer_list(self) -> list[dict[str, str]]:
        """The open viewer sessions: source and connection state (not their ids: those end them)."""
        return [{"source": s.name, "state": s.peer.state} for s in self.sessions.values() if s.kind == "whep"]

    async def whip_offer(self, request: web.Request) -> web.Response:
        """A publisher's offer to send under `name`: 201 with the answer; 409 if the name is taken."""
        name = request.match_info["source"]
        if self._on_ingest is None:
            return _fail(404, "this agent accepts no WHIP ingest")
        if not _NAME.fullmatch(name):
            return _fail(400, f"name {name[:80]!r}: 1 to 64 letters, digits, '_', '-' or '.'")
        publishing = {s.name for s in self.sessions.values() if s.kind == "whip"} | self._publishing
        if name in publishing:
            return _fail(409, f"someone is already publishing as {name!r}")
        if len(publishing) >= self.max_publishers:
            return _fail(503, f"already {len(publishing)} publishers, the limit is {self.max_publishers}")
        self._publishing.add(name)  # before the first await: offers arriving together see each other
        try:
            offer = await self._read_offer(request)
            if isinstance(offer, web.Response):
                return offer
            session = secrets.token_urlsafe(12)
            answer = await self._open(_Session(session, "whip", name, Peer(f"whip-{name}-{session}", self._ice)), offer)
        except WhepRefused as exc:
            return _fail(exc.status, exc.reason)
        finally:
            self._publishing.discard(name)
        return self._created(request, session, answer)

    async def _open(self, session: _Session, offer: str) -> str:
        """Answer the offer and keep the session until it ends; WhepRefused (400) for a bad offer."""
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT_S):
                answer = await session.peer.accept_offer(offer)
        except RtcError as exc:
            await session.peer.close()
            raise WhepRefused(400, f"bad offer: {exc}") from exc
        except TimeoutError as exc:
            await session.peer.close()
            raise WhepRefused(503, f"no answer within {ANSWER_TIMEOUT_S:g} s (ICE servers unreachable?)") from exc
        self.sessions[session.id] = session
        session.peer.on_state(lambda state: self._state(session, state))
        if session.kind == "whip" and self._on_ingest is not None:
            self._on_ingest(session.name, session.peer)
        log.info("%s session %s for %r opened", session.kind, session.id, session.name)
        return answer

    def _created(self, request: web.Request, session_id: str, answer: str) -> web.Response:
        """201 with the answer, the session's `Location` and the ICE servers."""
        # The raw path: a source name may hold an escaped "/" (a received picture, ``room-2%2Fstudents``).
        location = f"{request.raw_path.split('?')[0].rstrip('/')}/{session_id}"
        headers = {"Location": location, "ETag": f'"{session_id}"', "Content-Type": "application/sdp"}
        links = [_link(url, server) for server in self._ice.servers for url in server.urls]
        if links:
            headers["Link"] = ", ".join(links)
        return web.Response(status=201, text=answer, headers=headers)

    def _state(self, session: _Session, state: str) -> None:
        """A peer that failed (or that the remote closed) is forgotten: it frees its slot and its encoder."""
        if state in ("failed", "closed") and session.id in self.sessions:
            task = asyncio.get_running_loop().create_task(
                self._end(session.id), name=f"whep[{session.id}].close-failed"
            )
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def end(self, request: web.Request) -> web.Response:
        """DELETE of a session's Location: the viewer or publisher left."""
        session = self.sessions.get(request.match_info["session"])
        if session is None or session.name != request.match_info["source"]:
            return _fail(404, "no such session (already ended?)")
        await self._end(session.id)
        return web.Response(status=200)

    async def _end(self, session_id: str) -> None:
        session = self.sessions.pop(session_id, None)
        if session is None:
            return
        await session.peer.close()
        if session.kind == "whip" and self._on_ingest_end is not None:
            self._on_ingest_end(session.name, session.peer)
        log.info("%s session %s for %r ended", session.kind, session.id, session.name)

    async def end_watchers(self, source: str) -> int:
        """End every viewer of `source` (its picture is gone); how many there were."""
        ids = [s.id for s in self.sessions.values() if s.kind == "whep" and s.name == source]
        for session_id in ids:
            await self._end(session_id)
        return len(ids)

    async def watch_page(self, request: web.Request) -> web.Response:
        """The page that plays `/whep/<source>` (static: the script reads the source from the URL)."""
        return web.Response(text=WATCH_PAGE.read_text(encoding="utf-8"), content_type="text/html", charset="utf-8")

    async def close(self) -> None:
        """End every session (when the HTTP API stops)."""
        for session_id in list(self.sessions):
            await self._end(session_id)
        for task in list(self._closing):
            task.cancel()


WHEP_KEY = web.AppKey("whep", WhepService)


def whep_routes(
    encoders: Callable[[str], VideoEncoder | None],
    ice: IceSettings,
    *,
    audio: Callable[[str], AudioEncoder | None] | None = None,
    on_ingest: Callable[[str, Peer], None] | None = None,
    max_viewers: int = 8,
    allowed_origins: Iterable[str] = (),
) -> list[web.RouteDef]:
    """The WHEP/WHIP/watch routes of a new `WhepService` (use `WhepService.attach` to also close on shutdown)."""
    service = WhepService(
        encoders, ice, audio=audio, on_ingest=on_ingest, max_viewers=max_viewers, allowed_origins=allowed_origins
    )
    return service.routes()
