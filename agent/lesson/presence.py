"""Which classrooms are there: ``hello`` / ``here`` over the signalling channel (``lesson.peers``).

The broker's ACL keeps agents from reading each other's status topics, but each may write
``rtc/<peer>`` and read its own inbox: so a room asks every candidate at once with a ``hello``
and waits up to `wait_s` for the ``here`` answers.  A hello sent less than `cache_s` ago is not
sent again (a page polling the picker must not flood the broker); its answer, or its silence,
stands for that long.  No media: presence never builds the lesson's encoders.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agent.commands.table import Failed
from agent.lesson.peer import Send
from contract import now_iso
from contract.errors import BrokerError
from contract.rtc import RtcMessage

log = logging.getLogger(__name__)

CACHE_S = 5.0
WAIT_S = 2.0


@dataclass(frozen=True, slots=True)
class PeerPresence:
    """One candidate classroom as last heard: online (it answered the latest hello), its room, free or busy."""

    agent: str
    online: bool
    room: str = ""  # the last room name it gave, even when it no longer answers
    state: str = ""  # free / leading / remote (contract_rtc.PRESENCE_STATES); "" when offline
    main: str = ""  # whose lesson it takes part in (state remote)
    mode: str = ""  # that lesson's mode (zhuandi / dual_teacher)

    def to_dict(self) -> dict[str, Any]:
        """For ``lesson.peers`` and the page: ``busy`` is true when it is in a lesson of any kind."""
        busy = self.online and self.state in ("leading", "remote")
        return {
            "online": self.online,
            "room": self.room,
            "state": self.state,
            "busy": busy,
            "main": self.main,
            "mode": self.mode,
        }


class Presence:
    """Asks candidate classrooms whether they are there and keeps their answers for `cache_s`."""

    def __init__(
        self,
        send: Send,
        *,
        cache_s: float = CACHE_S,
        wait_s: float = WAIT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`send` delivers a hello to an agent; `clock` is monotonic seconds."""
        self.send = send
        self.cache_s = cache_s
        self.wait_s = wait_s
        self.clock = clock
        self._asked: dict[str, float] = {}  # agent -> when the latest hello went out
        self._heard: dict[str, tuple[float, RtcMessage]] = {}  # agent -> its latest here, and when
        self._pending: dict[str, asyncio.Future[None]] = {}  # agent -> done when its here arrives
        self._seq = itertools.count(1)

    async def ask(self, agents: Sequence[str]) -> dict[str, PeerPresence]:
        """Each of `agents` as it is now: hellos to those not asked within `cache_s`, answers awaited up to `wait_s`."""
        now = self.clock()
        loop = asyncio.get_running_loop()
        due = [a for a in dict.fromkeys(agents) if now - self._asked.get(a, float("-inf")) >= self.cache_s]
        for agent in due:
            self._asked[agent] = now
            self._pending[agent] = loop.create_future()
        latest = max((self._asked[a] for a in agents if a in self._asked), default=now)
        unsent: list[str] = []
        try:
            async with asyncio.timeout(max(0.0, latest + self.wait_s - now)):
                unsent = [e for e in await asyncio.gather(*(self._hello(a) for a in due)) if e]
                waiting = [f for a in agents if (f := self._pending.get(a)) is not None and not f.done()]
                if waiting:
                    await asyncio.wait(waiting)
        except TimeoutError:
            pass  # those that did not answer in time are reported offline
        if unsent and len(unsent) == len(due):  # this room is the one cut off: "all offline" would mislead
            for agent in due:
                self._asked.pop(agent, None)  # ask again next time
            raise Failed(f"cannot ask the other classrooms: {unsent[0]}")
        return {a: self.seen(a) for a in agents}

    async def _hello(self, agent: str) -> str:
        """Send one hello; the reason when it could not be sent ("" when it went)."""
        try:
            await self.send(agent, RtcMessage("hello", "", now_iso(), seq=next(self._seq)))
        except BrokerError as exc:
            log.warning("presence: %s", exc)
            waiter = self._pending.pop(agent, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)  # nothing to wait for: it cannot answer a hello never sent
            return str(exc)
        return ""

    def heard(self, agent: str, message: RtcMessage) -> bool:
        """A ``here`` from `agent`: kept when this room asked it (False: not asked, ignored)."""
        waiter = self._pending.pop(agent, None)
        if waiter is None:
            log.debug("presence: ignored an unasked here from %s", agent)
            return False
        self._heard[agent] = (self.clock(), message)
        if not waiter.done():
            waiter.set_result(None)
        return True

    def seen(self, agent: str) -> PeerPresence:
        """What is known of `agent` now: online only when it answered the latest hello."""
        heard = self._heard.get(agent)
        if heard is None:
            return PeerPresence(agent, False)
        at, here = heard
        if at < self._asked.get(agent, float("inf")):
            return PeerPresence(agent, False, here.room)
        return PeerPresence(agent, True, here.room, here.state, here.main, here.mode)
