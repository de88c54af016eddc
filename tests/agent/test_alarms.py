"""Alarms: the centre sees one raise and one clear per alarm, and the clear tells the latest news."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.alarms import Alarms
from agent.link import AgentLink
from agent.store import AgentStore
from contract import Event, Info, Topics, decode
from contract.mqtt import BrokerAddress


def test_a_second_raise_updates_the_open_alarm_and_its_clear_carries_the_newest_message() -> None:
    events: list[Event] = []
    alarms = Alarms(events.append)
    alarms.raise_("disk_low", "warning", "disk 91% full", "recordings")
    alarms.raise_("disk_low", "warning", "disk 93% full", "recordings")
    alarms.raise_("disk_low", "warning", "disk 95% full", "recordings")
    open_alarm = alarms.open[("disk_low", "recordings")]
    assert (open_alarm.severity, open_alarm.message) == ("warning", "disk 95% full")
    alarms.clear("disk_low", "recordings")
    # Only the first raise goes to the centre; the updates stay local until the clear reports them.
    assert [(e.action, e.severity, e.message) for e in events] == [
        ("raise", "warning", "disk 91% full"),
        ("clear", "warning", "disk 95% full: resolved"),
    ]
    assert events[0].ts <= events[1].ts and not alarms.open


def test_a_change_of_severity_is_news_and_params_travel_with_the_code() -> None:
    events: list[Event] = []
    alarms = Alarms(events.append)
    alarms.raise_("fault_fan", "warning", "fan warning", "projector", {"part": "fan", "level": "warning"})
    alarms.raise_("fault_fan", "warning", "fan warning", "projector", {"part": "fan", "level": "warning"})
    alarms.raise_("fault_fan", "critical", "fan error", "projector", {"part": "fan", "level": "error"})
    alarms.clear("fault_fan", "projector")
    assert [(e.action, e.severity, e.extra) for e in events] == [
        ("raise", "warning", {"params": {"part": "fan", "level": "warning"}}),
        ("raise", "critical", {"params": {"part": "fan", "level": "error"}}),
        ("clear", "critical", {"params": {"part": "fan", "level": "error"}}),
    ]
    assert events[1].to_dict()["params"] == {"part": "fan", "level": "error"}


def test_every_event_the_link_queues_gets_an_id_of_its_own_kept_in_the_outbox(tmp_path: Path) -> None:
    async def never(_: Any) -> Any:
        raise AssertionError("no command expected")

    store = AgentStore(tmp_path / "agent.db")
    link = AgentLink(
        BrokerAddress.parse("mqtt://127.0.0.1:1"),
        Topics("school-a", "room-101"),
        store,
        version="test",
        info=lambda: Info("101", "pc-101", "test", ()),
        states=list,
        run_command=never,
    )
    event = Event("panel.offline", "warning", "raise", "2026-11-22T08:00:00Z", "no answer", "panel")
    link.send_event(event)
    link.send_event(event)
    link.send_event(Event("audit", "info", "log", "2026-11-22T08:00:00Z", id="given"))
    ids = [decode(item.payload)["id"] for item in store.outbox_peek()]
    assert len(set(ids[:2])) == 2 and all(ids[:2]) and ids[2] == "given"
