"""The supervisor keeps services running: a crash is alarmed and restarted, the rest carry on."""

from __future__ import annotations

import asyncio
import contextlib

from agent.alarms import Alarms
from agent.supervisor import Supervisor
from contract import Event


async def test_a_crashing_service_is_restarted_with_an_alarm_and_others_keep_running() -> None:
    events: list[Event] = []
    supervisor = Supervisor(Alarms(events.append), stable_s=0.05)
    runs = {"flaky": 0, "steady": 0}
    steady_ticks = 0
    flaky_up = asyncio.Event()

    async def flaky() -> None:
        runs["flaky"] += 1
        if runs["flaky"] == 1:
            raise RuntimeError("camera thread died")
        flaky_up.set()
        await asyncio.Event().wait()

    async def steady() -> None:
        nonlocal steady_ticks
        while True:
            steady_ticks += 1
            await asyncio.sleep(0.01)

    supervisor.add("flaky", flaky)
    supervisor.add("steady", steady)
    for slot in supervisor.slots.values():
        slot.backoff.base = 0.01
    task = asyncio.create_task(supervisor.run())
    async with asyncio.timeout(10):
        await flaky_up.wait()
        while not any(e.action == "clear" for e in events):
            await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    raised = [e for e in events if e.type == "service_restarted" and e.action == "raise"]
    assert len(raised) == 1 and "camera thread died" in raised[0].message and raised[0].device == "flaky"
    assert runs["flaky"] == 2 and steady_ticks > 1


async def test_restart_on_request_starts_the_service_again() -> None:
    supervisor = Supervisor(Alarms(lambda e: None))
    starts = 0
    started = asyncio.Event()

    async def service() -> None:
        nonlocal starts
        starts += 1
        started.set()
        await asyncio.Event().wait()

    supervisor.add("recorder", service)
    task = asyncio.create_task(supervisor.run())
    async with asyncio.timeout(10):
        await started.wait()
        started.clear()
        supervisor.restart("recorder")
        await started.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert starts == 2


async def test_a_service_that_swallows_a_cancellation_still_stops() -> None:
    supervisor = Supervisor(Alarms(lambda e: None))
    started = asyncio.Event()

    async def stubborn() -> None:
        started.set()
        with contextlib.suppress(asyncio.CancelledError):  # loses one cancellation, as 3.11's wait_for can
            await asyncio.Event().wait()
        await asyncio.Event().wait()

    supervisor.add("stubborn", stubborn)
    task = asyncio.create_task(supervisor.run())
    async with asyncio.timeout(10):
        await started.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert task.done()
