"""A room that is not online during its school hours raises ``offline_in_hours`` at the centre.

Each agent publishes its school hours in ``info.hours`` (retained, so the centre still has them
once the PC has gone quiet: `contract.hours`).  `HoursWatch` looks every `CHECK_S`: an agent whose
state is not ``online`` (offline, lost, silent) inside one of its windows gets the alarm, which
the centre raises itself (`central.fleet_rows.CentreAlarm`: no news of the agent); it clears
once the agent is online again.  `verdicts` is the pure decision, tested without a clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from central.fleet_rows import CentreAlarm, Row
from contract import Event, parse_iso, to_iso
from contract.errors import PayloadError

log = logging.getLogger(__name__)

ALARM = "offline_in_hours"
CHECK_S = 30.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """Raise (`raise_`) or clear the alarm of one agent; `window` is the school hours it is in ("" to clear)."""

    agent_id: str
    site: str
    raise_: bool
    window: tuple[str, str] = ("", "")
    since: str = ""


def _inside(hours: object, now: datetime) -> tuple[str, str] | None:
    """The window of `hours` (as stored: a list of ``{"start", "end"}``) that holds `now`, if any."""
    for window in hours if isinstance(hours, list) else []:
        try:
            start, end = str(window["start"]), str(window["end"])
            if parse_iso(start) <= now < parse_iso(end):
                return start, end
        except (KeyError, TypeError, PayloadError):
            continue  # stored by an older centre, or damaged: no hours to go by
    return None


def verdicts(agents: Iterable[Mapping[str, Any]], open_for: set[str], now: datetime) -> list[Verdict]:
    """What to change: raise for an agent not online inside its hours, clear for one open and online again."""
    out = []
    for agent in agents:
        agent_id, online = str(agent["agent_id"]), agent.get("state") == "online"
        if agent_id in open_for:
            if online:
                out.append(Verdict(agent_id, str(agent["site"]), False))
            continue
        window = None if online else _inside(agent.get("hours"), now)
        if window is not None:
            # Offline or lost: since its status changed; silent: since it was last heard.
            since = str(agent.get("last_seen" if agent.get("state") == "silent" else "since") or "")
            out.append(Verdict(agent_id, str(agent["site"]), True, window, since))
    return out


def alarm_row(verdict: Verdict, now: datetime) -> CentreAlarm:
    """The row that raises or clears `verdict`'s alarm (params: the window, and since when the room is away)."""
    ts = to_iso(now)
    if not verdict.raise_:
        event = Event(ALARM, "critical", "clear", ts, f"{verdict.agent_id} is online again")
        return CentreAlarm(verdict.site, verdict.agent_id, event, ts)
    start, end = verdict.window
    params = {"start": start, "end": end, "since": verdict.since}
    message = f"{verdict.agent_id} is not online during its school hours ({start} to {end}) since {verdict.since}"
    event = Event(ALARM, "critical", "raise", ts, message, "", {"params": params})
    return CentreAlarm(verdict.site, verdict.agent_id, event, ts)


class HoursFleet:
    """What the watch reads: every agent (state, since, hours) and the open alarms (`central.fleetdb.FleetDB`)."""

    def __init__(self, agents: Callable[[], list[dict[str, Any]]], alarms: Callable[[], list[dict[str, Any]]]) -> None:
        """`agents()` as `FleetDB.agents`, `alarms()` the open alarms as `FleetDB.alarms`."""
        self.agents = agents
        self.alarms = alarms

    def open_for(self) -> set[str]:
        """The agents whose ``offline_in_hours`` is open now."""
        return {str(a["agent_id"]) for a in self.alarms() if a["type"] == ALARM}


class HoursWatch:
    """Every `every_s`: raise or clear ``offline_in_hours`` through the writer (`put`)."""

    def __init__(
        self,
        fleet: HoursFleet,
        put: Callable[[Row], Awaitable[None]],
        *,
        every_s: float = CHECK_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`put` queues a row for fleet.db (`central.writer.BatchWriter.put`)."""
        self.fleet = fleet
        self.put = put
        self.every_s = every_s
        self.clock = clock

    async def once(self) -> list[Verdict]:
        """One look: the changes made."""
        now = self.clock()
        found = verdicts(self.fleet.agents(), self.fleet.open_for(), now)
        for verdict in found:
            if verdict.raise_:
                log.warning("%s: not online during its school hours (since %s)", verdict.agent_id, verdict.since)
            await self.put(alarm_row(verdict, now))
        return found

    async def run(self) -> None:
        """Look every `every_s` until cancelled."""
        while True:
            await self.once()
            await asyncio.sleep(self.every_s)
