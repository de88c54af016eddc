"""The lesson service: live 专递课堂 / 双师 lessons, signalled over MQTT, media over WebRTC.

The service holds at most one lesson: a `LeadingLesson` (``lesson.start``: this is the main
classroom, offering to each remote classroom and keeping every one in the lesson by itself) or a
`JoinedLesson` (this is a remote classroom: it answered an offer from an agent its config
trusts, sends its students camera and sound back and keeps the incoming teacher and courseware
pictures).  `dual_teacher` is the same machinery with one remote.  It routes the lesson
commands and the incoming signalling to that lesson.  Signalling arrives through `on_rtc`
(called on the link's loop: it only queues) and is handled in order by the service's own task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from agent.alarms import Alarms
from agent.commands.table import Failed, Rejected
from agent.config.lesson import LessonConfig
from agent.lesson import decide as signalling
from agent.lesson.busy import watch_encoders
from agent.lesson.health import RefusalLog
from agent.lesson.joined import JoinedLesson, answer_offer
from agent.lesson.leading import LeadingLesson, check_start
from agent.lesson.media import AUDIO, LessonMedia
from agent.lesson.peer import WATCH_S, LessonInfo, Send, Session
from agent.lesson.pictures import Classroom
from agent.lesson.presence import Presence
from agent.lesson.room import SEND_TIMEOUT_S, Room
from contract import now_iso
from contract.errors import BrokerError
from contract.rtc import RtcMessage

log = logging.getLogger(__name__)

INBOX_MAX = 256


class LessonService:
    """One room's part in live lessons: leading one, or taking part in one led elsewhere."""

    def __init__(
        self,
        config: LessonConfig,
        *,
        agent_id: str,
        site: str,
        room: str,
        media: Callable[[], LessonMedia],
        send: Send,
        alarms: Alarms,
        timetable_main: Callable[[str, str], bool] = lambda site, agent: False,
    ) -> None:
        """`media` builds the media stack on first use; `send` delivers signalling to an agent.

        `timetable_main` says whether the timetable names site/agent main of the lesson on now.
        """
        self.room = Room(config, agent_id=agent_id, site=site, room=room, media=media, send=send, alarms=alarms)
        self.config = config
        self.agent_id = agent_id
        self.timetable_main = timetable_main
        self.current: LeadingLesson | JoinedLesson | None = None
        self.presence = Presence(send)  # lesson.peers: needs no media
        self._inbox: asyncio.Queue[tuple[str, str, RtcMessage]] = asyncio.Queue(INBOX_MAX)
        self._tg: asyncio.TaskGroup | None = None
        self._joining: dict[str, asyncio.Future[str]] = {}
        self._ingested: dict[str, Any] = {}  # WHIP name -> its Peer

    @property
    def media(self) -> LessonMedia:
        """The media stack (loaded on first use)."""
        return self.room.media

    @property
    def refusals(self) -> RefusalLog:
        """Refused offers and joins, audited once per agent per while."""
        return self.room.refusals

    @property
    def lesson(self) -> LessonInfo | None:
        """The lesson on now, led here or elsewhere."""
        return self.current.lesson if self.current is not None else None

    def _leading(self) -> LeadingLesson | None:
        return self.current if isinstance(self.current, LeadingLesson) else None

    def _joined(self) -> JoinedLesson | None:
        return self.current if isinstance(self.current, JoinedLesson) else None

    # -- the service -------------------------------------------------------------------

    async def run(self) -> None:
        """Handle signalling and watch the remote session until cancelled; then hang up on everyone."""
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                tg.create_task(self._dispatch(), name=f"lesson[{self.agent_id}].signalling")
                tg.create_task(self._watch_joined(), name=f"lesson[{self.agent_id}].session")
                tg.create_task(watch_encoders(self.room, self._sends), name=f"lesson[{self.agent_id}].encoders")
                try:
                    await asyncio.Event().wait()  # until cancelled
                finally:
                    self._tg = None  # while the group winds down, nothing new starts in it (a late lesson.start)
        finally:
            self._tg = None
            await asyncio.shield(self._hang_up_all())

    def _sends(self) -> tuple[str, ...]:
        lesson = self.lesson
        return lesson.sends if lesson is not None else ()

    async def _hang_up_all(self) -> None:
        with contextlib.suppress(Exception):
            await self._end("agent stopping", tell=True)
            media = self.room.loaded
            if media is not None:
                await asyncio.to_thread(media.close)

    async def _end(self, reason: str, *, tell: bool) -> None:
        """End the lesson on now, whichever side (a leader always says bye; a remote says leave when `tell`).

        The service lets go of the lesson before the first await: a second end finds nothing to end.
        """
        current, self.current = self.current, None
        if isinstance(current, LeadingLesson):
            await current.end(reason)
        elif current is not None:
            await current.end(reason, tell=tell)

    def on_rtc(self, site: str, agent: str, message: RtcMessage) -> None:
        """Signalling from the link (on its loop): queued, never blocking it."""
        if message.type in ("hello", "here"):  # at once: an offer being answered must not hold presence up
            incoming = signalling.Incoming(site, agent, message)
            for action in signalling.decide(self._state(site, agent), incoming):
                work = self._act(incoming, action)
                if work is not None:
                    self._spawn(work)
            return
        try:
            self._inbox.put_nowait((site, agent, message))
        except asyncio.QueueFull:
            log.warning("signalling inbox full: dropped %s from %s", message.type, agent)

    async def _dispatch(self) -> None:
        while True:
            site, agent, message = await self._inbox.get()
            try:
                await self._handle(site, agent, message)
            except Exception:  # one bad message must not end the lesson for everyone
                log.exception("handling %s from %s failed", message.type, agent)

    async def _handle(self, site: str, agent: str, message: RtcMessage) -> None:
        log.info("signalling %s from %s/%s (lesson %s)", message.type, site, agent, message.lesson)
        incoming = signalling.Incoming(site, agent, message)
        for action in signalling.decide(self._state(site, agent), incoming):
            work = self._act(incoming, action)
            if work is not None and message.type == "join":
                self._spawn(work)  # a join is not held up by the reply to the one before
            elif work is not None:
                await work  # an offer is answered (or refused) before the next message is looked at

    def _state(self, site: str, agent: str) -> signalling.State:
        """What the decisions need to know now, for a message from `agent` of `site`."""
        config, current = self.config, self.current
        peers = current.seqs() if isinstance(current, LeadingLesson) else {}
        return signalling.State(
            self.agent_id, self.room.site, self.room.room or self.agent_id, now_iso(),
            config.trusted, config.remotes, config.sites, self.timetable_main(site, agent),
            current.now() if current is not None else None, peers, frozenset(self._joining),
        )  # fmt: skip

    def _act(self, incoming: signalling.Incoming, action: signalling.Action) -> Coroutine[Any, Any, None] | None:
        """Carry out one decision; the I/O it still needs, to await or spawn (None: done)."""
        site, agent, message = incoming.site, incoming.agent, incoming.message
        match action:
            case signalling.Ignore(why, level):
                log.log(level, "%s", why)
            case signalling.Heard():
                self.presence.heard(agent, message)
            case signalling.Reply(reply):
                return self.room.reply(agent, reply)
            case signalling.Reject(reply, audit):
                if audit:
                    self.room.audit_refusal(audit, site, agent, reply.reason)
                log.warning("rejected %s from %s: %s", message.type, agent, reply.reason)
                return self.room.reply(agent, reply)
            case signalling.Answer():
                return self._answer(site, agent, message)
            case signalling.Kick() | signalling.TakeIn() | signalling.Deliver():
                self._lead(agent, message, action)
            case signalling.Refused(reason):
                waiter = self._joining.get(agent)
                if waiter is not None and not waiter.done():
                    waiter.set_result(reason)
            case signalling.Leave(reason):
                return self._end(reason, tell=False)
        return None

    def _lead(
        self, agent: str, message: RtcMessage, action: signalling.Kick | signalling.TakeIn | signalling.Deliver
    ) -> None:
        """A decision for the lesson this room leads (decided on a state saying it leads one)."""
        lesson = self._leading()
        assert lesson is not None
        if isinstance(action, signalling.TakeIn):
            lesson.join(agent, action.sends)
        elif isinstance(action, signalling.Kick):
            lesson.outgoing[agent].kick()
        else:
            lesson.deliver(agent, message)

    # -- leading a lesson --------------------------------------------------------------

    async def start(self, mode: str, remotes: tuple[str, ...], sources: tuple[str, ...]) -> dict[str, Any]:
        """``lesson.start``: lead a lesson to `remotes`, sending `sources` (default: lesson.send)."""
        remotes = remotes or self.config.remotes
        sends = sources or self.config.send
        check_start(mode, remotes, sends, self.agent_id)
        if self.lesson is not None:
            why = f"already in lesson {self.lesson.id} as {self.lesson.role}; lesson.stop first"
            raise Rejected(why, code="lesson_already", params={"role": self.lesson.role})
        if self._tg is None:
            raise Failed("the lesson service is not running")
        for name in (*sends, *((AUDIO,) if self.config.audio != "none" else ())):
            self.media.encoder(name)  # a source that cannot be encoded fails the command, not a peer
        info = LessonInfo(uuid.uuid4().hex[:12], mode, "main", now_iso(), self.room.room, sends)
        lesson = self.current = LeadingLesson(self.room, info, self._tg)
        lesson.maybe_uplink(len(dict.fromkeys(remotes)))
        for remote in dict.fromkeys(remotes):
            lesson.take_in(remote)
        self.room.alarms.log("lesson_start", f"lesson {info.id} ({mode}) to {', '.join(remotes)}", mode=mode)
        return {"lesson": info.id, "mode": mode, "remotes": list(remotes), "sources": list(sends)}

    def _spawn(self, coro: Any) -> None:
        if self._tg is not None:
            self._tg.create_task(coro, name=f"lesson[{self.agent_id}].reply")
        else:
            coro.close()  # not running: nobody to reply for

    async def stop(self) -> dict[str, Any]:
        """``lesson.stop``: end the lesson this room leads (or leave the one it takes part in)."""
        lesson = self.lesson
        if lesson is None:
            raise Rejected("no lesson is running", code="lesson_none")
        if lesson.role == "remote":
            return await self.leave()
        await self._end("lesson.stop", tell=True)
        self.room.alarms.log("lesson_stop", f"lesson {lesson.id} stopped", lesson=lesson.id)
        return {"lesson": lesson.id, "stopped": True}

    # -- taking part in a lesson led elsewhere -----------------------------------------

    async def _answer(self, site: str, agent: str, message: RtcMessage) -> None:
        """Take part in `agent`'s lesson (decided: it is trusted and this room is free for it)."""
        joined = self._joined()
        if joined is not None:
            await joined.close_session()
        answered = await answer_offer(self.room, agent, message)
        if isinstance(answered, str):
            await self.room.reject(agent, message, answered)
            return
        session, answer = answered
        self._begin_joined(site, agent, message, session)
        sends = self.config.answer_with
        await self.room.reply(
            agent, RtcMessage("answer", message.lesson, now_iso(), sdp=answer, seq=message.seq, sources=sends)
        )

    def _begin_joined(self, site: str, agent: str, message: RtcMessage, session: Session) -> None:
        joined = self._joined()
        if joined is not None and joined.takes(agent, message):
            joined.adopt(session)
        else:
            self.current = JoinedLesson(self.room, site, message, agent, session)
        waiter = self._joining.get(agent)
        if waiter is not None and not waiter.done():
            waiter.set_result("")

    async def _watch_joined(self) -> None:
        """Watch the joined lesson's session; a lesson whose leader is gone for good is left."""
        while True:
            await asyncio.sleep(WATCH_S)
            joined = self._joined()
            if joined is None:
                continue
            gone = await joined.watch()
            if gone and self.current is joined:
                await self._end(gone, tell=False)

    async def join(self, main: str) -> dict[str, Any]:
        """``lesson.join``: ask `main` to take this room into its lesson; wait for its offer."""
        if self._tg is None:
            raise Failed("the lesson service is not running")
        leading, joined = self._leading(), self._joined()
        if leading is not None:
            raise Rejected(f"leading lesson {leading.lesson.id}; lesson.stop first")
        if main == self.agent_id:
            raise Rejected(f"main: {main!r} is this room")
        if joined is not None and joined.connected_to(main):
            return {"lesson": joined.lesson.id, "main": main}  # already in it
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._joining[main] = waiter
        try:
            await self._ask_to_join(main, waiter)
        finally:
            self._joining.pop(main, None)
        if waiter.result():
            raise Failed(f"{main} refused: {waiter.result()}")
        return {"lesson": self.lesson.id if self.lesson else "", "main": main}

    async def _ask_to_join(self, main: str, waiter: asyncio.Future[str]) -> None:
        """Send the join; wait for the offer it brings (or a refusal): Failed when neither comes."""
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                join = RtcMessage("join", "", now_iso(), room=self.room.room, sources=self.config.answer_with)
                await self.room.send(main, join)
        except (BrokerError, TimeoutError) as exc:
            raise Failed(f"cannot reach {main}: {str(exc) or 'timed out'}") from None
        try:
            async with asyncio.timeout(self.config.offer_timeout_s * 2):
                await waiter
        except TimeoutError:
            raise Failed(f"{main} sent no offer within {self.config.offer_timeout_s * 2:g} s") from None

    async def leave(self) -> dict[str, Any]:
        """``lesson.leave``: leave the lesson this room takes part in."""
        joined = self._joined()
        if joined is None:
            raise Rejected(
                "not in a lesson led elsewhere" if self.current is None else "leading a lesson: use lesson.stop"
            )
        await self._end("lesson.leave", tell=True)
        return {"lesson": joined.lesson.id, "left": joined.main}

    # -- presence (lesson.peers): hello / here -----------------------------------------

    def candidates(self) -> tuple[str, ...]:
        """The classrooms a lesson may link (lesson.trusted, then lesson.remotes), by agent id."""
        names = (entry.rsplit("/", 1)[-1] for entry in (*self.config.trusted, *self.config.remotes))
        return tuple(name for name in dict.fromkeys(names) if name != self.agent_id)

    async def peers(self) -> dict[str, Any]:
        """``lesson.peers``: each candidate classroom online or not, its room name, free or in a lesson."""
        seen = await self.presence.ask(self.candidates())
        return {"peers": {agent: presence.to_dict() for agent, presence in seen.items()}}

    # -- what the rest of the agent sees -----------------------------------------------

    def ingest(self, name: str, peer: Any) -> None:
        """A browser began sending into this room over WHIP (双师 without a second agent)."""
        self._ingested[name] = peer
        self.room.alarms.log("lesson_ingest", f"WHIP ingest {name!r} started", name=name)

    def ingest_end(self, name: str, peer: Any) -> None:
        """That browser stopped."""
        if self._ingested.get(name) is peer:
            del self._ingested[name]
            self.room.alarms.log("lesson_ingest", f"WHIP ingest {name!r} ended", name=name)

    def sessions(self) -> list[Session]:
        """The lesson's sessions up now (with the remote classrooms, or with the leader)."""
        return self.current.sessions() if self.current is not None else []

    def pictures(self) -> dict[str, Any]:
        """Incoming pictures, as ``<agent>/<source>`` (``whip:<name>/<track>`` from browsers) -> Source."""
        out = {f"{s.agent}/{n}": v for s in self.sessions() for n, v in s.peer.incoming.items()}
        for name, peer in self._ingested.items():
            out |= {f"whip:{name}/{track}": video for track, video in peer.incoming.items()}
        return out

    def classrooms(self) -> list[Classroom]:
        """The lesson's other classrooms in order, with their pictures now (read from the recorder's thread too)."""
        current = self.current
        return current.classrooms() if current is not None else []

    def status(self) -> dict[str, Any]:
        """For lesson.status, the local API and telemetry: mode, id, since, role, peers with their stats."""
        current = self.current
        if current is None:
            return {"active": False}
        lesson, extra = current.lesson, current.status()
        peers = extra.pop("peers")
        media = self.room.loaded
        return {
            "active": True,
            "id": lesson.id,
            "mode": lesson.mode,
            "role": lesson.role,
            "since": lesson.since,
            "sources": list(lesson.sends),
            **extra,
            "muted": media.muted if media is not None else False,
            "relaying": media.relaying() if media is not None else {},
            "peers": peers,
        }
