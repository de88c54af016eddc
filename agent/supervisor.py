"""One asyncio supervisor: runs every service, restarts a crashed one with backoff."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from agent.alarms import Alarms
from drivers.backoff import Backoff

log = logging.getLogger(__name__)

Service = Callable[[], Awaitable[None]]


@dataclass
class _Slot:
    name: str
    run: Service
    backoff: Backoff = field(default_factory=lambda: Backoff(base=1.0, cap=60.0))
    restarts: int = 0
    task: asyncio.Task[None] | None = None
    restart_requested: bool = False


class Supervisor:
    """Runs named services in one TaskGroup; a crash is logged, alarmed and restarted."""

    def __init__(self, alarms: Alarms, agent_id: str = "agent", stable_s: float = 30.0) -> None:
        """Services are added with `add` before `run`; `stable_s` up clears a restart alarm."""
        self.alarms = alarms
        self.stable_s = stable_s
        self.agent_id = agent_id
        self.slots: dict[str, _Slot] = {}

    def add(self, name: str, run: Service) -> None:
        """Register a service (a coroutine function that runs until cancelled)."""
        self.slots[name] = _Slot(name, run)

    def names(self) -> list[str]:
        """The services, by name."""
        return sorted(self.slots)

    async def run(self) -> None:
        """Run every service until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for slot in self.slots.values():
                tg.create_task(self._keep(slot), name=f"{self.agent_id}.{slot.name}")

    def restart(self, name: str) -> None:
        """Restart one service now (the ``agent.restart_service`` command)."""
        slot = self.slots.get(name)
        if slot is None:
            raise KeyError(name)
        slot.restart_requested = True
        if slot.task is not None:
            slot.task.cancel()

    async def _keep(self, slot: _Slot) -> None:
        while True:
            inner = asyncio.ensure_future(slot.run())
            slot.task = inner
            try:
                if slot.restarts:
                    done, _ = await asyncio.wait({inner}, timeout=self.stable_s)
                    if not done:  # up again and staying up: the alarm is over
                        self.alarms.clear("service_restarted", slot.name)
                await inner
                log.warning("service %s returned; starting it again", slot.name)
                delay = slot.backoff.next_delay()
            except asyncio.CancelledError:
                if not slot.restart_requested:
                    raise
                slot.restart_requested = False
                log.info("service %s restarted on request", slot.name)
                delay = 0.0
            except Exception as exc:  # a crashed service must not take the others down
                slot.restarts += 1
                delay = slot.backoff.next_delay()
                log.exception("service %s crashed; restarting in %.1f s", slot.name, delay)
                self.alarms.raise_("service_restarted", "warning", f"{slot.name} crashed: {exc!r}", slot.name)
            await asyncio.sleep(delay)
