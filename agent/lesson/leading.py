"""The main classroom's side of a lesson: one `OutgoingPeer` per remote classroom, and the SFU upload.

The service (`agent.lesson.service`) builds a `LeadingLesson` on ``lesson.start`` and drops it
when the lesson ends; each remote classroom is kept in the lesson by its own peer task (see
`agent.lesson.peer.OutgoingPeer`), run in the service's task group so the service's shutdown
cancels them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agent.commands.table import Rejected
from agent.lesson.decide import LessonNow
from agent.lesson.media import AUDIO
from agent.lesson.peer import LessonInfo, OutgoingPeer, Session, classroom
from agent.lesson.pictures import Classroom
from agent.lesson.room import Room
from agent.lesson.sfu import SfuRoute, SfuUplink, lesson_room
from contract import now_iso
from contract.rtc import RtcMessage

log = logging.getLogger(__name__)


class LeadingLesson:
    """A lesson this room leads: its remote classrooms' peers, in order, and its one upload to an SFU."""

    def __init__(self, room: Room, lesson: LessonInfo, tg: asyncio.TaskGroup) -> None:
        """`tg` runs the peers' tasks (the service's task group)."""
        self.room = room
        self.lesson = lesson
        self._tg = tg
        self.outgoing: dict[str, OutgoingPeer] = {}
        self.order: list[str] = []  # the remote classrooms in lesson.start order, then as they joined
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.uplink: SfuUplink | None = None  # the lesson's one upload to the SFU (lesson.sfu), when it has one
        self._uplink_task: asyncio.Task[None] | None = None

    def take_in(self, remote: str, sends: tuple[str, ...] = ()) -> None:
        """Keep `remote` in the lesson; `sends` is what it said it sends back, when it said so (a join)."""
        room = self.room
        peer = OutgoingPeer(
            remote,
            self.lesson,
            room.media,
            room.send,
            room.alarms,
            watch=room.rules,
            offer_timeout_s=room.config.offer_timeout_s,
            expect=sends,
            uplink=lambda: self.uplink,
        )
        self.outgoing[remote] = peer
        if remote not in self.order:
            self.order.append(remote)
        task = self._tg.create_task(self._keep(peer), name=f"lesson[{self.lesson.id}].peer[{remote}]")
        self._tasks[remote] = task

    def maybe_uplink(self, remotes: int) -> None:
        """Publish the lesson's sources once to the SFU, if one is configured and the lesson is big enough."""
        lesson, config, room = self.lesson, self.room.config, self.room
        if self.uplink is not None or not config.sfu or remotes < config.sfu_min_remotes:
            return
        route = SfuRoute(config.sfu, lesson_room(config.sfu_room, lesson.id))
        sends = (*lesson.sends, *((AUDIO,) if room.media.sends_audio() else ()))
        self.uplink = SfuUplink(route, room.agent_id, room.media, sends, room.alarms, config.sfu_timeout_s)
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

    def join(self, agent: str, sends: tuple[str, ...]) -> None:
        """A remote classroom this room takes in asked to join (the service checked it may)."""
        self.room.alarms.log("lesson_join", f"{agent} joined lesson {self.lesson.id}", peer=agent)
        self.maybe_uplink(len(self.order) + 1)
        self.take_in(agent, sends)

    def deliver(self, agent: str, message: RtcMessage) -> None:
        """An answer, reject, bye or leave from one of the lesson's remote classrooms, to its peer."""
        self.outgoing[agent].deliver(message)
        if message.type == "leave":
            self.room.alarms.log("lesson_leave", f"{agent} left lesson {message.lesson}", peer=agent)

    async def end(self, reason: str) -> None:
        """Say bye to every remote classroom and hang up (the service no longer holds this lesson)."""
        # `order`, not `outgoing`: on agent stop the peers' tasks are cancelled (and leave `outgoing`) first.
        peers, tasks = list(self.order), list(self._tasks.values())
        tasks += [self._uplink_task] if self._uplink_task is not None else []
        for task in tasks:
            task.cancel()  # no new offer after the bye
        # the bye first: closing the peers takes seconds an agent stopping may not have
        bye = RtcMessage("bye", self.lesson.id, now_iso(), reason=reason)
        await asyncio.gather(*(self.room.reply(p, bye) for p in peers))
        await asyncio.gather(*tasks, return_exceptions=True)
        self.outgoing.clear()
        self._tasks.clear()
        self.order.clear()
        self.uplink, self._uplink_task = None, None

    def now(self) -> LessonNow:
        """The lesson as the signalling decisions see it."""
        return LessonNow(self.lesson.id, self.lesson.mode, self.lesson.role)

    def seqs(self) -> dict[str, int]:
        """Each remote classroom kept now, with its latest offer's number."""
        return {name: peer.seq for name, peer in self.outgoing.items()}

    def sessions(self) -> list[Session]:
        """The remote classrooms' sessions up now."""
        return [p.session for p in self.outgoing.values() if p.session is not None]

    def classrooms(self) -> list[Classroom]:
        """The remote classrooms in order, with their pictures now (read from the recorder's thread too)."""
        peers = [(remote, self.outgoing.get(remote)) for remote in list(self.order)]
        return [classroom(remote, peer.session if peer is not None else None) for remote, peer in peers]

    def status(self) -> dict[str, Any]:
        """The peers with their stats, what is sent, and the SFU upload."""
        peers = {name: peer.status() for name, peer in self.outgoing.items()}
        extra: dict[str, Any] = {"sending": self._sending()}
        extra |= {"sfu": self.uplink.status()} if self.uplink else {}
        return {"peers": peers, **extra}

    def _sending(self) -> dict[str, Any]:
        """Each sent source's one encoder: frames, links and its level now (see `LessonMedia.sending`)."""
        media = self.room.media
        return media.sending((*self.lesson.sends, *((AUDIO,) if media.sends_audio() else ())))


def check_start(mode: str, remotes: tuple[str, ...], sends: tuple[str, ...], me: str) -> None:
    """Rejected naming the argument when a lesson cannot be started as asked."""
    if not remotes:
        raise Rejected("remotes: missing (the remote classrooms' agent ids, or lesson.remotes in the config)")
    if me in remotes:
        raise Rejected(f"remotes: {me!r} is this room")
    if mode == "dual_teacher" and len(remotes) != 1:
        raise Rejected(f"remotes: dual_teacher takes exactly one remote classroom, got {len(remotes)}")
    if not sends:
        raise Rejected("sources: missing (the sources to send, or lesson.send in the config)")
