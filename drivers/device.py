"""Device(profile, transport): the async API with a lock, a deadline, retries and polling."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from drivers.backoff import Backoff
from drivers.errors import (
    AuthenticationFailed,
    DeviceRejected,
    DeviceTimeout,
    DriverError,
    GarbageReceived,
    TransportError,
    error_code,
)
from drivers.noise import NOISE_LOG_INTERVAL_S, NoiseLog
from drivers.profile_model import Profile
from drivers.protocol.engine import ControllerProtocol, Reply, Request, Unrecognised, is_final
from drivers.transport.base import Transport

log = logging.getLogger(__name__)

# Unanswered requests in a row after which a stream connection is reopened.
SILENT_RECONNECT = 3

# How many of the last unreadable bytes an error carries.
LAST_BYTES = 32

# Reply fields that describe the exchange, not the device.
_NOT_STATE = frozenset({"address", "socket", "error", "command"})


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one command: the final reply and everything that came before it."""

    command: str
    replies: tuple[Reply, ...]

    @property
    def kind(self) -> str:
        """The final reply's kind, or ``sent`` for a command the device never answers."""
        return self.replies[-1].kind if self.replies else "sent"

    @property
    def fields(self) -> dict[str, object]:
        """Every field the replies carried, later replies winning."""
        out: dict[str, object] = {}
        for reply in self.replies:
            out.update(reply.fields)
        return out

    def to_dict(self) -> dict[str, object]:
        """The JSON shape the CLI prints."""
        return {"command": self.command, "kind": self.kind, **self.fields}


@dataclass
class Health:
    """What the device layer knows about the link, for status reports."""

    online: bool = False
    last_error: str = ""
    error_code: str = ""  # what kind of failure last_error is (`drivers.errors.error_code`)
    garbage_bytes: int = 0
    reconnects: int = 0
    state: dict[str, object] = field(default_factory=dict)


class Device:
    """One device behind one transport; calls are serialised by a lock."""

    def __init__(
        self,
        profile: Profile,
        transport: Transport,
        *,
        device_id: str = "",
        retries: int = 2,
        poll_interval: float | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        noise_log_interval: float = NOISE_LOG_INTERVAL_S,
    ) -> None:
        """`retries`: resends of a request with no answer at all; noise is logged once per interval."""
        self.profile = profile
        self.transport = transport
        self.id = device_id or f"{profile.id}@{transport.name}"
        self.retries = retries
        self.poll_interval = profile.poll_interval_s if poll_interval is None else poll_interval
        self._opened_before = False
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.health = Health()
        self._lock = asyncio.Lock()
        self._protocol = ControllerProtocol(profile)
        self._last_send = float("-inf")
        self._silent = 0
        self._noise_log = NoiseLog(log, self.id, interval=noise_log_interval, clock=clock)
        self._dropped_logged = 0

    @property
    def buffered(self) -> int:
        """Received bytes held for a frame still incomplete (the transport's buffer is separate)."""
        return self._protocol.buffered

    async def open(self) -> None:
        """Open the transport; TransportError if the port is not there."""
        try:
            await self.transport.open()
        except TransportError as exc:
            self._offline(exc)
            raise
        self._protocol = ControllerProtocol(self.profile)
        if self._opened_before:
            self.health.reconnects += 1
        self._opened_before = True

    async def close(self) -> None:
        """Close the transport."""
        self._noise_log.flush(force=True)
        await self.transport.close()
        self.health.online = False

    async def __aenter__(self) -> Device:
        """Open on entry."""
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Close on exit."""
        await self.close()

    async def call(self, command: str, args: Mapping[str, object] | None = None) -> Result:
        """Send one command and wait for its final reply.

        Raises ArgumentError (before anything is sent), DeviceRejected (the device's error
        reply), DeviceTimeout, GarbageReceived or TransportError (the port is gone; the next
        call reopens it).
        """
        request = self._protocol.codec.request(command, args or {})
        async with self._lock:
            reused = self.transport.is_open
            if not reused:
                await self._reopen()
            try:
                try:
                    result = await self._exchange(request)
                except TransportError as exc:
                    if not (reused and request.command.retry) or isinstance(exc, AuthenticationFailed):
                        raise
                    # The device closed a connection we had kept (a projector hangs up after 30 s
                    # idle) just as we used it: the request is harmless to repeat on a new one.
                    log.info("%s: connection lost under %s (%s), reconnecting once", self.id, command, exc)
                    await self.transport.close()
                    await self._reopen()
                    result = await self._exchange(request)
            except TransportError as exc:
                self._offline(exc)
                await self.transport.close()
                raise
            except (DeviceTimeout, GarbageReceived) as exc:
                self._offline(exc)
                self._silent += 1
                if self._silent >= SILENT_RECONNECT and self.transport.reconnect_when_silent:
                    # A panel that rebooted leaves a TCP connection that looks open: start afresh.
                    log.info("%s: %d requests unanswered, reconnecting", self.id, self._silent)
                    await self.transport.close()
                raise
        self._silent = 0
        self._online(result)
        return result

    async def _reopen(self) -> None:
        await self.open()
        log.info("%s: port %s open", self.id, self.transport.name)

    async def _exchange(self, request: Request) -> Result:
        spec = request.command
        attempts = 1 + (self.retries if spec.retry else 0)
        garbage = b""
        for attempt in range(attempts):
            stale = self.transport.drain()
            if stale:
                self._noise(stale, "stale bytes before a request")
            await self._keep_gap()
            self._protocol.pending = request
            if attempt == 0:
                await self.transport.write(request.frame)
            else:
                log.info("%s: no answer to %s, sending again (%d/%d)", self.id, spec.name, attempt, attempts - 1)
                await self.transport.resend(request.frame)
            self._last_send = self.clock()
            if not request.expects_reply:
                return Result(spec.name, ())  # a broadcast, or a command the device never answers
            replies, junk = await self._collect(request, spec.timeout_ms / 1000)
            self._last_send = self.clock()  # the gap counts from the end of the exchange
            garbage = (garbage + junk)[-LAST_BYTES:]
            if replies and is_final(replies[-1], spec, self.profile):
                return Result(spec.name, tuple(replies))
            if replies and self.transport.resend_is_same_request and attempt + 1 < attempts:
                continue  # VISCA over IP: the camera answers a resend again without acting twice
            if replies:
                raise DeviceTimeout(
                    f"{spec.name}: got {replies[-1].kind} but no final reply within {spec.timeout_ms} ms",
                    device=self.id,
                    last_bytes=replies[-1].frame,
                )
        if garbage:
            raise GarbageReceived(f"{spec.name}: only unreadable bytes came back", device=self.id, last_bytes=garbage)
        raise DeviceTimeout(f"{spec.name}: no reply within {spec.timeout_ms} ms ({attempts} attempts)", device=self.id)

    async def _collect(self, request: Request, seconds: float) -> tuple[list[Reply], bytes]:
        """Read until a final reply or the deadline; returns the replies and the last noise bytes."""
        replies: list[Reply] = []
        junk = b""
        try:
            async with asyncio.timeout(seconds):
                while True:
                    for event in self._protocol.feed(await self.transport.read()):
                        if isinstance(event, Unrecognised):
                            self._noise(event.frame, event.reason)
                            junk = (junk + event.frame)[-LAST_BYTES:]
                            continue
                        stray = self._stray_completion(event, replies, request)
                        if stray:
                            self._noise(event.frame, stray)
                            continue
                        replies.append(event)
                        if event.kind == "error":
                            raise DeviceRejected(
                                f"{request.command.name}: device answered {event.fields.get('error', event.name)}",
                                code=event.fields.get("error", event.name),
                                device=self.id,
                                last_bytes=event.frame,
                            )
                        if is_final(event, request.command, self.profile):
                            return replies, junk
        except TimeoutError:
            left = self._protocol.flush()
            if left is not None:
                self._noise(left.frame, left.reason)
                junk = (junk + left.frame)[-LAST_BYTES:]
            return replies, junk

    def _stray_completion(self, reply: Reply, so_far: list[Reply], request: Request) -> str:
        """Why a completion is not this command's (VISCA: one per socket, after its ack)."""
        if reply.kind != "completion":
            return ""
        if not any(self.profile.replies[n].kind == "ack" for n in request.command.replies):
            return ""
        acks = [r for r in so_far if r.kind == "ack"]
        if not acks:
            return "completion before our ack (an earlier command's)"
        ours, theirs = acks[-1].fields.get("socket"), reply.fields.get("socket")
        if ours is not None and theirs is not None and ours != theirs:
            return f"completion for socket {theirs}, ours is {ours} (an earlier command's)"
        return ""

    async def _keep_gap(self) -> None:
        gap = self.profile.transport.gap_ms / 1000 - (self.clock() - self._last_send)
        if gap > 0:
            await asyncio.sleep(gap)

    def _noise(self, data: bytes, reason: str) -> None:
        """Count noise; log it truncated, at most once per interval, with what was held back."""
        self.health.garbage_bytes += len(data)
        dropped = self.transport.dropped_bytes - self._dropped_logged
        if self._noise_log.report(data, reason, dropped):
            self._dropped_logged += dropped

    def _online(self, result: Result) -> None:
        if not self.health.online:
            log.info("%s: online", self.id)
        self.health.online = True
        self.health.last_error = self.health.error_code = ""
        self._noise_log.flush()
        self.backoff.reset()
        self.health.state.update({k: v for k, v in result.fields.items() if k not in _NOT_STATE})

    def _offline(self, error: DriverError) -> None:
        reason = str(error)
        if self.health.online:
            log.warning("%s: offline: %s", self.id, reason)
        self.health.online = False
        self.health.last_error = reason
        self.health.error_code = error_code(error)

    async def poll(self) -> dict[str, object]:
        """Run the profile's poll commands once; returns the state they report.

        A rejected query leaves the others running; a dead link raises.
        """
        for command in self.profile.poll_commands:
            try:
                await self.call(command)
            except DeviceRejected as exc:
                log.info("%s: %s", self.id, exc)
        return dict(self.health.state)

    async def run(self, on_update: Callable[[Health], Awaitable[None]] | None = None) -> None:
        """Poll forever at the profile's interval, reconnecting with backoff; cancel to stop."""
        while True:
            try:
                if not self.transport.is_open:
                    await self._reopen()
                await self.poll()
                delay = self.poll_interval
            except (TransportError, DeviceTimeout, GarbageReceived) as exc:
                self._offline(exc)
                delay = self.backoff.next_delay()
            if on_update is not None:
                await on_update(self.health)
            await asyncio.sleep(delay)
