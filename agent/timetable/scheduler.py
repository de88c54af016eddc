"""The timetable scheduler: starts and stops recordings and live lessons and powers displays, through the command table.

It acts on changes of the plan and on start-up, never on every tick, so a teacher who stops a
scheduled recording by hand is not overruled until the next lesson.  Each ``run`` is a start-up
(a supervisor restart re-applies the plan): booted inside a recorded lesson it issues
``record.start`` at once (the recorder continues the lesson into a new segment), unless the
recorder already records that lesson.  When a recorded lesson starts, a different recording still
running (the previous lesson's, or a manual one) is stopped first: the timetable wins.  At the
end of a lesson only the recording the scheduler started or adopted is stopped.  A failed
command is logged and retried at the next tick (recordings for as long as the lesson lasts,
display power ``power_attempts`` times).

Live lessons (``live`` on the timetable) follow the same rules through ``lesson.start`` /
``lesson.stop``: started at the lesson's start (at once when booted inside it), and at its end
only the lesson the scheduler started, or found this room already leading when the timetable's
began (a teacher who started a minute early, or the scheduler's own lesson after a restart of the
scheduler alone), is stopped.  Such a lesson is kept, never restarted: stopping it would cut
every remote classroom off mid-sentence.  Back-to-back live lessons to the same classrooms (连堂)
go on as one lesson.

Broadcasts (``broadcast`` on the timetable) start with the lesson through ``broadcast.start`` (after
its recording, whose encoder a broadcast of the same picture shares) and stop at its end through
``broadcast.stop``, again only the one the scheduler started or adopted; back-to-back lessons to
the same target go on as one push, so the platform's viewers see no break.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.commands.table import Outcome
from agent.timetable.model import Broadcast, Live, Plan, Recording, Timetable, next_change, plan
from contract import CommandStatus

log = logging.getLogger(__name__)

Execute = Callable[[str, Mapping[str, Any]], Awaitable[Outcome]]
Sleep = Callable[[float], Awaitable[Any]]


class _Unknown:
    """What the scheduler believes before it has applied anything (start-up)."""


UNKNOWN = _Unknown()


@dataclass(frozen=True, slots=True)
class _Leading:
    """The timetable's live lesson as applied: the id of the lesson serving it ("" when not told)."""

    live: Live
    id: str


class SchedulerService:
    """Drives record.*, lesson.*, broadcast.* and panel.power from the timetable in force."""

    def __init__(
        self,
        get_timetable: Callable[[], Timetable],
        execute: Execute,
        *,
        clock: Callable[[], datetime],
        is_recording: Callable[[], str | None],
        is_live: Callable[[], str | None] = lambda: None,
        is_broadcasting: Callable[[], str | None] = lambda: None,
        displays: Sequence[str] = (),
        sleep: Sleep = asyncio.sleep,
        max_sleep_s: float = 60.0,
        retry_s: float = 30.0,
        power_attempts: int = 5,
    ) -> None:
        """`is_recording` returns the ``lesson`` argument of the running recording, or None.

        `is_live` returns the id of the live lesson this room leads (``lesson.status``'s ``id`` when
        its ``role`` is ``main``), or None; a lesson led elsewhere does not count.
        `is_broadcasting` returns the target on air, or None.

        `clock` returns an aware datetime (a naive one is read in the timetable's zone).
        `max_sleep_s` bounds every wait, so a clock step (NTP) is noticed within it.
        """
        self.get_timetable = get_timetable
        self.execute = execute
        self.clock = clock
        self.is_recording = is_recording
        self.is_live = is_live
        self.is_broadcasting = is_broadcasting
        self.displays = tuple(displays)
        self.sleep = sleep
        self.max_sleep_s = max_sleep_s
        self.retry_s = retry_s
        self.power_attempts = power_attempts
        self._changed = asyncio.Event()
        self._recording: Recording | None | _Unknown = UNKNOWN
        self._want: Recording | None = None
        self._live: _Leading | None | _Unknown = UNKNOWN
        self._want_live: Live | None = None
        self._broadcast: Broadcast | None | _Unknown = UNKNOWN
        self._want_broadcast: Broadcast | None = None
        self._power: bool | None = None
        self._power_left: dict[str, int] = {}

    def changed(self) -> None:
        """The timetable changed (``schedule.set``): re-plan now."""
        self._changed.set()

    def plan(self) -> Plan:
        """What the timetable in force says should be true now."""
        return plan(self.get_timetable(), self.clock())

    async def run(self) -> None:
        """Plan, act, sleep until the plan changes (or a bounded while), until cancelled."""
        self._recording, self._live, self._power, self._power_left = UNKNOWN, UNKNOWN, None, {}
        self._broadcast = UNKNOWN
        while True:
            self._changed.clear()
            timetable = self.get_timetable()
            now = self.clock()
            await self.tick(timetable, now)
            await self._wait(self._delay(timetable, now))

    async def tick(self, timetable: Timetable, now: datetime) -> None:
        """Bring the room in line with the plan for ``now``; never raises for a failed command."""
        current = plan(timetable, now)
        self._want, self._want_live = current.should_record, current.should_lead
        self._want_broadcast = current.should_broadcast
        # A recording of a live lesson shows the remote classrooms: the lesson is up before the
        # recording starts and still up when it stops.
        if current.should_lead is not None:
            await self._apply_live(current.should_lead)
        if current.should_broadcast is None:
            await self._apply_broadcast(None)
        await self._apply_recording(current.should_record)
        if current.should_broadcast is not None:
            await self._apply_broadcast(current.should_broadcast)
        if current.should_lead is None:
            await self._apply_live(None)
        if timetable.auto_power and timetable.lessons and self.displays:
            await self._apply_power(current.devices_on)

    @property
    def pending(self) -> bool:
        """Something the plan asks for has not been done yet (a command failed)."""
        live = self._live.live if isinstance(self._live, _Leading) else self._live
        broadcast = self._broadcast != self._want_broadcast
        return bool(self._power_left) or self._recording != self._want or live != self._want_live or broadcast

    async def _apply_recording(self, want: Recording | None) -> None:
        applied = self._recording
        if want == applied:
            return
        running = self.is_recording()
        ours = isinstance(applied, Recording) and running == applied.lesson
        if want is None:
            if ours and not await self._do("record.stop", {}, "the lesson is over"):
                return
            self._recording = None
            return
        if ours or (running is not None and running != want.lesson):
            why = f"{want.lesson} starts; {running} is still recording"
            if not await self._do("record.stop", {}, why):
                return
            self._recording, running = None, None
        if running == want.lesson:
            log.info("timetable: %s is already recording", want.lesson)
        elif not await self._do("record.start", want.args(), f"{want.lesson} {want.starts:%H:%M}-{want.ends:%H:%M}"):
            if isinstance(applied, Recording):
                self._recording = None
            return
        self._recording = want

    async def _apply_broadcast(self, want: Broadcast | None) -> None:
        applied = self._broadcast
        if want == applied:
            return
        running = self.is_broadcasting()
        ours = isinstance(applied, Broadcast) and running == applied.target
        if want is None:
            if ours and not await self._do("broadcast.stop", {}, "the lesson is over"):
                return
            self._broadcast = None
            return
        if ours and isinstance(applied, Broadcast) and applied.args() == want.args():
            log.info("timetable: %s goes on air to %s without a break", want.lesson, want.target)
            self._broadcast = want
            return
        if ours or (running is not None and running != want.target):
            if not await self._do("broadcast.stop", {}, f"{want.lesson} starts; {running} is on air"):
                return
            self._broadcast, running = None, None
        if running == want.target:
            log.info("timetable: %s is already on air to %s", want.lesson, want.target)
        elif not await self._do("broadcast.start", want.args(), f"{want.lesson} {want.starts:%H:%M}-{want.ends:%H:%M}"):
            if isinstance(applied, Broadcast):
                self._broadcast = None
            return
        self._broadcast = want

    async def _apply_live(self, want: Live | None) -> None:
        applied = self._live
        if (applied.live if isinstance(applied, _Leading) else applied) == want:
            return
        running = self.is_live()
        if isinstance(applied, _Leading) and running is not None and running == applied.id:  # ours
            if want is not None and applied.live.args() == want.args():
                log.info("timetable: %s goes on in live lesson %s (the same classrooms)", want.lesson, running)
                self._live = _Leading(want, applied.id)
                return
            why = f"{want.lesson} starts" if want is not None else f"{applied.live.lesson} is over"
            if not await self._do("lesson.stop", {}, why):
                return
            self._live, running = None, None
        if want is None:
            self._live = None
            return
        if running is not None:
            log.info("timetable: %s starts; this room already leads live lesson %s: kept", want.lesson, running)
            self._live = _Leading(want, running)
            return
        outcome = await self._run("lesson.start", want.args(), f"{want.lesson} {want.starts:%H:%M}-{want.ends:%H:%M}")
        if outcome is None:
            if isinstance(self._live, _Leading):
                self._live = None
            return
        result = outcome.result if isinstance(outcome.result, Mapping) else {}
        self._live = _Leading(want, str(result.get("lesson", "")))

    async def _apply_power(self, on: bool) -> None:
        if on != self._power:
            self._power = on
            self._power_left = dict.fromkeys(self.displays, self.power_attempts)
        for device, left in list(self._power_left.items()):
            why = "before the first lesson" if on else "after the last lesson"
            if await self._do("panel.power", {"device": device, "on": on}, why):
                del self._power_left[device]
            elif left <= 1:
                log.error("timetable: giving up switching %s %s", device, "on" if on else "off")
                del self._power_left[device]
            else:
                self._power_left[device] = left - 1

    async def _do(self, name: str, args: Mapping[str, Any], why: str) -> bool:
        return await self._run(name, args, why) is not None

    async def _run(self, name: str, args: Mapping[str, Any], why: str) -> Outcome | None:
        """The succeeded outcome, or None (logged: retried at the next tick)."""
        try:
            outcome = await self.execute(name, args)
        except Exception as exc:  # a handler bug must not stop the timetable
            log.exception("timetable: %s %s (%s) raised", name, dict(args), why)
            outcome = Outcome(CommandStatus.FAILED, error=repr(exc))
        if outcome.status == "succeeded":
            log.info("timetable: %s %s (%s): succeeded", name, dict(args), why)
            return outcome
        log.warning("timetable: %s %s (%s): %s: %s; retrying", name, dict(args), why, outcome.status, outcome.error)
        return None

    def _delay(self, timetable: Timetable, now: datetime) -> float:
        bound = self.retry_s if self.pending else self.max_sleep_s
        change = next_change(timetable, now)
        until = (change - now).total_seconds() if change is not None else bound
        return max(0.0, min(until, bound))

    async def _wait(self, seconds: float) -> None:
        """Sleep (the injected sleep) until ``seconds`` pass or the timetable changes."""
        changed = asyncio.create_task(self._changed.wait(), name="scheduler.changed")
        slept = asyncio.create_task(self._sleep(seconds), name="scheduler.sleep")
        try:
            await asyncio.wait({changed, slept}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (changed, slept):
                task.cancel()
            await asyncio.gather(changed, slept, return_exceptions=True)

    async def _sleep(self, seconds: float) -> None:
        await self.sleep(seconds)
