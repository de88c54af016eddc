"""Alarms: the centre sees one raise and one clear per alarm, and the clear tells the latest news."""

from __future__ import annotations

from agent.alarms import Alarms
from contract import Event


def test_a_second_raise_updates_the_open_alarm_and_its_clear_carries_the_newest_message() -> None:
    events: list[Event] = []
    alarms = Alarms(events.append)
    alarms.raise_("disk_low", "warning", "disk 91% full", "recordings")
    alarms.raise_("disk_low", "critical", "disk 97% full", "recordings")
    open_alarm = alarms.open[("disk_low", "recordings")]
    assert (open_alarm.severity, open_alarm.message) == ("critical", "disk 97% full")
    alarms.clear("disk_low", "recordings")
    # Only the first raise goes to the centre; the update stays local until the clear reports it.
    assert [(e.action, e.severity, e.message) for e in events] == [
        ("raise", "warning", "disk 91% full"),
        ("clear", "critical", "disk 97% full: resolved"),
    ]
    assert events[0].ts <= events[1].ts and not alarms.open
