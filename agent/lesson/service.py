"""The lesson service: live 专递课堂 / 双师 lessons, signalled over MQTT, media over WebRTC.

The main classroom (`lesson.start`) offers to each remote classroom and keeps every one in the
lesson by itself (see `agent.lesson.peer.OutgoingPeer`).  A remote classroom (`agent.lesson.remote`)
answers offers only from the agents its config trusts, sends its students camera and sound back, and keeps the
incoming teacher and courseware pictures (`pictures`).  `dual_teacher` is the same machinery with
one remote.  Signalling arrives through `on_rtc` (called on the link's loop: it only queues) and
is handled in order by the service's own task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

from agent.alarms import Alarms
from agent.commands.table import Failed, Rejected
from agent.config.lesson import LessonConfig
from agent.lesson.health import RefusalLog, WatchRules
from agent.lesson.media import AUDIO, LessonMedia
from agent.lesson.peer import LessonInfo, OutgoingPeer, Send, Session
from agent.lesson.pictures import Classroom
from agent.lesson.presence import Presence
from agent.lesson.remote import TakingPart
from agent.lesson.sfu import SfuRoute, SfuUplink, lesson_room
from contract import now_iso
from contract.rtc import RtcMessage

log = logging.getLogger(__name__)

INBOX_MAX = 256
REFUSAL_AUDIT_S = 600.0  # one audit event per refused agent per this long (a leader re-offers every few seconds)


class LessonService(TakingPart):
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
        """`media` builds the media stack on first use; `send` delivers signalling to an agent."""
        self.config = config
        self.agent_id = agent_id
        self.site = site
        self.room = room
        self._make_media = media
        self._media: LessonMedia | None = None
        self.send = send
        self.alarms = alarms
        self.timetable_main = timetable_main
        self.rules = WatchRules(
            config.keyframe_after_s,
            config.renegotiate_after_s,
            config.loss_alarm,
            config.rtt_alarm_ms,
            config.degraded_after_s,
        )
        self.lesson: LessonInfo | None = None
        self.outgoing: dict[str, OutgoingPeer] = {}
        self.order: list[str] = []  # the remote classrooms in lesson.start order, then as they joined
        self.refusals = RefusalLog(REFUSAL_AUDIT_S)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.main = ""  # the leading agent, when this room is a remote classroom
        self.main_site = ""
        self.session: Session | None = None
        self.session_since = ""
        self.session_state = ""
        self._inbox: asyncio.Queue[tuple[str, str, RtcMessage]] = asyncio.Queue(INBOX_MAX)
        self._tg: asyncio.TaskGroup | None = None
        self._joining: dict[str, asyncio.Future[str]] = {}
        self._ingested: dict[str, Any] = {}  # WHIP name -> its Peer
        self.uplink: SfuUplink | None = None  # the lesson's one upload to the SFU (lesson.sfu), when it has one
        self._uplink_task: asyncio.Task[None] | None = None
        self.presence = Presence(send)  # lesson.peers: needs no media

    @property
    def media(self) -> LessonMedia:
        """The media stack (loaded on first use)."""
        if self._media is None:
            self._media = self._make_media()
        return self._media

    # -- the service -------------------------------------------------------------------

    async def run(self) -> None:
        """Handle signalling and watch the remote session until cancelled; then hang up on everyone."""
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                tg.create_task(self._dispatch(), name=f"lesson[{self.agent_id}].signalling")
                tg.create_task(self._watch_session(), name=f"lesson[{self.agent_id}].session")
        finally:
            self._tg = None
            await asyncio.shield(self._hang_up_all())

    async def _hang_up_all(self) -> None:
        with contextlib.suppress(Exception):
            if self.lesson is not None and self.lesson.role == "main":
                await self._end_main("agent stopping")
            elif self.lesson is not None:
                await self._end_remote("agent stopping", tell=True)
            if self._media is not None:
                await asyncio.to_thread(self._media.close)

    def on_rtc(self, site: str, agent: str, message: RtcMessage) -> None:
        """Signalling from the link (on its loop): queued, never blocking it."""
        if message.type in ("hello", "here"):  # at once: an offer being answered must not hold presence up
            self._on_presence(site, agent, message)
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
        if message.type == "offer":
            await self._on_offer(site, agent, message)
        elif message.type == "join":
            self._on_join(site, agent, message.sources)
        elif agent in self.outgoing and site != self.config.sites.get(agent, self.site):
            log.warning("ignored %s from %s/%s: not the room of that name we invited", message.type, site, agent)
        elif agent in self.outgoing:
            self.outgoing[agent].deliver(message)
            if message.type == "leave":
                self.alarms.log("lesson_leave", f"{agent} left lesson {message.lesson}", peer=agent)
        elif message.type == "reject" and agent in self._joining:
            if not self._joining[agent].done():
                self._joining[agent].set_result(message.reason or "rejected")
        elif message.type == "bye" and (site, agent) == (self.main_site, self.main):
            await self._end_remote(f"{agent} ended the lesson", tell=False)
        elif message.type in ("reject", "bye"):
            log.info("%s from %s: %s", message.type, agent, message.reason)

    # -- leading a lesson --------------------------------------------------------------

    async def start(self, mode: str, remotes: tuple[str, ...], sources: tuple[str, ...]) -> dict[str, Any]:
        """``lesson.start``: lead a lesson to `remotes`, sending `sources` (default: lesson.send)."""
        remotes = remotes or self.config.remotes
        sends = sources or self.config.send
        _check_start(mode, remotes, sends, self.agent_id)
        if self.lesson is not None:
            raise Rejected(f"already in lesson {self.lesson.id} as {self.lesson.role}; lesson.stop first")
        if self._tg is None:
            raise Failed("the lesson service is not running")
        for name in (*sends, *((AUDIO,) if self.config.audio != "none" else ())):
            self.media.encoder(name)  # a source that cannot be encoded fails the command, not a peer
        self.lesson = LessonInfo(uuid.uuid4().hex[:12], mode, "main", now_iso(), self.room, sends)
        self._maybe_uplink(len(dict.fromkeys(remotes)))
        for remote in dict.fromkeys(remotes):
            self._add_peer(remote)
        self.alarms.log("lesson_start", f"lesson {self.lesson.id} ({mode}) to {', '.join(remotes)}", mode=mode)
        return {"lesson": self.lesson.id, "mode": mode, "remotes": list(remotes), "sources": list(sends)}

    def _add_peer(self, remote: str, sends: tuple[str, ...] = ()) -> None:
        """Keep `remote` in the lesson; `sends` is what it said it sends back, when it said so (a join)."""
        assert self.lesson is not None and self._tg is not None
        peer = OutgoingPeer(
            remote,
            self.lesson,
            self.media,
            self.send,
            self.alarms,
            watch=self.rules,
            offer_timeout_s=self.config.offer_timeout_s,
            expect=sends,
            uplink=lambda: self.uplink,
        )
        self.outgoing[remote] = peer
        if remote not in self.order:
            self.order.append(remote)
        task = self._tg.create_task(self._keep(peer), name=f"lesson[{self.lesson.id}].peer[{remote}]")
        self._tasks[remote] = task

    def _maybe_uplink(self, remotes: int) -> None:
        """Publish the lesson's sources once to the SFU, if one is configured and the lesson is big enough."""
        lesson, config = self.lesson, self.config
        if lesson is None or self._tg is None or self.uplink is not None:
            return
        if not config.sfu or remotes < config.sfu_min_remotes:
            return
        route = SfuRoute(config.sfu, lesson_room(config.sfu_room, lesson.id))
        sends = (*lesson.sends, *((AUDIO,) if self.media.sends_audio() else ()))
        self.uplink = SfuUplink(route, self.agent_id, self.media, sends, self.alarms, config.sfu_timeout_s)
        self._uplink_task = self._tg.create_task(self.uplink.run(), name=f"lesson[{lesson.id}].sfu")

    async def _keep(self, peer: OutgoingPeer) -> None:
        try:
            await peer.run()
        except Exception:  # never let one peer take the service (and every other peer) down
            log.exception("lesson peer %s stopped", peer.remote)
        finally:
            if self.outgoing.get(peer.remote) is peer:
                del self.outgoing[peer.remote]
                self._tasks.pop(peer.remote, None)

    def _on_join(self, site: str, agent: str, sends: tuple[str, ...]) -> None:
        lesson = self.lesson
        if lesson is None or lesson.role != "main":
            message = RtcMessage("join", "", now_iso())
            self._spawn(self._reject(agent, message, f"{self.agent_id} is not leading a lesson"))
            return
        if agent in self.outgoing:
            self.outgoing[agent].kick()
            return
        if not (self.config.trusts(site, agent) or agent in self.config.remotes):
            reason = f"{self.agent_id} does not take {site}/{agent} into its lessons (lesson.trusted / lesson.remotes)"
            self._audit_refusal("lesson_join_refused", site, agent, reason)
            self._spawn(self._reject(agent, RtcMessage("join", lesson.id, now_iso()), reason))
            return
        self.alarms.log("lesson_join", f"{agent} joined lesson {lesson.id}", peer=agent)
        self._maybe_uplink(len(self.order) + 1)
        self._add_peer(agent, sends)

    def _spawn(self, coro: Any) -> None:
        if self._tg is not None:
            self._tg.create_task(coro, name=f"lesson[{self.agent_id}].reply")
        else:
            coro.close()  # not running: nobody to reply for

    async def stop(self) -> dict[str, Any]:
        """``lesson.stop``: end the lesson this room leads (or leave the one it takes part in)."""
        lesson = self.lesson
        if lesson is None:
            raise Rejected("no lesson is running")
        if lesson.role == "remote":
            return await self.leave()
        await self._end_main("lesson.stop")
        self.alarms.log("lesson_stop", f"lesson {lesson.id} stopped", lesson=lesson.id)
        return {"lesson": lesson.id, "stopped": True}

    async def _end_main(self, reason: str) -> None:
        lesson, self.lesson = self.lesson, None
        # `order`, not `outgoing`: on agent stop the peers' tasks are cancelled (and leave `outgoing`) first.
        peers, tasks = list(self.order), list(self._tasks.values())
        tasks += [self._uplink_task] if self._uplink_task is not None else []
        for task in tasks:
            task.cancel()  # no new offer after the bye
        if lesson is not None:  # the bye first: closing the peers takes seconds an agent stopping may not have
            bye = RtcMessage("bye", lesson.id, now_iso(), reason=reason)
            await asyncio.gather(*(self._reply(p, bye) for p in peers))
        await asyncio.gather(*tasks, return_exceptions=True)
        self.outgoing.clear()
        self._tasks.clear()
        self.order.clear()
        self.uplink, self._uplink_task = None, None

    # -- what the rest of the agent sees -----------------------------------------------

    def ingest(self, name: str, peer: Any) -> None:
        """A browser began sending into this room over WHIP (双师 without a second agent)."""
        self._ingested[name] = peer
        self.alarms.log("lesson_ingest", f"WHIP ingest {name!r} started", name=name)

    def ingest_end(self, name: str, peer: Any) -> None:
        """That browser stopped."""
        if self._ingested.get(name) is peer:
            del self._ingested[name]
            self.alarms.log("lesson_ingest", f"WHIP ingest {name!r} ended", name=name)

    def pictures(self) -> dict[str, Any]:
        """Incoming pictures, as ``<agent>/<source>`` (``whip:<name>/<track>`` from browsers) -> Source."""
        sessions = [p.session for p in self.outgoing.values()] + [self.session]
        out = {f"{s.agent}/{n}": v for s in sessions if s is not None for n, v in s.peer.incoming.items()}
        for name, peer in self._ingested.items():
            out |= {f"whip:{name}/{track}": video for track, video in peer.incoming.items()}
        return out

    def classrooms(self) -> list[Classroom]:
        """The lesson's other classrooms in order, with their pictures now (read from the recorder's thread too)."""
        lesson = self.lesson
        if lesson is None:
            return []
        if lesson.role == "remote":
            return [_classroom(self.main, self.session)]
        peers = [(remote, self.outgoing.get(remote)) for remote in list(self.order)]
        return [_classroom(remote, peer.session if peer is not None else None) for remote, peer in peers]

    def status(self) -> dict[str, Any]:
        """For lesson.status, the local API and telemetry: mode, id, since, role, peers with their stats."""
        lesson = self.lesson
        if lesson is None:
            return {"active": False}
        if lesson.role == "main":
            peers = {name: peer.status() for name, peer in self.outgoing.items()}
            extra: dict[str, Any] = {"sending": self._sending()}
            extra |= {"sfu": self.uplink.status()} if self.uplink else {}
        else:
            stats = {"via": "p2p", **(self.session.stats if self.session is not None else {})}
            peers = {self.main: {**stats, "state": self.session_state or "waiting", "since": self.session_since}}
            extra = {"main": self.main}
        return {
            "active": True,
            "id": lesson.id,
            "mode": lesson.mode,
            "role": lesson.role,
            "since": lesson.since,
            "sources": list(lesson.sends),
            **extra,
            "muted": self._media.muted if self._media is not None else False,
            "peers": peers,
        }

    def _sending(self) -> dict[str, Any]:
        """Each sent source's one encoder: frames encoded, and to how many links (peers, the SFU) it goes."""
        assert self.lesson is not None
        out = {}
        for name in (*self.lesson.sends, *((AUDIO,) if self.media.sends_audio() else ())):
            with contextlib.suppress(Failed):
                stats = self.media.encoder(name).stats()
                out[name] = {"frames_encoded": stats.get("frames_encoded"), "links": stats.get("subscribers")}
        return out


def _classroom(agent: str, session: Session | None) -> Classroom:
    """What a recording can see of one classroom: nothing while its session is down."""
    if session is None:
        return Classroom(agent, {}, ())
    return Classroom(agent, dict(session.peer.incoming), session.expect)


def _check_start(mode: str, remotes: tuple[str, ...], sends: tuple[str, ...], me: str) -> None:
    """Rejected naming the argument when a lesson cannot be started as asked."""
    if not remotes:
        raise Rejected("remotes: missing (the remote classrooms' agent ids, or lesson.remotes in the config)")
    if me in remotes:
        raise Rejected(f"remotes: {me!r} is this room")
    if mode == "dual_teacher" and len(remotes) != 1:
        raise Rejected(f"remotes: dual_teacher takes exactly one remote classroom, got {len(remotes)}")
    if not sends:
        raise Rejected("sources: missing (the sources to send, or lesson.send in the config)")

