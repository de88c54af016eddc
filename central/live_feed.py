"""The other processes' commits, fed into this process's `central.live.Changes` (every dashboard runs one).

- PostgreSQL: LISTEN on `central.live_store.CHANNEL` on a connection of its own (psycopg's async
  connection), the payloads decoded and published, this process's own skipped (its writer already
  published them in-process).  When the connection is lost it connects again with backoff, saying
  so in one log line, and publishes a ``refresh``: what was committed meanwhile was not heard.
- SQLite: ``PRAGMA data_version`` of the writer's connection polled every `poll_s` seconds (a few
  microseconds each); when another connection has committed, one ``refresh``.  SQLite cannot say
  which agents the other process changed, and a SQLite fleet is small: the pages fetch again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Protocol

from central.live import REFRESH
from central.live_store import CHANNEL, Commits, decode
from central.store import Location, StoreUnavailable
from drivers.backoff import Backoff

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

APPLICATION_NAME = "classroom-central live"  # how the listener shows in pg_stat_activity
POLL_S = 0.5
CHECK_S = 30.0  # a listener that heard nothing for this long asks the server whether it is still there
DEADLINE_S = 15.0


class Feed(Protocol):
    """Where the changes go (`central.live.Changes`)."""

    def publish(self, event: dict[str, Any]) -> None:
        """Tell every subscriber."""


class Fleet(Protocol):
    """The fleet store whose other writers are heard (`central.fleetdb.FleetDB`)."""

    location: Location
    commits: Commits


class StoreFeed:
    """Publishes the changes other processes commit to the fleet store; `run` until cancelled."""

    def __init__(
        self,
        db: Fleet,
        changes: Feed,
        *,
        poll_s: float = POLL_S,
        check_s: float = CHECK_S,
        backoff: Backoff | None = None,
    ) -> None:
        """`poll_s`: SQLite's polling period; `check_s`: how long a quiet PostgreSQL listener waits before a check."""
        self._location, self._commits, self._changes = db.location, db.commits, changes
        self._poll_s, self._check_s = poll_s, check_s
        self._backoff = backoff or Backoff(base=0.5, cap=15.0)
        self.listening = asyncio.Event()  # set while a PostgreSQL LISTEN is in place (tests wait for it)
        self.heard = 0  # events published from other processes

    async def run(self) -> None:
        """Feed the changes until cancelled."""
        if self._location.is_sqlite:
            await self._poll()
        else:
            await self._listen()

    def _publish(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self._changes.publish(event)
        self.heard += len(events)

    # ---- SQLite --------------------------------------------------------------------------

    async def _poll(self) -> None:
        seen = self._version()
        while True:
            await asyncio.sleep(self._poll_s)
            version = self._version()
            if version is not None and version != seen:
                if seen is not None:
                    self._publish([{"kind": REFRESH}])
                seen = version

    def _version(self) -> int | None:
        try:
            return self._commits.data_version()
        except StoreUnavailable as exc:  # the file went away, a disk error: try at the next tick
            log.debug("live: data_version of %s not read (%s)", self._location.display, exc)
            return None

    # ---- PostgreSQL ----------------------------------------------------------------------

    async def _listen(self) -> None:
        import psycopg

        lost = False
        while True:
            try:
                async with await self._connect() as conn:
                    if lost:
                        log.info("live: listening to %s again", self._location.display)
                        self._publish([{"kind": REFRESH}])  # what was committed meanwhile was not heard
                    self._backoff.reset()
                    await self._hear(conn)
            except (psycopg.Error, OSError, TimeoutError) as exc:
                lost = True
                self.listening.clear()
                delay = self._backoff.next_delay()
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                log.warning(
                    "live: the change feed of %s is lost (%s); listening again in %.1f s",
                    self._location.display, reason, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        import psycopg

        async with asyncio.timeout(DEADLINE_S):
            conn = await psycopg.AsyncConnection.connect(
                self._location.target, autocommit=True, connect_timeout=10, application_name=APPLICATION_NAME
            )
            try:
                await conn.execute(f"LISTEN {CHANNEL}")
            except BaseException:
                await conn.close()
                raise
        return conn

    async def _hear(self, conn: psycopg.AsyncConnection[Any]) -> None:
        own = self._commits.origin
        self.listening.set()
        while True:
            async for note in conn.notifies(timeout=self._check_s):
                self._publish(decode(note.payload, own))
            async with asyncio.timeout(DEADLINE_S):  # quiet for a while: is the server still there?
                await conn.execute("SELECT 1")
