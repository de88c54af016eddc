"""Sans-IO judgements for lessons: one peer's health (frozen pictures, degraded links), repeated refusals.

Fed a sample a second (the peer's incoming pictures' freeze ages, its loss and RTT), it says
what to do: ask the sender for a keyframe, renegotiate, raise or clear ``link_degraded``.  No
clock of its own and no I/O, so every rule is testable with plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class WatchRules:
    """The thresholds (from ``[lesson]``)."""

    keyframe_after_s: float = 2.0
    renegotiate_after_s: float = 6.0
    loss_alarm: float = 0.05
    rtt_alarm_ms: float = 400.0
    degraded_after_s: float = 5.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one sample calls for."""

    keyframe: tuple[str, ...] = ()  # incoming pictures to ask a keyframe for
    renegotiate: str = ""  # why the session must be rebuilt ("" to keep it)
    degraded: bool | None = None  # True: raise link_degraded, False: clear it, None: no change
    detail: str = ""


@dataclass
class PeerWatch:
    """The state of one connected peer's watch; start a new one per session."""

    rules: WatchRules
    asked: set[str] = field(default_factory=set)  # pictures a keyframe was asked for in this freeze
    bad_since: float | None = None
    good_since: float | None = None
    degraded: bool = False

    def sample(self, now: float, frozen: dict[str, float], loss: float | None, rtt_ms: float | None) -> Verdict:
        """Judge one sample: `frozen` maps each expected incoming picture to seconds without a new frame."""
        rules = self.rules
        stuck = {name: age for name, age in frozen.items() if age >= rules.renegotiate_after_s}
        if stuck:
            name, age = max(stuck.items(), key=lambda item: item[1])
            return Verdict(renegotiate=f"incoming {name} frozen for {age:.0f} s after a keyframe request")
        ask = tuple(n for n, age in frozen.items() if age >= rules.keyframe_after_s and n not in self.asked)
        self.asked = {n for n in self.asked | set(ask) if frozen.get(n, 0.0) >= rules.keyframe_after_s}
        degraded, detail = self._link(now, loss, rtt_ms)
        return Verdict(keyframe=ask, degraded=degraded, detail=detail)

    def _link(self, now: float, loss: float | None, rtt_ms: float | None) -> tuple[bool | None, str]:
        """``link_degraded`` after loss or RTT stays over its threshold for `degraded_after_s`, and back."""
        rules = self.rules
        problems = []
        if loss is not None and loss > rules.loss_alarm:
            problems.append(f"loss {loss:.0%} > {rules.loss_alarm:.0%}")
        if rtt_ms is not None and rtt_ms > rules.rtt_alarm_ms:
            problems.append(f"RTT {rtt_ms:.0f} ms > {rules.rtt_alarm_ms:.0f} ms")
        if problems:
            self.good_since = None
            self.bad_since = now if self.bad_since is None else self.bad_since
            if not self.degraded and now - self.bad_since >= rules.degraded_after_s:
                self.degraded = True
                return True, ", ".join(problems)
            return None, ""
        self.bad_since = None
        self.good_since = now if self.good_since is None else self.good_since
        if self.degraded and now - self.good_since >= rules.degraded_after_s:
            self.degraded = False
            return False, "loss and RTT back under their thresholds"
        return None, ""


REFUSALS_KEPT = 256  # refused agents remembered at once (the broker's ACL keeps the real number small)


@dataclass
class RefusalLog:
    """One audit event per refused agent per `every_s`, standing for every refusal since the previous one.

    A refused leader re-offers every few seconds for as long as its lesson runs; an event for each
    would bury the audit trail.  Sans-IO: the caller passes the time.
    """

    every_s: float
    last: dict[str, tuple[float, int]] = field(default_factory=dict)  # key -> (when reported, kept quiet since)

    def note(self, key: str, now: float) -> int:
        """A refusal of `key` now: how many refusals to report (this one and those kept quiet), or 0 to stay quiet."""
        seen = self.last.get(key)
        if seen is not None and now - seen[0] < self.every_s:
            self.last[key] = (seen[0], seen[1] + 1)
            return 0
        if len(self.last) >= REFUSALS_KEPT:
            self.last = {k: v for k, v in self.last.items() if now - v[0] < self.every_s}
        self.last[key] = (now, 0)
        return 1 + (seen[1] if seen is not None else 0)
