"""Faults a simulated device or its line can be given: lost replies, noise, lateness, floods."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from drivers.errors import ArgumentError


@dataclass
class Faults:
    """What a misbehaving device or line does: lose replies, add noise, answer late."""

    drop_replies: float = 0.0
    garbage: float = 0.0
    delay_ms: int = 0
    rng: random.Random = field(default_factory=random.Random)
    drop_first: int = 0  # lose exactly the next N replies (repeatable tests and demos)
    drop_index: frozenset[int] = frozenset()  # lose the replies with these numbers (0 = the first sent)
    flood_bytes: int = 0  # a device that talks too much: this much noise on each new connection
    flood_unframed: bool = False  # noise without the profile's frame markers: a frame that never ends
    flood_after: int = 0  # start the flood once this many requests have been answered (goes mad mid-lesson)
    _sent: int = 0

    def __post_init__(self) -> None:
        """Check the probabilities."""
        for name in ("drop_replies", "garbage"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ArgumentError(f"--{name.replace('_', '-')} must be a probability 0..1")
        if self.delay_ms < 0:
            raise ArgumentError("--delay-ms must not be negative")
        if self.flood_bytes < 0:
            raise ArgumentError("--flood must not be negative")

    def noise(self, size: int, markers: bytes) -> bytes:
        """`size` random bytes; without any of `markers` when the flood is unframed."""
        data = self.rng.randbytes(size)
        if not self.flood_unframed or not markers:
            return data
        spare = next(b for b in range(256) if b not in markers)
        return data.translate(bytes(spare if b in markers else b for b in range(256)))

    def apply(self, replies: list[bytes]) -> list[bytes]:
        """The replies as this line delivers them: some dropped, some after noise."""
        out = []
        for reply in replies:
            if self.rng.random() < self.garbage:
                out.append(self.rng.randbytes(self.rng.randint(1, 6)))
            number, self._sent = self._sent, self._sent + 1
            if number in self.drop_index:
                continue
            if self.drop_first > 0:
                self.drop_first -= 1
                continue
            if self.rng.random() < self.drop_replies:
                continue
            out.append(reply)
        return out
