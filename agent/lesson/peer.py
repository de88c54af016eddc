"""One peer of a lesson: its WebRTC session, watched, and (on the leading side) re-offered until it answers.

The main classroom runs one `OutgoingPeer` per remote classroom: offer, wait for the answer
within a deadline, watch the session; a session that fails, freezes or goes unanswered is torn
down and offered again after the shared backoff, while the other peers carry on.  A remote
classroom holds one `Session` for the offer it answered and lets the leader re-offer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from agent.alarms import Alarms
from agent.commands.table import Failed
from agent.lesson.health import PeerWatch, WatchRules
from agent.lesson.media import AUDIO, LessonMedia, RtcPeer
from agent.lesson.pictures import Classroom
from agent.lesson.sfu import SfuRoute, SfuUplink
from contract import now_iso
from contract.errors import BrokerError
from contract.rtc import RtcMessage
from drivers.backoff import Backoff

log = logging.getLogger(__name__)

WATCH_S = 1.0
CLOSE_TIMEOUT_S = 5.0
SDP_TIMEOUT_S = 15.0  # ICE gathering happens inside create_offer / accept_offer
MAX_PICTURES = 8  # receive slots offered to one remote classroom at most, whatever it claims to send

Send = Callable[[str, RtcMessage], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class LessonInfo:
    """The lesson a peer belongs to."""

    id: str
    mode: str
    role: str  # main | remote
    since: str
    room: str
    sends: tuple[str, ...]  # local video sources sent to the other side


class Session:
    """One WebRTC session with one agent: its peer, its state and its latest statistics."""

    def __init__(self, agent: str, peer: RtcPeer, alarms: Alarms, rules: WatchRules) -> None:
        """Takes ownership of `peer` (closed by `close`)."""
        self.agent = agent
        self.peer = peer
        self.alarms = alarms
        self.watch = PeerWatch(rules)
        self.expect: tuple[str, ...] = ()  # incoming pictures the other side said it sends
        self.stats: dict[str, Any] = {}
        self.started = time.monotonic()
        self.connected = False
        self.gone = ""  # "bye" or "leave" once the other side hung up

    async def check(self) -> str:
        """Sample the peer once: keyframe requests, alarms; the reason to renegotiate, or ""."""
        state = self.peer.state
        if state in ("failed", "closed"):
            return f"connection {state}"
        with contextlib.suppress(Exception):  # statistics are best effort; the state above is the truth
            async with asyncio.timeout(WATCH_S * 2):
                stats = (await self.peer.stats()).to_dict()
                stats.pop("peer_id", None)
                self.stats = stats | {"pictures": self._pictures()}
        if state != "connected":
            return "" if time.monotonic() - self.started < self.watch.rules.renegotiate_after_s * 2 else "no connection"
        self.connected = True
        loss, rtt = _num(self.stats, "loss"), _num(self.stats, "rtt_ms")
        verdict = self.watch.sample(time.monotonic(), self._frozen(), loss, rtt)
        for name in verdict.keyframe:
            log.info("incoming %s from %s frozen: asking for a keyframe", name, self.agent)
            with contextlib.suppress(Exception):  # the renegotiation that follows does not depend on it
                await self.peer.request_keyframe(name)
        if verdict.degraded:
            message = f"lesson link to {self.agent}: {verdict.detail}"
            self.alarms.raise_("link_degraded", "warning", message, self.agent, _link_params(self.agent, loss, rtt))
        elif verdict.degraded is False:
            self.alarms.clear("link_degraded", self.agent, verdict.detail)
        return verdict.renegotiate

    def _pictures(self) -> dict[str, dict[str, Any]]:
        """Each incoming picture: frames so far, seconds since the newest, the longest it stood still."""
        return {
            name: {
                "frames": picture.frames,
                "still_s": round(picture.frozen_for(), 2),
                "longest_still_s": round(picture.longest_stop, 2),
            }
            for name, picture in list(self.peer.incoming.items())
        }

    def _frozen(self) -> dict[str, float]:
        since_start = time.monotonic() - self.started
        out = {}
        for name in self.expect:
            if name == AUDIO:
                continue
            picture = self.peer.incoming.get(name)
            out[name] = float(picture.frozen_for()) if picture is not None else since_start
        return out

    async def close(self) -> None:
        """Hang up (bounded: a stuck close never holds the lesson)."""
        self.alarms.clear("link_degraded", self.agent)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self.peer.close()


def classroom(agent: str, session: Session | None) -> Classroom:
    """What a recording can see of one classroom: nothing while its session is down."""
    if session is None:
        return Classroom(agent, {}, ())
    return Classroom(agent, dict(session.peer.incoming), session.expect)


def _link_params(agent: str, loss: float | None, rtt: float | None) -> dict[str, object]:
    """``link_degraded``'s params: the peer, its loss in percent and its round trip in ms (when measured)."""
    return {
        "peer": agent,
        "loss_percent": None if loss is None else round(loss * 100, 1),
        "rtt_ms": None if rtt is None else round(rtt),
    }


def _num(stats: dict[str, Any], key: str) -> float | None:
    value = stats.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class OutgoingPeer:
    """The leading side's link to one remote classroom, kept up until `stop`."""

    def __init__(
        self,
        remote: str,
        lesson: LessonInfo,
        media: LessonMedia,
        send: Send,
        alarms: Alarms,
        *,
        watch: WatchRules,
        offer_timeout_s: float,
        expect: tuple[str, ...] = (),
        uplink: Callable[[], SfuUplink | None] = lambda: None,
    ) -> None:
        """`send` delivers signalling; `expect` is what the remote said it sends (if it did); nothing runs yet.

        `uplink` is the lesson's upload to an SFU, if it has one: while it is up, offers send
        nothing themselves and name the SFU instead (the remote pulls from there).
        """
        self.remote = remote
        self.lesson = lesson
        self.media = media
        self.send = send
        self.alarms = alarms
        self.watch = watch
        self.offer_timeout_s = offer_timeout_s
        self.backoff = Backoff(base=1.0, cap=10.0)
        self.state = "offering"
        self.since = now_iso()
        self.reason = ""
        self.attempts = 0
        self.session: Session | None = None
        # One receive slot per picture the remote sends: learnt from its join or its answer.
        self.slots = min(max(1, len(expect)), MAX_PICTURES)
        self._again = False  # the answer asked for more slots: offer again at once
        self._seq = 0
        self._reply: asyncio.Future[RtcMessage] | None = None
        self._kick = asyncio.Event()
        self.left = False
        self.uplink = uplink
        self.via: SfuRoute | None = None  # the SFU the current session's pictures go through (None: this peer)

    def _set(self, state: str, reason: str = "") -> None:
        if state != self.state:
            self.since = now_iso()
        self.state, self.reason = state, reason

    async def run(self) -> None:
        """Offer, watch, re-offer after the backoff; until cancelled or the remote leaves."""
        try:
            while not self.left:
                lost = await self._attempt()
                if self.left:
                    break
                if self._again:
                    log.info("lesson peer %s: %s", self.remote, lost)
                    self._again = False
                    continue
                if self.state != "rejected":  # a refusal stays visible (with its reason) until the next offer
                    self._set("retrying", lost)
                message, params = f"lesson peer {self.remote}: {lost}", {"peer": self.remote, "role": "remote"}
                self.alarms.raise_("lesson_peer_lost", "warning", message, self.remote, params)
                self._kick.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.backoff.next_delay()):
                        await self._kick.wait()  # a join from the remote cuts the wait short
        finally:
            await self._close()
            self.alarms.clear("lesson_peer_lost", self.remote, "left the lesson" if self.left else "lesson ended")

    def kick(self) -> None:
        """Offer again now: the remote asked to join (after a restart it has forgotten any session we hold)."""
        if self.session is not None and self._reply is None:
            self.session.gone = "join"
        self._kick.set()

    @property
    def seq(self) -> int:
        """The latest offer's number: an answer or reject to an earlier one is not delivered (agent.lesson.decide)."""
        return self._seq

    def deliver(self, message: RtcMessage) -> None:
        """An answer or reject to our latest offer, or the remote's bye/leave."""
        if message.type == "leave":
            self.left = True
        if self._reply is not None and not self._reply.done():
            self._reply.set_result(message)
        elif message.type in ("bye", "leave") and self.session is not None:
            self.session.gone = message.type

    async def _attempt(self) -> str:
        """One session: the reason it ended."""
        self.attempts += 1
        self._seq += 1
        self._set("offering")
        uplink = self.uplink()
        self.via = None if uplink is None else await uplink.current()
        sends = () if self.via is not None else (*self.lesson.sends, *self._audio())
        try:
            slots = self.slots
            peer = self.media.peer(self.remote, sends, receive_video=slots, receive_audio=1)
        except Failed as exc:
            self._set("failed", str(exc))
            return str(exc)
        session = self.session = Session(self.remote, peer, self.alarms, self.watch)
        try:
            async with asyncio.timeout(SDP_TIMEOUT_S):
                offer = await peer.create_offer()
            reply = await self._offer(offer)
            if reply.type != "answer":
                self._set("rejected" if reply.type == "reject" else reply.type, reply.reason)
                return f"{reply.type}: {reply.reason or 'no reason given'}"
            if len(reply.sources) > slots and slots < MAX_PICTURES:
                self.slots, self._again = min(len(reply.sources), MAX_PICTURES), True
                return f"answered with {len(reply.sources)} pictures to {slots} slot(s): offering {self.slots}"
            session.expect = (reply.sources or ("students",))[:slots]
            async with asyncio.timeout(SDP_TIMEOUT_S):
                await peer.accept_answer(reply.sdp)
            return await self._watch(session)
        except TimeoutError:
            return self.reason or "timed out"
        except BrokerError as exc:
            return str(exc)
        except self.media.errors as exc:
            return f"bad answer: {exc}"
        except Exception as exc:  # a bug here must cost one attempt, not the lesson
            log.exception("lesson peer %s: attempt %d failed", self.remote, self.attempts)
            return f"error: {exc!r}"
        finally:
            self._reply = None
            await self._close()

    def _audio(self) -> tuple[str, ...]:
        return (AUDIO,) if self.media.sends_audio() else ()

    async def _offer(self, sdp: str) -> RtcMessage:
        """Send the offer; the reply within offer_timeout_s (TimeoutError with the reason set)."""
        self._reply = asyncio.get_running_loop().create_future()
        lesson, via = self.lesson, self.via
        url, room = (via.url, via.room) if via is not None else ("", 0)
        message = RtcMessage(
            "offer", lesson.id, now_iso(), lesson.mode, lesson.room, sdp, seq=self._seq, sources=lesson.sends,
            sfu=url, sfu_room=room,
        )  # fmt: skip
        await self.send(self.remote, message)
        self._set("offered")
        try:
            async with asyncio.timeout(self.offer_timeout_s):
                return await self._reply
        except TimeoutError:
            self._set("no_answer", f"offer {self._seq} unanswered after {self.offer_timeout_s:g} s")
            raise

    async def _watch(self, session: Session) -> str:
        self._set("connecting")
        while True:
            await asyncio.sleep(WATCH_S)
            if session.gone:
                return f"{self.remote} said {session.gone}"
            uplink = self.uplink()
            if uplink is not None and uplink.route != self.via:  # the SFU went down, or is back: offer anew
                self._again = True
                return f"sending through {uplink.route.url if uplink.route else 'this PC, peer to peer'} now"
            reason = await session.check()
            if reason:
                return reason
            if session.connected and self.state != "connected":
                self._set("connected")
                self.backoff.reset()
                self.alarms.clear("lesson_peer_lost", self.remote, f"lesson peer {self.remote} connected")

    async def _close(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            await session.close()

    def status(self) -> dict[str, Any]:
        """State, since, attempts and the latest statistics, for lesson.status and telemetry."""
        stats = self.session.stats if self.session is not None else {}
        out = {**stats, "state": self.state, "since": self.since, "attempts": self.attempts}
        out |= {"via": "sfu", "sfu_room": self.via.room} if self.via is not None else {"via": "p2p"}
        if self.reason:
            out["reason"] = self.reason
        return out
