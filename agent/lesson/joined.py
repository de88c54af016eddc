"""The remote classroom's side of a lesson: the leader's offers answered, the session watched, leaving.

The service (`agent.lesson.service`) answers an offer it decided to take (`answer_offer`) and
holds the resulting session in a `JoinedLesson`: a new one when the offer starts a lesson, the
same one when the leader re-offers (after a failed or frozen session, or a restart).  A lesson
whose leader sends no offer for GIVE_UP_OFFERS offer timeouts is left.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agent.commands.table import Failed
from agent.lesson.decide import LessonNow
from agent.lesson.media import AUDIO
from agent.lesson.peer import WATCH_S, LessonInfo, Session, classroom
from agent.lesson.pictures import Classroom
from agent.lesson.room import Room
from agent.lesson.sfu import SfuDownlinkPeer, SfuRoute
from contract import now_iso
from contract.rtc import RtcMessage

log = logging.getLogger(__name__)

GIVE_UP_OFFERS = 6  # a remote classroom leaves a lesson whose leader sent no offer for this many offer timeouts


async def answer_offer(room: Room, agent: str, message: RtcMessage) -> tuple[Session, str] | str:
    """Answer `agent`'s offer: its session and the answer SDP, or why it cannot be answered."""
    config, media = room.config, room.media
    audio = (AUDIO,) if config.audio != "none" else ()
    try:
        peer = media.peer(agent, (*config.answer_with, *audio), receive_video=len(message.sources), receive_audio=1)
    except Failed as exc:
        return f"{room.agent_id} cannot answer: {exc}"
    if message.sfu:  # the leader's pictures come through its SFU (it is trusted: checked before)
        route = SfuRoute(message.sfu, message.sfu_room)
        peer = SfuDownlinkPeer(peer, route, agent, media, room.alarms, config.sfu_timeout_s)
    session = Session(agent, peer, room.alarms, room.rules)
    errors: tuple[type[BaseException], ...] = (TimeoutError, *media.errors)
    try:
        async with asyncio.timeout(config.offer_timeout_s):
            answer = await peer.accept_offer(message.sdp)
    except errors as exc:
        await session.close()
        return f"bad offer: {str(exc) or 'not answered in time'}"
    session.expect = message.sources
    return session, answer


class JoinedLesson:
    """A lesson led elsewhere that this room takes part in: its leader and the session with it."""

    def __init__(self, room: Room, site: str, offer: RtcMessage, main: str, session: Session) -> None:
        """Joined by answering `offer` from `main` of `site` with `session`."""
        self.room = room
        self.main = main  # the leading agent
        self.main_site = site
        self.lesson = LessonInfo(offer.lesson, offer.mode, "remote", now_iso(), offer.room, room.config.answer_with)
        self.session: Session | None = None
        self.session_since = ""
        self.session_state = ""
        self.waiting = 0.0  # seconds without a session (the leader's next offer awaited)
        self.adopt(session)
        room.alarms.log("lesson_join", f"joined lesson {offer.lesson} from {main}", peer=main)

    def adopt(self, session: Session) -> None:
        """The session of the leader's latest offer (the previous one is closed already)."""
        self.session, self.session_state, self.session_since = session, "connecting", now_iso()

    def takes(self, agent: str, message: RtcMessage) -> bool:
        """Whether an offer from `agent` belongs to this lesson (a re-offer) rather than starting another."""
        return self.lesson.id == message.lesson and self.main == agent

    async def close_session(self) -> None:
        """Hang up the session (the leader may offer again)."""
        session, self.session = self.session, None
        if session is not None:
            await session.close()

    async def watch(self) -> str:
        """One look at the session (every WATCH_S): a failed or frozen one is closed; why to leave, or ""."""
        session, room = self.session, self.room
        if session is None:
            self.waiting += WATCH_S
            if self.waiting >= room.config.offer_timeout_s * GIVE_UP_OFFERS:  # the leader is gone for good
                return f"no offer from {self.main} for {self.waiting:.0f} s"
            return ""
        self.waiting = 0.0
        reason = await session.check()
        if session is not self.session:
            return ""
        if reason:
            log.warning("lesson session with %s: %s; waiting for a new offer", self.main, reason)
            message = f"lesson main {self.main}: {reason}"
            room.alarms.raise_("lesson_peer_lost", "warning", message, self.main, {"peer": self.main, "role": "main"})
            self.session_state, self.session_since = "waiting", now_iso()
            await self.close_session()
        elif session.connected and self.session_state != "connected":
            self.session_state, self.session_since = "connected", now_iso()
            room.alarms.clear("lesson_peer_lost", self.main, f"lesson main {self.main} connected")
        return ""

    async def end(self, reason: str, *, tell: bool) -> None:
        """Leave (telling the leader when `tell`) and hang up (the service no longer holds this lesson)."""
        main, lesson = self.main, self.lesson
        self.session_state = ""
        self.room.alarms.clear("lesson_peer_lost", main, "lesson over")
        if tell:  # before closing the session: an agent stopping has little time
            await self.room.reply(main, RtcMessage("leave", lesson.id, now_iso(), reason=reason))
        await self.close_session()
        self.room.alarms.log("lesson_leave", f"left lesson {lesson.id} of {main}: {reason}", peer=main)

    def connected_to(self, main: str) -> bool:
        """Whether this room is in `main`'s lesson with its session up."""
        return self.main == main and self.session_state == "connected"

    def now(self) -> LessonNow:
        """The lesson as the signalling decisions see it: busy for others once its session has been up."""
        lesson, session = self.lesson, self.session
        connected = session is not None and session.connected
        return LessonNow(lesson.id, lesson.mode, lesson.role, self.main, self.main_site, connected)

    def sessions(self) -> list[Session]:
        """The session with the leader, while it is up."""
        return [self.session] if self.session is not None else []

    def classrooms(self) -> list[Classroom]:
        """The leading classroom, with its pictures now."""
        return [classroom(self.main, self.session)]

    def status(self) -> dict[str, Any]:
        """The leader's session with its stats."""
        stats = {"via": "p2p", **(self.session.stats if self.session is not None else {})}
        peers = {self.main: {**stats, "state": self.session_state or "waiting", "since": self.session_since}}
        media = self.room.media
        sending = media.sending((*self.lesson.sends, *((AUDIO,) if media.sends_audio() else ())))
        return {"main": self.main, "peers": peers, "sending": sending}
