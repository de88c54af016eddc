"""Sans-IO signalling decisions: what this room does with one incoming ``rtc`` message.

`decide(state, incoming)` judges an offer, a join, a hello or a reply to one of our offers
against a frozen `State` (who this room is, the lesson on now, whom it trusts, whom the
timetable names, which peers it keeps) and returns the actions for the service to carry out:
answer, reject with the reason, take in, deliver to a peer, leave, or ignore.  No clock (the
state carries the time for the replies), no broker, no WebRTC: every rule is testable with plain
values.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from agent.config.lesson import trusts
from contract.rtc import RtcMessage


@dataclass(frozen=True, slots=True)
class LessonNow:
    """The lesson this room is in: led here (role main) or led by `main` of `main_site` (role remote)."""

    id: str
    mode: str
    role: str  # main | remote
    main: str = ""
    main_site: str = ""
    connected: bool = False  # role remote: the session with the leader has been up


@dataclass(frozen=True, slots=True)
class State:
    """What this room knows when a message arrives."""

    me: str  # this agent's id
    site: str
    room: str  # the room's name, for a here
    now: str  # ISO 8601 UTC: the time replies carry
    trusted: tuple[str, ...] = ()  # lesson.trusted: agent ids, or site/agent
    remotes: tuple[str, ...] = ()  # lesson.remotes
    sites: Mapping[str, str] = field(default_factory=dict)  # lesson.sites: agent id -> its site, when not ours
    timetable_main: bool = False  # the timetable names the sender main of the lesson on now
    lesson: LessonNow | None = None
    peers: Mapping[str, int] = field(default_factory=dict)  # remote classrooms kept now -> their latest offer's seq
    joining: frozenset[str] = frozenset()  # leaders a lesson.join waits on

    def trusts(self, site: str, agent: str) -> bool:
        """Whether an offer from `agent` of `site` is answered (lesson.trusted)."""
        return trusts(self.trusted, site, agent)

    def site_of(self, agent: str) -> str:
        """The site `agent` belongs to: lesson.sites says when it is not ours."""
        return self.sites.get(agent, self.site)


@dataclass(frozen=True, slots=True)
class Incoming:
    """One signalling message and its sender (the topic names it: the message never does)."""

    site: str
    agent: str
    message: RtcMessage


@dataclass(frozen=True, slots=True)
class Ignore:
    """Do nothing but log why, at `level`."""

    why: str
    level: int = logging.INFO


@dataclass(frozen=True, slots=True)
class Reply:
    """Send `message` to the sender (a here answering its hello)."""

    message: RtcMessage


@dataclass(frozen=True, slots=True)
class Reject:
    """Refuse the message with `message` (a reject carrying the reason); audited as `audit` unless ""."""

    message: RtcMessage
    audit: str = ""


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer the sender's offer (this room takes part in its lesson)."""


@dataclass(frozen=True, slots=True)
class Heard:
    """Keep the sender's here (presence)."""


@dataclass(frozen=True, slots=True)
class Kick:
    """Offer to the sender again now: it asked to join the lesson it is already kept in."""


@dataclass(frozen=True, slots=True)
class TakeIn:
    """Take the sender into the lesson this room leads; it said it sends `sends`."""

    sends: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand the message to the sender's peer (an answer or reject to our offer, its bye or leave)."""


@dataclass(frozen=True, slots=True)
class Refused:
    """The leader a lesson.join waits on refused it."""

    reason: str


@dataclass(frozen=True, slots=True)
class Leave:
    """Leave the lesson this room takes part in, without telling the leader (it ended the lesson)."""

    reason: str


Action = Ignore | Reply | Reject | Answer | Heard | Kick | TakeIn | Deliver | Refused | Leave


def decide(state: State, incoming: Incoming) -> tuple[Action, ...]:
    """What to do with `incoming`, given `state`."""
    kind = incoming.message.type
    if kind in ("hello", "here"):
        return (_presence(state, incoming),)
    if kind == "offer":
        return (_offer(state, incoming),)
    if kind == "join":
        return (_join(state, incoming),)
    return _reply(state, incoming)


def may_meet(state: State, site: str, agent: str) -> bool:
    """Whether this room would take a lesson from `agent` or lead it: only they learn it is here."""
    ours = agent in state.remotes and site == state.site_of(agent)
    return state.trusts(site, agent) or ours or state.timetable_main


def _presence(state: State, incoming: Incoming) -> Action:
    """A hello is answered (a stranger's is dropped, unaudited: it would flood the log); a here is kept."""
    site, agent, message = incoming.site, incoming.agent, incoming.message
    if not may_meet(state, site, agent):
        why = f"presence: ignored {message.type} from {site}/{agent} (not a classroom this room links)"
        return Ignore(why, logging.DEBUG)
    if message.type == "here":
        return Heard()
    return Reply(here(state, message.seq))


def here(state: State, seq: int) -> RtcMessage:
    """The answer to a hello: this room's name and whether it is free, leading or taking part in a lesson."""
    lesson = state.lesson
    if lesson is None:
        return RtcMessage("here", "", state.now, room=state.room, seq=seq, state="free")
    status, main = ("leading", "") if lesson.role == "main" else ("remote", lesson.main or "?")
    return RtcMessage("here", lesson.id, state.now, lesson.mode, state.room, seq=seq, state=status, main=main)


def _offer(state: State, incoming: Incoming) -> Action:
    """Answered when the sender is trusted (or the timetable's main now) and this room is free for it."""
    site, agent, message = incoming.site, incoming.agent, incoming.message
    if not (state.trusts(site, agent) or state.timetable_main):
        why = (
            f"{state.me} does not trust {site}/{agent} "
            "(not in its lesson.trusted, nor the main of the lesson on its timetable now)"
        )
        return Reject(_reject(state, message.lesson, message.seq, why), "lesson_offer_rejected")
    busy = _busy(state, agent)
    if busy:
        return Reject(_reject(state, message.lesson, message.seq, busy))
    return Answer()


def _busy(state: State, agent: str) -> str:
    """Why a trusted agent's offer cannot be answered now ("" when it can)."""
    lesson = state.lesson
    if lesson is not None and lesson.role == "main":
        return f"{state.me} is leading lesson {lesson.id}"
    if lesson is not None and lesson.connected and lesson.main != agent:
        return f"{state.me} is in lesson {lesson.id} from {lesson.main}"
    return ""


def _join(state: State, incoming: Incoming) -> Action:
    """A remote classroom asks to be taken into the lesson this room leads."""
    site, agent = incoming.site, incoming.agent
    lesson = state.lesson
    if lesson is None or lesson.role != "main":
        return Reject(_reject(state, "", 0, f"{state.me} is not leading a lesson"))
    if agent in state.peers:
        return Kick()
    if not (state.trusts(site, agent) or agent in state.remotes):
        why = f"{state.me} does not take {site}/{agent} into its lessons (lesson.trusted / lesson.remotes)"
        return Reject(_reject(state, lesson.id, 0, why), "lesson_join_refused")
    return TakeIn(incoming.message.sources)


def _reply(state: State, incoming: Incoming) -> tuple[Action, ...]:
    """An answer, reject, bye or leave: for one of our peers, a lesson.join waiting, or the lesson we are in."""
    site, agent, message = incoming.site, incoming.agent, incoming.message
    kind = message.type
    if agent in state.peers and site != state.site_of(agent):
        return (Ignore(f"ignored {kind} from {site}/{agent}: not the room of that name we invited", logging.WARNING),)
    if agent in state.peers:
        if kind in ("answer", "reject") and message.seq not in (state.peers[agent], 0):
            return (Ignore(f"ignored {kind} from {agent} to superseded offer {message.seq}"),)
        return (Deliver(),)
    if kind == "reject" and agent in state.joining:
        return (Refused(message.reason or "rejected"),)
    lesson = state.lesson
    if kind == "bye" and lesson is not None and (site, agent) == (lesson.main_site, lesson.main):
        return (Leave(f"{agent} ended the lesson"),)
    if kind in ("reject", "bye"):
        return (Ignore(f"{kind} from {agent}: {message.reason}"),)
    return ()


def _reject(state: State, lesson: str, seq: int, reason: str) -> RtcMessage:
    return RtcMessage("reject", lesson, state.now, reason=reason, seq=seq)
