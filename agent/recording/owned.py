"""Work the recording service sees through for its callers, whoever stops waiting.

Starting a recording ends with a recorder thread and a ``recording`` row, stopping one with a
remuxed file and a ``finished`` row: half of either leaves agent.db and the disk disagreeing.  A
caller (a command whose door closed, a command timeout, the scheduler stopping) may stop waiting
at any moment, so `OwnedWork` runs each such step as a task of the service's own: cancelling the
caller cancels only its wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class OwnedWork:
    """The service's own tasks for steps that must complete once begun (named ``{service}.{step}``)."""

    def __init__(self, service: str) -> None:
        """Nothing runs until `run`."""
        self.service = service
        self._tasks: set[asyncio.Task[Any]] = set()

    async def run(self, step: str, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` as a task of ours and wait for its result; a cancelled caller leaves it running."""
        task = asyncio.create_task(work, name=f"{self.service}.{step}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return await asyncio.shield(task)

    async def see_through(self) -> None:
        """Wait for every step in flight, holding back cancellations meanwhile (for a service that is ending)."""
        while self._tasks:
            try:
                await asyncio.wait(set(self._tasks))
            except asyncio.CancelledError:
                log.info("%s: waiting for %d step(s) in flight before stopping", self.service, len(self._tasks))

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:  # retrieved here too: its caller may be gone
            log.debug("%s ended: %s", task.get_name(), task.exception())


async def in_thread(work: Callable[[], T], on_cancel: Callable[[], None] = lambda: None) -> T:
    """Run blocking work in a thread and see it through: a cancellation waits for the work, then applies.

    Stopping a recorder half way would leave the index and the row disagreeing with the disk;
    `on_cancel` asks work that can stop early (a remux) to do so.
    """
    future = asyncio.get_running_loop().run_in_executor(None, work)
    cancelled = False
    while not future.done():
        try:
            await asyncio.wait({future})
        except asyncio.CancelledError:
            cancelled = True
            on_cancel()
    if cancelled:
        raise asyncio.CancelledError
    return future.result()
