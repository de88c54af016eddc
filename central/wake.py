"""Waking a classroom PC from the centre: another agent of its site sends the Wake-on-LAN packet.

A sleeping PC's agent cannot hear commands, and the centre usually sits outside the school's
LAN, where a broadcast never arrives.  So the centre picks an agent of the same site that is
online (one on the sleeping PC's own LAN first, as its ``info.nics`` broadcast addresses tell,
then the most recently heard) and sends it ``power.wake`` with the sleeping PC's MAC and LAN
broadcast, one command per card; each is audited like every command, under the user who asked
(``timetable`` for scheduled wakes) and with ``target`` naming the room.  A neighbour that does
not answer, refuses or fails is replaced by the next, up to `TRIES`.

`WakeSchedule` does the same by itself at the instants each agent published in ``info.wake``
(``[power] wake_before_min`` before its first lesson of the day): a PC that is not online then is
woken, once per instant, until `GRACE_S` after it.  A site needs at least one agent awake for
either (a PC that stays on, or one its BIOS powers on by its own clock); once any is up, the
others of the site can be woken through it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from central.errors import CentralError
from contract.errors import BrokerError, PayloadError
from contract.timestamps import parse_iso
from drivers.protocol.wol import WOL_PORT

log = logging.getLogger(__name__)

WAKE_TIMEOUT_S = 10.0
TRIES = 3
GRACE_S = 900.0
CHECK_S = 30.0


class WakeFleet(Protocol):
    """What the waker reads from fleet.db (`central.fleetdb.FleetDB`)."""

    def agent(self, agent_id: str) -> Any:
        """One agent (with ``nics``), None when unknown."""

    def agents(self, *, site: str | None = None, offline_only: bool = False, alarms_only: bool = False) -> Any:
        """Agents of a site with their state, ``last_seen`` and ``nics``."""


class WakeSender(Protocol):
    """Sends a command and waits for its reply (`central.sender.CommandSender`)."""

    async def send(
        self, agent_id: str, name: str, args: dict[str, Any], by: str, *, timeout: float = 10.0, ttl: float = 60.0
    ) -> dict[str, Any]:
        """The outcome: ``{"id", "status", "result" | "error"}``."""


def lans(agent: Mapping[str, Any]) -> set[str]:
    """The broadcast addresses of an agent's cards (its LANs)."""
    return {str(n["broadcast"]) for n in agent.get("nics") or [] if isinstance(n, Mapping) and n.get("broadcast")}


def neighbours(target: Mapping[str, Any], agents: Sequence[Mapping[str, Any]]) -> list[str]:
    """The online agents of the target's site that could wake it: on its LAN first, then the most recently heard."""
    candidates = [
        a for a in agents
        if a["agent_id"] != target["agent_id"] and a["site"] == target["site"] and a["state"] == "online"
    ]  # fmt: skip
    candidates.sort(key=lambda a: str(a.get("last_seen") or ""), reverse=True)
    shared = lans(target)
    candidates.sort(key=lambda a: not (shared & lans(a)))  # stable: the recency order holds within each group
    return [str(a["agent_id"]) for a in candidates]


def packets(target: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(mac, broadcast)`` per distinct card of the target ("" when its LAN's broadcast is unknown)."""
    out: dict[str, str] = {}
    for nic in target.get("nics") or []:
        if isinstance(nic, Mapping) and isinstance(nic.get("mac"), str):
            out.setdefault(nic["mac"], str(nic.get("broadcast") or ""))
    return list(out.items())


class Waker:
    """Wakes one agent's PC through a neighbour: ``power.wake`` per card, audited."""

    def __init__(
        self,
        db: WakeFleet,
        sender: WakeSender,
        *,
        port: int = WOL_PORT,
        timeout: float = WAKE_TIMEOUT_S,
        tries: int = TRIES,
    ) -> None:
        """`port`: the UDP port of the magic packet; `timeout`: per command; `tries`: neighbours tried."""
        self.db = db
        self.sender = sender
        self.port = port
        self.timeout = timeout
        self.tries = tries

    async def wake(self, agent_id: str, by: str) -> dict[str, Any]:
        """``{"status": "succeeded", "via", "packets"}``, or ``rejected`` / ``failed`` with an ``error`` saying why.

        A refusal's ``code`` says why for a program: ``unknown_agent``, ``no_mac`` (rejected),
        ``no_neighbour``, ``neighbours_failed`` (failed).
        """
        target = self.db.agent(agent_id)
        if target is None:
            error = f"no agent {agent_id!r}"
            return {"status": "rejected", "code": "unknown_agent", "agent_id": agent_id, "error": error}
        cards = packets(target)
        if not cards:
            why = "its agent is too old to report them, or it found no wired card: set [power] mac in its site config"
            error = f"{agent_id} has reported no MAC address ({why})"
            return {"status": "rejected", "code": "no_mac", "agent_id": agent_id, "error": error}
        tried: list[str] = []
        for via in neighbours(target, self.db.agents(site=target["site"]))[: self.tries]:
            sent = [await self._send(via, agent_id, mac, broadcast, by) for mac, broadcast in cards]
            if any(p["status"] == "succeeded" for p in sent):
                log.info("woke %s through %s for %s", agent_id, via, by or "?")
                return {"status": "succeeded", "agent_id": agent_id, "via": via, "packets": sent}
            tried.append(f"{via}: {sent[0]['status']} {sent[0].get('error', '')}".strip())
        if not tried:
            site = target["site"]
            code, error = "no_neighbour", f"no other agent of site {site!r} is online to send the wake-up packet"
        else:
            code, error = "neighbours_failed", "every neighbour tried failed: " + "; ".join(tried)
        log.warning("cannot wake %s: %s", agent_id, error)
        return {"status": "failed", "code": code, "agent_id": agent_id, "error": error}

    async def _send(self, via: str, target: str, mac: str, broadcast: str, by: str) -> dict[str, Any]:
        args: dict[str, Any] = {"mac": mac, "port": self.port, "target": target}
        if broadcast:
            args["broadcast"] = broadcast
        try:
            outcome = await self.sender.send(via, "power.wake", args, by, timeout=self.timeout, ttl=self.timeout)
        except (CentralError, BrokerError) as exc:
            outcome = {"status": "failed", "error": f"not sent: {exc}"}
        except ValueError as exc:  # the neighbour vanished from fleet.db meanwhile
            outcome = {"status": "rejected", "error": str(exc)}
        return {"mac": mac, "broadcast": broadcast, **outcome}


class WakeSchedule:
    """Wakes PCs at the instants their agents published in ``info.wake``, each instant once."""

    def __init__(
        self,
        plans: Callable[[], list[dict[str, Any]]],
        waker: Waker,
        *,
        grace_s: float = GRACE_S,
        check_s: float = CHECK_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`plans()` lists ``{"agent_id", "state", "wake": [ts, ...]}`` for agents that published wake times."""
        self.plans = plans
        self.waker = waker
        self.grace = timedelta(seconds=grace_s)
        self.check_s = check_s
        self.clock = clock
        self._done: set[tuple[str, datetime]] = set()

    def due(self, now: datetime) -> list[tuple[str, datetime]]:
        """``(agent_id, instant)`` to wake now: the instant has come (within the grace), the agent is not online."""
        out = []
        for plan in self.plans():
            if plan["state"] == "online":
                continue
            for text in plan["wake"]:
                try:
                    instant = parse_iso(text) if isinstance(text, str) else None
                except PayloadError:
                    instant = None
                fresh = instant is not None and instant <= now < instant + self.grace
                if fresh and instant is not None and (plan["agent_id"], instant) not in self._done:
                    out.append((str(plan["agent_id"]), instant))
        return out

    async def tick(self, now: datetime) -> list[dict[str, Any]]:
        """Wake every PC due at `now`; the outcomes.  A failed wake is tried again at the next tick."""
        outcomes = []
        for agent_id, instant in self.due(now):
            outcome = await self.waker.wake(agent_id, "timetable")
            if outcome["status"] == "succeeded":
                self._done.add((agent_id, instant))
            outcomes.append(outcome)
        self._done = {(a, t) for a, t in self._done if t + self.grace > now}
        return outcomes

    async def run(self) -> None:
        """Tick every `check_s` until cancelled."""
        while True:
            await self.tick(self.clock())
            await asyncio.sleep(self.check_s)
