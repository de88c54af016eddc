"""Slowing down and then locking out password and PIN guessing, per account and per client address.

Sans-IO: a `Throttle` counts failures per key under an injected clock.  The first `free` failures
cost nothing; each further one makes the key wait twice as long as the last (1 s, 2 s, 4 s ...),
and from `lock_after` failures on the key is locked for `lock_s`, twice as long for each further
failure (at most `max_lock_s`).  A success forgets the key;
failures older than `forget_s` are forgotten too, and at most `max_keys` keys are kept (the
quietest go first), so a flood of addresses cannot grow it without bound.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Record:
    failures: int
    last: float  # clock time of the last failure
    until: float  # no try before this clock time


class Throttle:
    """Failed attempts per key: free tries, then a doubling wait, then a lock."""

    def __init__(
        self,
        *,
        free: int = 3,
        lock_after: int = 10,
        lock_s: float = 900.0,
        max_lock_s: float = 86_400.0,
        forget_s: float = 3600.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Limits as in the module's docstring; `clock`: monotonic seconds."""
        if not 0 <= free < lock_after:
            raise ValueError("throttle: expected 0 <= free < lock_after")
        self.free, self.lock_after, self.lock_s, self.max_lock_s = free, lock_after, lock_s, max(lock_s, max_lock_s)
        self.forget_s, self.max_keys, self.clock = max(forget_s, lock_s), max_keys, clock
        self._records: dict[str, _Record] = {}

    def wait(self, *keys: str) -> int:
        """Whole seconds before any of `keys` may try again (0: now)."""
        now = self.clock()
        waits = [record.until - now for key in keys if (record := self._current(key, now)) is not None]
        return max(0, math.ceil(max(waits, default=0.0)))

    def locked(self, *keys: str) -> bool:
        """Whether one of `keys` has failed `lock_after` times (and is not yet forgotten)."""
        now = self.clock()
        return any((r := self._current(k, now)) is not None and r.failures >= self.lock_after for k in keys)

    def left(self, key: str) -> int:
        """Failures `key` may still make before it is locked."""
        record = self._current(key, self.clock())
        return self.lock_after - (record.failures if record else 0)

    def failed(self, *keys: str) -> None:
        """Count one failure against each of `keys`."""
        now = self.clock()
        for key in keys:
            record = self._current(key, now) or _Record(0, now, now)
            record.failures += 1
            record.last = now
            if record.failures >= self.lock_after:
                record.until = now + min(self.lock_s * 2.0 ** (record.failures - self.lock_after), self.max_lock_s)
            elif record.failures > self.free:
                record.until = now + min(2.0 ** (record.failures - self.free - 1), self.lock_s)
            self._records.pop(key, None)
            self._records[key] = record  # newest last: the quietest are evicted first
        while len(self._records) > self.max_keys:
            del self._records[next(iter(self._records))]

    def succeeded(self, *keys: str) -> None:
        """Forget `keys`' failures."""
        for key in keys:
            self._records.pop(key, None)

    def _current(self, key: str, now: float) -> _Record | None:
        record = self._records.get(key)
        if record is not None and now - record.last >= self.forget_s and now >= record.until:
            del self._records[key]
            return None
        return record
