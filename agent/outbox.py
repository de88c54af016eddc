"""The outbox's bounds: undelivered events and replies older or more than the config allows are dropped, and said so."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from agent.alarms import Alarms

log = logging.getLogger(__name__)

TRIM_S = 60.0


class Outbox(Protocol):
    """The part of the agent's store the trimming needs."""

    def outbox_trim(self, max_age_s: float, max_rows: int) -> int:
        """Drop what is over the bounds; how many were dropped."""

    def outbox_size(self) -> int:
        """Undelivered messages now."""


def trim(store: Outbox, max_age_h: float, max_rows: int, alarms: Alarms) -> int:
    """Keep the outbox within its bounds; say so in an alarm when anything is dropped (cleared once it is empty)."""
    dropped = store.outbox_trim(max_age_h * 3600, max_rows)
    if dropped:
        log.warning("outbox full or too old: dropped %d undelivered messages", dropped)
        message = f"{dropped} undelivered events/replies dropped (outbox bounds)"
        alarms.raise_("outbox_dropped", "warning", message, params={"count": dropped})
    elif store.outbox_size() == 0:
        alarms.clear("outbox_dropped")
    return dropped


async def keep_trimmed(store: Outbox, max_age_h: float, max_rows: int, alarms: Alarms) -> None:
    """`trim` every TRIM_S until cancelled."""
    while True:
        trim(store, max_age_h, max_rows, alarms)
        await asyncio.sleep(TRIM_S)
