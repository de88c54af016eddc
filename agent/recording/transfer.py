"""What every delivery transport (FTP, HTTP PUT) shares: its error, its progress, its blocking thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from agent.config.delivery import DeliveryTarget, redact
from agent.errors import AgentError
from agent.recording.sidecar import Job

T = TypeVar("T")
MAX_SERVER_TEXT = 200  # characters of a server's answer kept in an error


class DeliveryError(AgentError):
    """A delivery attempt failed; `retry` says whether trying again later can help."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        """`message` names the target and what the server or the network said (no credentials)."""
        super().__init__(message)
        self.retry = retry


@dataclass
class Progress:
    """How far one delivery got, written by the transport (maybe from its thread), read by the service.

    `beat` changes whenever anything happened on the wire: a transfer whose beat stands still for
    the target's timeout is cut.
    """

    offset: int = 0  # bytes of the recording the target has
    size: int = 0
    ranges: int = -1  # HTTP: Content-Range honoured (1), not (0), not known yet (-1)
    beat: int = 0

    def moved(self, offset: int | None = None) -> None:
        """Something happened on the wire (and the target now has `offset` bytes, when given)."""
        if offset is not None:
            self.offset = offset
        self.beat += 1


class Transport(Protocol):
    """One target's way of delivering a job."""

    target: DeliveryTarget

    async def deliver(self, job: Job, progress: Progress) -> None:
        """Put the recording and its sidecars at the target, resuming what is there; DeliveryError if not."""

    def where(self, job: Job) -> str:
        """Where the job's file goes, without credentials (kept in agent.db and shown)."""


def server_text(text: str, target: DeliveryTarget) -> str:
    """A server's answer fit for a message: secrets redacted, one line, bounded."""
    line = " ".join(redact(text, target.secrets).split())
    return line if len(line) <= MAX_SERVER_TEXT else line[: MAX_SERVER_TEXT - 3] + "..."


async def in_own_thread(work: Callable[[], T], name: str) -> T:
    """Run blocking `work` in a thread of its own (a long transfer must not hold the loop's shared pool).

    A cancellation does not wait for it: the caller makes the work stop (closing its sockets).
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            outcome: tuple[T | None, BaseException | None] = (None, exc)
        else:
            outcome = (result, None)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits for the answer
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await future
