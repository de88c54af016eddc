"""Alarms: raised once, cleared once, each sent as an event (through the outbox)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from contract import Event, now_iso

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Alarm:
    """An open alarm."""

    type: str
    severity: str
    message: str
    device: str
    since: str


class Alarms:
    """The agent's open alarms; a change is emitted as an ``event`` message."""

    def __init__(self, emit: Callable[[Event], None]) -> None:
        """`emit` queues an event for the centre (it must not block)."""
        self.emit = emit
        self.open: dict[tuple[str, str], Alarm] = {}

    def raise_(self, type_: str, severity: str, message: str, device: str = "") -> None:
        """Open an alarm; a second raise of the same type and device only updates it locally.

        The open alarm keeps the newest message and severity (and its first `since`).
        """
        key = (type_, device)
        current = self.open.get(key)
        if current is not None:
            # The centre already shows it open; telling it again on every poll would flood the
            # outbox, so the news waits for the clear (and the local status shows it now).
            self.open[key] = replace(current, severity=severity, message=message)
            return
        alarm = Alarm(type_, severity, message, device, now_iso())
        self.open[key] = alarm
        log.warning("alarm raised: %s %s %s", type_, device, message)
        self.emit(Event(type_, severity, "raise", alarm.since, message, device))

    def clear(self, type_: str, device: str = "", message: str = "") -> None:
        """Close an alarm if it is open."""
        alarm = self.open.pop((type_, device), None)
        if alarm is None:
            return
        log.info("alarm cleared: %s %s", type_, device)
        self.emit(Event(type_, alarm.severity, "clear", now_iso(), message or f"{alarm.message}: resolved", device))

    def log(self, type_: str, message: str, **extra: object) -> None:
        """An audit record (action ``log``), not an alarm."""
        self.emit(Event(type_, "info", "log", now_iso(), message, "", extra))
