"""The PC's power as a service: what ``info`` reports for waking it, kept current while the agent runs.

``info`` carries this PC's network cards, its wake times and its school hours (`agent.power.wake`);
they change now and then (a card gets a new address, a day's first lesson passes, ``schedule.set``),
and `PowerService.run` re-publishes ``info`` when they do, so the retained copy the centre keeps while
the PC sleeps is the latest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from agent.config.power import PowerConfig
from agent.power.nics import detect_nics
from agent.power.wake import school_hours, wake_times
from agent.timetable.model import Timetable
from contract import to_iso
from contract.hours import Window
from contract.power import Nic

log = logging.getLogger(__name__)

REFRESH_S = 60.0
LIMITED_BROADCAST = "255.255.255.255"


class PowerService:
    """The PC's cards and wake times for ``info``; re-publishes ``info`` when they change."""

    def __init__(
        self,
        config: PowerConfig,
        timetable: Callable[[], Timetable],
        publish_info: Callable[[], Awaitable[None]],
        connected: Callable[[], bool],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        detect: Callable[[], tuple[Nic, ...]] = detect_nics,
        refresh_s: float = REFRESH_S,
    ) -> None:
        """`timetable` is the one in force; `publish_info` re-publishes ``info`` while `connected()` (the link's)."""
        self.config = config
        self.timetable = timetable
        self.publish_info = publish_info
        self.connected = connected
        self.clock = clock
        self.detect = detect
        self.refresh_s = refresh_s
        self._reported: tuple[tuple[Nic, ...], tuple[str, ...], tuple[Window, ...]] | None = None
        self._changed = asyncio.Event()

    def nics(self) -> tuple[Nic, ...]:
        """The cards to report: ``[power] mac`` when configured, else the ones found on this PC."""
        if self.config.macs:
            return tuple(Nic("config", mac, "", self.config.broadcast) for mac in self.config.macs)
        return self.detect()

    def wake(self) -> tuple[str, ...]:
        """The instants the centre should wake this PC (none without ``[power] wake_before_min``)."""
        if self.config.wake_before_min is None:
            return ()
        times = wake_times(self.timetable(), self.clock(), self.config.wake_before_min)
        return tuple(to_iso(t) for t in times)

    def hours(self) -> tuple[Window, ...]:
        """The school days' lesson hours still to come (today's until its last lesson ends), for ``info.hours``."""
        return tuple((to_iso(a), to_iso(b)) for a, b in school_hours(self.timetable(), self.clock()))

    def report(self) -> tuple[tuple[Nic, ...], tuple[str, ...], tuple[Window, ...]]:
        """Cards, wake times and school hours for an ``info`` about to be published (remembered, to notice changes)."""
        self._reported = (self.nics(), self.wake(), self.hours())
        return self._reported

    def broadcasts(self) -> list[str]:
        """Where ``power.wake`` without a ``broadcast`` sends: each card's LAN broadcast, else 255.255.255.255."""
        found = [n.broadcast for n in self.detect() if n.broadcast]
        return sorted(set(found)) or [LIMITED_BROADCAST]

    def changed(self) -> None:
        """The timetable changed (``schedule.set`` / ``schedule.clear``): look again now."""
        self._changed.set()

    async def refresh(self) -> bool:
        """Re-publish ``info`` if cards, wake times or hours differ from what it last carried; whether it did.

        Not while the link is down: the next connect publishes ``info`` as it is then.
        """
        if not self.connected() or (self.nics(), self.wake(), self.hours()) == self._reported:
            return False
        await self.publish_info()
        return True

    async def run(self) -> None:
        """Refresh every `refresh_s` and on every timetable change, until cancelled."""
        while True:
            self._changed.clear()
            if await self.refresh():
                log.info("power: info re-published (wake times, school hours or network cards changed)")
            try:
                async with asyncio.timeout(self.refresh_s):
                    await self._changed.wait()
            except TimeoutError:
                pass
