"""Lessons through an SFU (Janus VideoRoom): the leader's one upload, a remote classroom's download.

With ``lesson.sfu`` set the leading room publishes each of its sources once (`SfuUplink`, the
same shared encoders the peer-to-peer lesson uses) and tells each remote classroom, in its
offer, where to pull them from.  The offer's own SDP then carries only the way back (the
remote's students and sound, peer to peer: encoded once there too).  A remote classroom wraps
that peer in an `SfuDownlinkPeer`, which adds the pictures pulled from the SFU, so the rest of
the agent (watch, pictures, recording) sees one peer as before.  Janus down raises
``sfu_unreachable``; the leader's next offers go peer to peer until its upload is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.alarms import Alarms
from agent.commands.table import Failed
from agent.lesson.media import AUDIO, LessonMedia, RtcPeer
from contract import now_iso
from contract.rtc import SFU_ROOM_MAX
from drivers.backoff import Backoff

if TYPE_CHECKING:
    from streaming.sfu import SfuPublisher, SfuSubscriber

log = logging.getLogger(__name__)

WATCH_S = 1.0
SETTLE_S = 2.0  # beyond the SFU's own deadline: how long a first offer waits for the upload to be up
LOST_AFTER_POLLS = 2  # Janus's event poll failing this many times in a row means Janus is gone
ALARM = "sfu_unreachable"


@dataclass(frozen=True, slots=True)
class SfuRoute:
    """Where a lesson's sources can be pulled from: Janus's HTTP API and the VideoRoom."""

    url: str
    room: int


def lesson_room(configured: int, lesson_id: str) -> int:
    """The VideoRoom of a lesson: ``lesson.sfu_room`` if set, else a number derived from the lesson id."""
    return configured or (zlib.crc32(lesson_id.encode()) % SFU_ROOM_MAX) + 1


class SfuUplink:
    """The leading room's one upload to the SFU, kept up for the whole lesson (re-published after the backoff)."""

    def __init__(
        self,
        route: SfuRoute,
        display: str,
        media: LessonMedia,
        sends: tuple[str, ...],
        alarms: Alarms,
        timeout_s: float,
    ) -> None:
        """`display` names the publisher in the room (this agent's id); nothing runs until `run`."""
        self.target, self.display, self.media, self.sends = route, display, media, sends
        self.alarms, self.timeout_s = alarms, timeout_s
        self.backoff = Backoff(base=1.0, cap=10.0)
        self.state, self.reason, self.since, self.attempts = "connecting", "", now_iso(), 0
        self.publisher: SfuPublisher | None = None
        self.settled = asyncio.Event()  # the first attempt is over, whichever way it went

    @property
    def route(self) -> SfuRoute | None:
        """Where remotes pull from now, or None while the upload is down (offers go peer to peer)."""
        return self.target if self.state == "publishing" else None

    async def current(self) -> SfuRoute | None:
        """The route, after waiting (bounded) for the first attempt: a lesson's first offers should use it."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.timeout_s * 2 + SETTLE_S):
                await self.settled.wait()
        return self.route

    def _set(self, state: str, reason: str = "") -> None:
        if state != self.state:
            self.since = now_iso()
        self.state, self.reason = state, reason

    async def run(self) -> None:
        """Publish, watch, re-publish after the backoff, until cancelled."""
        where = f"SFU {self.target.url} room {self.target.room}"
        try:
            while True:
                self.attempts += 1
                lost = await self._publish()
                self._set("down", lost)
                self.settled.set()
                log.warning("%s: upload lost: %s", where, lost)
                message = f"{where}: {lost} (sending peer to peer)"
                self.alarms.raise_(ALARM, "warning", message, self.target.url, {"fallback": "p2p"})
                await asyncio.sleep(self.backoff.next_delay())
                self._set("connecting", lost)
        finally:
            self.alarms.clear(ALARM, self.target.url, "lesson over")

    async def _publish(self) -> str:
        """One upload: the reason it ended."""
        from streaming.janus import SfuError
        from streaming.rtc import RtcError
        from streaming.sfu import SfuPublisher

        try:
            encoders = {name: self.media.encoder(name) for name in self.sends}
            async with SfuPublisher(
                self.target.url, self.target.room, self.display, self.media.ice(), encoders, timeout_s=self.timeout_s
            ) as publisher:
                self.publisher = publisher
                self._set("publishing")
                self.settled.set()
                self.backoff.reset()
                self.alarms.clear(ALARM, self.target.url, f"publishing to {self.target.url} room {self.target.room}")
                return await _watch(publisher.peer, publisher.session)
        except (SfuError, RtcError, Failed) as exc:
            return str(exc)
        except Exception as exc:  # a bug or a reply we did not foresee costs one attempt, never the lesson
            log.exception("SFU %s: publishing failed", self.target.url)
            return f"error: {exc!r}"
        finally:
            self.publisher = None

    def status(self) -> dict[str, Any]:
        """For lesson.status: the SFU, the room, the upload's state and frames sent."""
        peer = self.publisher.peer if self.publisher is not None else None
        out: dict[str, Any] = {"url": self.target.url, "room": self.target.room, "state": self.state}
        out |= {"since": self.since, "attempts": self.attempts, "frames_sent": peer.frames_sent if peer else 0}
        return out | ({"reason": self.reason} if self.reason else {})


async def _watch(peer: Any, session: Any) -> str:
    """Wait until a publisher's or subscriber's link to Janus breaks; the reason."""
    while True:
        await asyncio.sleep(WATCH_S)
        if peer is not None and peer.state in ("failed", "closed"):
            return f"WebRTC link to the SFU {peer.state}"
        if session.failures >= LOST_AFTER_POLLS:
            return f"SFU {session.url} does not answer (event poll failed {session.failures} times)"
        if session.hangups:
            return f"SFU hung up: {session.hangups[-1]}"


class SfuDownlinkPeer:
    """A remote classroom's peer when the leader sends through an SFU: `inner` (the way back) plus the pull."""

    def __init__(
        self, inner: RtcPeer, route: SfuRoute, leader: str, media: LessonMedia, alarms: Alarms, timeout_s: float
    ) -> None:
        """`leader` is the publisher to pull (the leading agent's id); nothing is pulled until the offer is answered."""
        self.inner, self.target, self.leader, self.media = inner, route, leader, media
        self.alarms, self.timeout_s = alarms, timeout_s
        self.subscriber: SfuSubscriber | None = None
        self.sfu_state, self.reason, self.attempts = "connecting", "", 0
        self._task: asyncio.Task[None] | None = None

    @property
    def incoming(self) -> Mapping[str, Any]:
        """The leader's pictures (from the SFU) and anything arriving peer to peer."""
        pulled = self.subscriber.incoming if self.subscriber is not None else {}
        return {**self.inner.incoming, **pulled}

    @property
    def incoming_audio(self) -> Mapping[str, Any]:
        """The leader's sound (from the SFU) and anything arriving peer to peer."""
        pulled = self.subscriber.incoming_audio if self.subscriber is not None else {}
        return {**getattr(self.inner, "incoming_audio", {}), **pulled}

    @property
    def state(self) -> str:
        """The peer-to-peer link's state (the pull is judged by its pictures, like any incoming picture)."""
        return self.inner.state

    async def create_offer(self) -> str:
        """Never used: a remote classroom answers."""
        return await self.inner.create_offer()

    async def accept_offer(self, sdp: str) -> str:
        """Answer the way back, then start pulling the leader's sources (its own task, ended by `close`)."""
        answer = await self.inner.accept_offer(sdp)
        if self._task is None:
            self._task = asyncio.create_task(self._keep(), name=f"lesson.sfu[{self.leader}].pull")
        return answer

    async def accept_answer(self, sdp: str) -> None:
        """Never used: a remote classroom answers."""
        await self.inner.accept_answer(sdp)

    async def request_keyframe(self, name: str) -> None:
        """A keyframe of a picture pulled from the SFU (Janus relays it to the leader), else peer to peer."""
        subscriber = self.subscriber
        if subscriber is not None and name in subscriber.incoming:
            await subscriber.request_keyframe(name)
        else:
            await self.inner.request_keyframe(name)

    async def stats(self) -> _Stats:
        """The peer-to-peer link's numbers with the pull's frames and rates added, and how the pictures come."""
        out = (await self.inner.stats()).to_dict()
        subscriber = self.subscriber
        if subscriber is not None and subscriber.peer is not None:
            pulled = (await subscriber.peer.stats()).to_dict()
            for key in ("frames_received", "bitrate_in_kbps", "fps_in"):
                out[key] = round(_number(out.get(key)) + _number(pulled.get(key)), 1)
            out["sfu_rtt_ms"] = pulled.get("rtt_ms")
        out |= {"via": "sfu", "sfu": self.target.url, "sfu_room": self.target.room, "sfu_state": self.sfu_state}
        return _Stats(out | ({"sfu_reason": self.reason} if self.reason else {}))

    async def _keep(self) -> None:
        """Pull, watch, pull again after the backoff (Janus restarted, the network came back)."""
        from streaming.janus import SfuError
        from streaming.rtc import RtcError
        from streaming.sfu import SfuSubscriber

        backoff = Backoff(base=1.0, cap=10.0)
        where = f"SFU {self.target.url} room {self.target.room}"
        while True:
            self.attempts += 1
            try:
                async with SfuSubscriber(
                    self.target.url, self.target.room, self.leader, self.media.ice(), timeout_s=self.timeout_s
                ) as subscriber:
                    self.subscriber, self.sfu_state = subscriber, "pulling"
                    backoff.reset()
                    self.alarms.clear(ALARM, self.target.url, f"pulling {self.leader} from {where}")
                    lost = await _watch(subscriber.peer, subscriber.session)
            except (SfuError, RtcError) as exc:
                lost = str(exc)
            except Exception as exc:  # a bug or an unforeseen reply costs one attempt, not the pictures for good
                log.exception("SFU %s: pulling %s failed", self.target.url, self.leader)
                lost = f"error: {exc!r}"
            finally:
                self.subscriber = None
            self.sfu_state, self.reason = "retrying", lost
            log.warning("%s: pulling %s: %s", where, self.leader, lost)
            self.alarms.raise_(ALARM, "warning", f"{where}: {lost}", self.target.url, {"fallback": ""})
            await asyncio.sleep(backoff.next_delay())

    async def close(self) -> None:
        """Stop pulling and hang up the way back."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.alarms.clear(ALARM, self.target.url, "lesson session closed")
        await self.inner.close()


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


class _Stats:
    """`PeerStatsLike` over a ready dict."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def to_dict(self) -> dict[str, Any]:
        """The numbers."""
        return dict(self.values)


def uplink_sends(media: LessonMedia, sends: tuple[str, ...]) -> tuple[str, ...]:
    """What the leader publishes: its video sources and, if it sends sound, the sound."""
    return (*sends, *((AUDIO,) if media.sends_audio() else ()))
