"""The remote classroom's side of a lesson: answer the leader's offers, join, leave, watch the session.

A part of `agent.lesson.service.LessonService` (a base class of it, sharing its state) kept in a module
of its own for size: the leading side lives in `agent.lesson.service`, one peer in `agent.lesson.peer`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from agent.alarms import Alarms
from agent.commands.table import Failed, Rejected
from agent.config.lesson import LessonConfig
from agent.lesson.health import RefusalLog, WatchRules
from agent.lesson.media import AUDIO, LessonMedia
from agent.lesson.peer import WATCH_S, LessonInfo, Send, Session
from agent.lesson.presence import Presence
from agent.lesson.sfu import SfuDownlinkPeer, SfuRoute
from contract import now_iso
from contract.errors import BrokerError
from contract.rtc import RtcMessage

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 5.0
GIVE_UP_OFFERS = 6  # a remote classroom leaves a lesson whose leader sent no offer for this many offer timeouts


class TakingPart(ABC):
    """Taking part in a lesson led elsewhere, and the signalling replies both sides send."""

    config: LessonConfig
    agent_id: str
    site: str
    room: str
    alarms: Alarms
    rules: WatchRules
    send: Send
    refusals: RefusalLog
    lesson: LessonInfo | None
    main: str  # the leading agent, when this room is a remote classroom
    main_site: str
    session: Session | None
    session_since: str
    session_state: str
    _joining: dict[str, asyncio.Future[str]]
    timetable_main: Callable[[str, str], bool]  # whether the timetable names site/agent main of the lesson on now
    _tg: asyncio.TaskGroup | None
    presence: Presence

    @property
    @abstractmethod
    def media(self) -> LessonMedia:
        """The media stack (`LessonService` loads it on first use)."""

    @abstractmethod
    def _spawn(self, coro: Any) -> None:
        """Run `coro` as a task of the running service."""

    # -- presence (lesson.peers): hello / here ---------------------------------------------

    def candidates(self) -> tuple[str, ...]:
        """The classrooms a lesson may link (lesson.trusted, then lesson.remotes), by agent id."""
        names = (entry.rsplit("/", 1)[-1] for entry in (*self.config.trusted, *self.config.remotes))
        return tuple(name for name in dict.fromkeys(names) if name != self.agent_id)

    async def peers(self) -> dict[str, Any]:
        """``lesson.peers``: each candidate classroom online or not, its room name, free or in a lesson."""
        seen = await self.presence.ask(self.candidates())
        return {"peers": {agent: presence.to_dict() for agent, presence in seen.items()}}

    def _may_meet(self, site: str, agent: str) -> bool:
        """Whether this room would take a lesson from `agent` or lead it: only they learn it is here."""
        config = self.config
        ours = agent in config.remotes and site == config.sites.get(agent, self.site)
        return config.trusts(site, agent) or ours or self.timetable_main(site, agent)

    def _on_presence(self, site: str, agent: str, message: RtcMessage) -> None:
        """A hello is answered (a stranger's is dropped, unaudited: it would flood the log); a here is kept."""
        if not self._may_meet(site, agent):
            log.debug("presence: ignored %s from %s/%s (not a classroom this room links)", message.type, site, agent)
        elif message.type == "here":
            self.presence.heard(agent, message)
        else:
            self._spawn(self._reply(agent, self._here(message.seq)))

    def _here(self, seq: int) -> RtcMessage:
        lesson, room = self.lesson, self.room or self.agent_id
        if lesson is None:
            return RtcMessage("here", "", now_iso(), room=room, seq=seq, state="free")
        state, main = ("leading", "") if lesson.role == "main" else ("remote", self.main or "?")
        return RtcMessage("here", lesson.id, now_iso(), lesson.mode, room, seq=seq, state=state, main=main)

    async def _reply(self, agent: str, message: RtcMessage) -> None:
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await self.send(agent, message)
        except BrokerError as exc:
            log.warning("%s", exc)
        except TimeoutError:
            log.warning("cannot send %s to %s: no acknowledgement within %g s", message.type, agent, SEND_TIMEOUT_S)

    async def _reject(self, agent: str, message: RtcMessage, reason: str) -> None:
        log.warning("rejected %s from %s: %s", message.type, agent, reason)
        await self._reply(agent, RtcMessage("reject", message.lesson, now_iso(), reason=reason, seq=message.seq))

    def _audit_refusal(self, kind: str, site: str, agent: str, reason: str) -> None:
        """Audit a refusal once per agent per REFUSAL_AUDIT_S, counting those in between (they re-offer)."""
        count = self.refusals.note(f"{kind} {site}/{agent}", time.monotonic())
        if count:
            again = f" ({count} times since the last report)" if count > 1 else ""
            self.alarms.log(kind, f"{reason}{again}", peer=agent, site=site, reason=reason, count=count)

    async def _on_offer(self, site: str, agent: str, message: RtcMessage) -> None:
        if not (self.config.trusts(site, agent) or self.timetable_main(site, agent)):
            refusal = (
                f"{self.agent_id} does not trust {site}/{agent} "
                "(not in its lesson.trusted, nor the main of the lesson on its timetable now)"
            )
            self._audit_refusal("lesson_offer_rejected", site, agent, refusal)
            await self._reject(agent, message, refusal)
            return
        busy = self._busy(agent)
        if busy:
            await self._reject(agent, message, busy)
            return
        await self._close_session()
        sends = self.config.answer_with
        audio = (AUDIO,) if self.config.audio != "none" else ()
        try:
            peer = self.media.peer(agent, (*sends, *audio), receive_video=len(message.sources), receive_audio=1)
        except Failed as exc:
            await self._reject(agent, message, f"{self.agent_id} cannot answer: {exc}")
            return
        if message.sfu:  # the leader's pictures come through its SFU (it is trusted: checked above)
            route = SfuRoute(message.sfu, message.sfu_room)
            peer = SfuDownlinkPeer(peer, route, agent, self.media, self.alarms, self.config.sfu_timeout_s)
        session = Session(agent, peer, self.alarms, self.rules)
        errors: tuple[type[BaseException], ...] = (TimeoutError, *self.media.errors)
        try:
            async with asyncio.timeout(self.config.offer_timeout_s):
                answer = await peer.accept_offer(message.sdp)
        except errors as exc:
            await session.close()
            await self._reject(agent, message, f"bad offer: {str(exc) or 'not answered in time'}")
            return
        self._begin_remote(site, agent, message, session)
        reply = RtcMessage("answer", message.lesson, now_iso(), sdp=answer, seq=message.seq, sources=sends)
        await self._reply(agent, reply)

    def _busy(self, agent: str) -> str:
        """Why a trusted agent's offer cannot be answered now ("" when it can)."""
        lesson = self.lesson
        if lesson is not None and lesson.role == "main":
            return f"{self.agent_id} is leading lesson {lesson.id}"
        busy = self.session is not None and self.session.connected and self.main != agent
        if lesson is not None and busy:
            return f"{self.agent_id} is in lesson {lesson.id} from {self.main}"
        return ""

    def _begin_remote(self, site: str, agent: str, message: RtcMessage, session: Session) -> None:
        session.expect = message.sources
        self.session, self.session_state, self.session_since = session, "connecting", now_iso()
        if self.lesson is None or self.lesson.id != message.lesson or self.main != agent:
            self.main, self.main_site = agent, site
            self.lesson = LessonInfo(
                message.lesson, message.mode, "remote", now_iso(), message.room, self.config.answer_with
            )
            self.alarms.log("lesson_join", f"joined lesson {message.lesson} from {agent}", peer=agent)
        waiter = self._joining.get(agent)
        if waiter is not None and not waiter.done():
            waiter.set_result("")

    async def _close_session(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            await session.close()

    async def _watch_session(self) -> None:
        """Watch the remote session: a failed or frozen one is closed and the leader's next offer awaited."""
        waiting = 0.0
        while True:
            await asyncio.sleep(WATCH_S)
            session = self.session
            if session is None:
                waiting = waiting + WATCH_S if self.lesson is not None and self.lesson.role == "remote" else 0.0
                if waiting >= self.config.offer_timeout_s * GIVE_UP_OFFERS:  # the leader is gone for good
                    await self._end_remote(f"no offer from {self.main} for {waiting:.0f} s", tell=False)
                continue
            waiting = 0.0
            reason = await session.check()
            if session is not self.session:
                continue
            if reason:
                log.warning("lesson session with %s: %s; waiting for a new offer", self.main, reason)
                self.alarms.raise_("lesson_peer_lost", "warning", f"lesson main {self.main}: {reason}", self.main)
                self.session_state, self.session_since = "waiting", now_iso()
                await self._close_session()
            elif session.connected and self.session_state != "connected":
                self.session_state, self.session_since = "connected", now_iso()
                self.alarms.clear("lesson_peer_lost", self.main, f"lesson main {self.main} connected")

    async def join(self, main: str) -> dict[str, Any]:
        """``lesson.join``: ask `main` to take this room into its lesson; wait for its offer."""
        if self._tg is None:
            raise Failed("the lesson service is not running")
        if self.lesson is not None and self.lesson.role == "main":
            raise Rejected(f"leading lesson {self.lesson.id}; lesson.stop first")
        if main == self.agent_id:
            raise Rejected(f"main: {main!r} is this room")
        if self.lesson is not None and self.main == main and self.session_state == "connected":
            return {"lesson": self.lesson.id, "main": main}  # already in it
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._joining[main] = waiter
        try:
            try:
                async with asyncio.timeout(SEND_TIMEOUT_S):
                    join = RtcMessage("join", "", now_iso(), room=self.room, sources=self.config.answer_with)
                    await self.send(main, join)
            except (BrokerError, TimeoutError) as exc:
                raise Failed(f"cannot reach {main}: {str(exc) or 'timed out'}") from None
            try:
                async with asyncio.timeout(self.config.offer_timeout_s * 2):
                    refused = await waiter
            except TimeoutError:
                raise Failed(f"{main} sent no offer within {self.config.offer_timeout_s * 2:g} s") from None
        finally:
            self._joining.pop(main, None)
        if refused:
            raise Failed(f"{main} refused: {refused}")
        return {"lesson": self.lesson.id if self.lesson else "", "main": main}

    async def leave(self) -> dict[str, Any]:
        """``lesson.leave``: leave the lesson this room takes part in."""
        lesson = self.lesson
        if lesson is None or lesson.role != "remote":
            raise Rejected("not in a lesson led elsewhere" if lesson is None else "leading a lesson: use lesson.stop")
        main = self.main
        await self._end_remote("lesson.leave", tell=True)
        return {"lesson": lesson.id, "left": main}

    async def _end_remote(self, reason: str, *, tell: bool) -> None:
        lesson, main = self.lesson, self.main
        self.lesson, self.main, self.main_site, self.session_state = None, "", "", ""
        self.alarms.clear("lesson_peer_lost", main, "lesson over")
        if lesson is not None and tell:  # before closing the session: an agent stopping has little time
            await self._reply(main, RtcMessage("leave", lesson.id, now_iso(), reason=reason))
        await self._close_session()
        if lesson is not None:
            self.alarms.log("lesson_leave", f"left lesson {lesson.id} of {main}: {reason}", peer=main)
