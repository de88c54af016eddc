"""One Janus session over its HTTP API, and what Janus's replies mean.

A session, handles on plugins, synchronous requests answered in the POST and asynchronous ones
acknowledged and answered later through the session's long-poll, plus the keepalive Janus needs.
Every request has a deadline; every failure, whether Janus refuses (its code and reason) or
cannot be reached, becomes one `SfuError`.  `streaming.sfu` drives the VideoRoom plugin with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import aiohttp

from drivers.backoff import Backoff
from streaming.errors import StreamingError

log = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"
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
