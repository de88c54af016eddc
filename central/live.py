"""Change notifications fanned out in-process: the collector publishes, web pages listen."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)

KINDS = frozenset({"agent", "device", "alarm", "command"})  # each names the agent it changed
# No agent named: something changed that this process did not see (another process's commit on
# SQLite, a change feed that was down); a page fetches again whatever it shows.
REFRESH = "refresh"


class Changes:
    """Fan-out of ``{"kind": "agent"|"device"|"alarm"|"command", "agent_id": ...}`` and ``{"kind": "refresh"}`` events.

    Each subscriber has a bounded queue; when a slow one falls behind, its oldest events are
    dropped (the newest say what to refresh), so a stuck page never holds up the collector.
    """

    def __init__(self, maxsize: int = 256) -> None:
        """`maxsize`: events kept per subscriber."""
        self._maxsize = maxsize
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A new queue that receives every event published from now on."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self._maxsize)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop delivering to `queue` (unknown queues are ignored)."""
        self._queues.discard(queue)

    def publish(self, event: dict[str, Any]) -> None:
        """Deliver `event` to every subscriber, dropping the oldest event of a full queue."""
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
                log.debug("live: a slow subscriber dropped an event")
            queue.put_nowait(event)

    def __len__(self) -> int:
        """The number of subscribers."""
        return len(self._queues)
