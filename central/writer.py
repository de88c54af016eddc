"""The single writer of fleet.db: rows queue up and are committed in batches; callbacks run after the commit.

The collector acknowledges each MQTT message through `BatchWriter.after_commit`, so the broker
forgets a message only once what it said is in fleet.db.

On PostgreSQL the batch is written in a worker thread: the time goes to the server (round trips,
its work, the WAL's fsync, ~1.5 ms a commit here) while psycopg waits without the GIL, so the loop
keeps receiving and the next batch gathers what came meanwhile (group commit: one collector went
from ~1,000 to ~4,000 messages a second).  A SQLite file is written on the loop: its commits cost
~0.1 ms, and its work is this process's own CPU, which a thread would only fight for the GIL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from central.fleet_rows import Row
from central.fleetdb import FleetDB
from central.live import Changes
from central.store import StoreUnavailable
from drivers.backoff import Backoff

log = logging.getLogger(__name__)


class BatchWriter:
    """The single writer of fleet.db: rows queue up and are written every `interval` s or `max_rows` rows."""

    def __init__(
        self,
        db: FleetDB,
        changes: Changes | None = None,
        *,
        interval: float = 0.1,
        max_rows: int = 2000,
        high_water: int = 50_000,
    ) -> None:
        """`high_water`: `put` waits while this many rows are queued (back pressure on the reader)."""
        self._db = db
        self._changes = changes
        self._interval = interval
        self._max_rows = max_rows
        self._high_water = high_water
        self._rows: list[Row] = []
        self._queued = 0  # rows ever queued
        self._committed_rows = 0  # of which committed: the first this many
        self._acks: deque[tuple[int, Callable[[], None]]] = deque()  # (rows queued before it, callback), in order
        self._has_rows = asyncio.Event()
        self._full = asyncio.Event()
        self._drained = asyncio.Event()
        self._backoff = Backoff(base=0.2, cap=5.0)
        # PostgreSQL's batches go to one thread of their own, in order (see the module's docstring).
        self._thread = None if db.location.is_sqlite else ThreadPoolExecutor(1, thread_name_prefix="fleet-writer")
        self.written = 0

    @property
    def backlog(self) -> int:
        """Rows queued, not yet written."""
        return len(self._rows)

    async def put(self, row: Row) -> None:
        """Queue a row (waits only when the backlog is over the high-water mark)."""
        self._rows.append(row)
        self._queued += 1
        self._has_rows.set()
        if len(self._rows) >= self._max_rows:
            self._full.set()
        while len(self._rows) >= self._high_water:
            self._drained.clear()
            await self._drained.wait()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` once every row queued so far is committed (at once when none is waiting).

        Callbacks run in the order they came (MQTT acknowledges in the order it delivered), even
        those with no row of their own behind a batch being written.
        """
        if self._committed_rows < self._queued:
            self._acks.append((self._queued, callback))
        else:
            callback()

    def flush_soon(self) -> None:
        """Write what is queued now, without waiting for the interval (someone waits for the commit)."""
        if self._rows:
            self._full.set()

    def write_now(self) -> None:
        """Write what is queued, on the spot (a clean stop); on a database error the rows stay queued."""
        if not self._rows:
            return
        rows = self._take(len(self._rows))
        try:
            changes = self._write(rows)
        except StoreUnavailable as exc:
            log.error("fleet store: %d rows not written at stop (%s)", len(rows), exc)
            self._rows[:0] = rows
            return
        self._committed(len(rows), changes)

    async def run(self) -> None:
        """Flush until cancelled; what is still queued then is written before returning."""
        try:
            while True:
                await self._has_rows.wait()
                if len(self._rows) < self._max_rows:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._interval):
                            await self._full.wait()
                await self._flush()
        finally:
            if self._rows:
                # Shutting down: write, don't lose.  No acks: the connection they belong to is closing,
                # and what the broker delivers again is recognised (events by id; replies, status: idempotent).
                self._publish(self._write(self._take(len(self._rows))))

    def _write(self, rows: list[Row]) -> list[tuple[str, str]]:
        """Write `rows` now, blocking: after the batch in the writer's thread, if one is being written."""
        if self._thread is None:
            return self._db.write_batch(rows)
        return self._thread.submit(self._db.write_batch, rows).result()

    def _take(self, limit: int) -> list[Row]:
        """The first `limit` rows queued (a batch of PostgreSQL's may take long: more gather meanwhile)."""
        rows, self._rows = self._rows[:limit], self._rows[limit:]
        if not self._rows:
            self._has_rows.clear()
        if len(self._rows) < self._max_rows:
            self._full.clear()
        if len(self._rows) < self._high_water:
            self._drained.set()
        return rows

    async def _flush(self) -> None:
        rows = self._take(self._max_rows)
        try:
            # SQLite on the loop, not in a worker thread: a thread fighting the busy loop for the GIL
            # at every sqlite call made the writer the bottleneck (bench/central_ingest.py:
            # 4.3k -> 7.2k msg/s).  A batch holds the loop for ~20 us a row.
            if self._thread is None:
                changes = self._db.write_batch(rows)
            else:  # shielded: a stop must not drop a batch taken but not yet started (it would be lost)
                changes = await asyncio.shield(asyncio.wrap_future(self._thread.submit(self._db.write_batch, rows)))
        except StoreUnavailable as exc:  # locked, disk full: keep the rows and retry
            delay = self._backoff.next_delay()
            log.error("fleet store: %d rows not written (%s); retrying in %.1f s", len(rows), exc, delay)
            self._rows[:0] = rows
            self._has_rows.set()
            await asyncio.sleep(delay)
            return
        self._backoff.reset()
        self._committed(len(rows), changes)

    def _committed(self, count: int, changes: list[tuple[str, str]]) -> None:
        self.written += count
        self._committed_rows += count
        while self._acks and self._acks[0][0] <= self._committed_rows:
            self._acks.popleft()[1]()
        self._publish(changes)

    def _publish(self, changes: list[tuple[str, str]]) -> None:
        if self._changes is not None:
            for kind, agent_id in changes:
                self._changes.publish({"kind": kind, "agent_id": agent_id})
