"""The one jittered exponential backoff every reconnect goes through."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays of base * 2**n, capped, each scaled by a random factor in [1 - jitter, 1]."""

    base: float = 0.5
    cap: float = 30.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay(self) -> float:
        """The wait before the next attempt; each call counts one more failure."""
        delay = min(self.cap, self.base * (2 ** min(self.failures, 30)))
        self.failures += 1
        return float(delay * (1 - self.jitter * self.rng.random()))

    def reset(self) -> None:
        """Call after a success: the next failure waits the base delay again."""
        self.failures = 0
