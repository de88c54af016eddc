"""Alarms: raised once, cleared once, each sent as an event (through the outbox)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

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
    params: Mapping[str, object] = field(default_factory=dict)


class Alarms:
    """The agent's open alarms; a change is emitted as an ``event`` message."""

    def __init__(self, emit: Callable[[Event], None]) -> None:
        """`emit` queues an event for the centre (it must not block)."""
        self.emit = emit
        self.open: dict[tuple[str, str], Alarm] = {}

    def raise_(
        self, type_: str, severity: str, message: str, device: str = "", params: Mapping[str, object] | None = None
    ) -> None:
        """Open an alarm; a second raise of the same type and device only updates it locally.

        `type_` is the alarm's machine-readable code and `params` its values (``{"hours": 3100}``),
        which the event carries so that each reader words it in its own language.  The open alarm
        keeps the newest message, severity and params (and its first `since`); a change of severity
        (a warning that became an error) is sent again.
        """
        key = (type_, device)
        current = self.open.get(key)
        values = dict(params or {})
        if current is not None:
            # The centre already shows it open; telling it again on every poll would flood the
            # outbox, so the news waits for the clear (and the local status shows it now).
            self.open[key] = replace(current, severity=severity, message=message, params=values)
            if severity != current.severity:
                log.warning("alarm now %s: %s %s %s", severity, type_, device, message)
                self.emit(Event(type_, severity, "raise", now_iso(), message, device, _extra(values)))
            return
        alarm = Alarm(type_, severity, message, device, now_iso(), values)
        self.open[key] = alarm
        log.warning("alarm raised: %s %s %s", type_, device, message)
        self.emit(Event(type_, severity, "raise", alarm.since, message, device, _extra(values)))

    def clear(self, type_: str, device: str = "", message: str = "") -> None:
        """Close an alarm if it is open."""
        alarm = self.open.pop((type_, device), None)
        if alarm is None:
            return
        log.info("alarm cleared: %s %s", type_, device)
        text = message or f"{alarm.message}: resolved"
        self.emit(Event(type_, alarm.severity, "clear", now_iso(), text, device, _extra(alarm.params)))

    def log(self, type_: str, message: str, **extra: object) -> None:
        """An audit record (action ``log``), not an alarm."""
        self.emit(Event(type_, "info", "log", now_iso(), message, "", extra))


def _extra(params: Mapping[str, object]) -> dict[str, object]:
    """The event's extra fields: the alarm's params, when it has any."""
    return {"params": dict(params)} if params else {}
