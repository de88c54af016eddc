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
# On stop, how long the other services get to finish (say goodbye, halt a recording) before the
# services marked `stop_last` (the broker link that carries those goodbyes) are stopped too.
FIRST_STOP_S = 10.0


@dataclass
class _Slot:
    name: str
    run: Service
    backoff: Backoff = field(default_factory=lambda: Backoff(base=1.0, cap=60.0))
    restarts: int = 0
    task: asyncio.Task[None] | None = None
    restart_requested: bool = False
    stop_last: bool = False


class Supervisor:
    """Runs named services in one TaskGroup; a crash is logged, alarmed and restarted."""

    def __init__(self, alarms: Alarms, agent_id: str = "agent", stable_s: float = 30.0) -> None:
        """Services are added with `add` before `run`; `stable_s` up clears a restart alarm."""
        self.alarms = alarms
        self.stable_s = stable_s
        self.agent_id = agent_id
        self.slots: dict[str, _Slot] = {}

    def add(self, name: str, run: Service, *, stop_last: bool = False) -> None:
        """Register a service (a coroutine function that runs until cancelled); `stop_last`: outlive the others."""
        self.slots[name] = _Slot(name, run, stop_last=stop_last)

    def names(self) -> list[str]:
        """The services, by name."""
        return sorted(self.slots)

    async def run(self) -> None:
        """Run every service until cancelled; then stop the others first, the `stop_last` ones after them."""
        async with asyncio.TaskGroup() as tg:
            first = [
                tg.create_task(self._keep(slot), name=f"{self.agent_id}.{slot.name}")
                for slot in self.slots.values()
                if not slot.stop_last
            ]
            for slot in self.slots.values():
                if slot.stop_last:
                    tg.create_task(self._keep(slot), name=f"{self.agent_id}.{slot.name}")
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                for task in first:
                    task.cancel()
                if first:
                    await asyncio.wait(first, timeout=FIRST_STOP_S)
                raise

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
                await asyncio.wait({inner})  # a cancel of ours lands here, not in the service
            except asyncio.CancelledError:
                await _stop(inner)
                raise
            delay = self._outcome(slot, inner)
            await asyncio.sleep(delay)

    def _outcome(self, slot: _Slot, inner: asyncio.Task[None]) -> float:
        """Log how a service ended; the wait before starting it again."""
        if inner.cancelled():
            if not slot.restart_requested:
                log.warning("service %s was cancelled from inside; starting it again", slot.name)
                return slot.backoff.next_delay()
            slot.restart_requested = False
            log.info("service %s restarted on request", slot.name)
            return 0.0
        exc = inner.exception()
        if exc is None:
            log.warning("service %s returned; starting it again", slot.name)
            return slot.backoff.next_delay()
        slot.restarts += 1
        delay = slot.backoff.next_delay()
        log.error("service %s crashed; restarting in %.1f s", slot.name, delay, exc_info=exc)
        message = f"{slot.name} crashed: {exc!r}"
        self.alarms.raise_("service_restarted", "warning", message, slot.name, {"service": slot.name})
        return delay


async def _stop(task: asyncio.Task[None], attempts: int = 10) -> None:
    """Cancel a service and wait for it, cancelling again if the first cancellation was lost.

    Python 3.11's asyncio.wait_for (used inside aiomqtt) swallows a cancellation that lands
    just as its future completes.
    """
    for _ in range(attempts):
        if task.done():
            return
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    log.error("service task %s ignored %d cancellations", task.get_name(), attempts)
