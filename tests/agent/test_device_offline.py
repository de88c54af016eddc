"""`device_offline`: raised when a device stops answering, not on every other poll of a device that floods its line."""

from __future__ import annotations

from agent.alarms import Alarms
from agent.config.site import DeviceConfig
from agent.devices import OFFLINE_AFTER, DeviceService
from contract import DeviceState, Event
from drivers.device import Health
from drivers.profile import find_profile


def service() -> tuple[DeviceService, list[Event], list[DeviceState]]:
    events: list[Event] = []
    states: list[DeviceState] = []

    async def on_state(state: DeviceState) -> None:
        states.append(state)

    config = DeviceConfig("camera", find_profile("sony-visca"), "sim", 5.0)
    return DeviceService(config, on_state, Alarms(events.append)), events, states


def offline() -> Health:
    return Health(online=False, last_error="garbage only")


async def test_one_lost_poll_at_a_time_raises_no_alarm_and_states_still_tell_the_truth() -> None:
    camera, events, states = service()
    for _ in range(5):  # a device flooding its line: every other poll lost
        await camera.report(Health(online=True))
        await camera.report(offline())
    assert events == []
    assert [s.online for s in states] == [True, False] * 5  # the state says what the last poll saw


async def test_a_device_that_stops_answering_raises_once_and_clears_when_back() -> None:
    camera, events, _ = service()
    await camera.report(Health(online=True))
    for _ in range(OFFLINE_AFTER + 3):
        await camera.report(offline())
    await camera.report(Health(online=True))
    assert [(e.type, e.action, e.device) for e in events] == [
        ("device_offline", "raise", "camera"),
        ("device_offline", "clear", "camera"),
    ]
    assert "garbage only" in events[0].message


async def test_a_panel_that_has_no_status_query_is_not_called_offline_before_anything_failed() -> None:
    camera, events, _ = service()
    for _ in range(OFFLINE_AFTER + 3):  # polls that asked nothing (hitevision-ifp publishes no query)
        await camera.report(Health(online=False, last_error=""))
    assert events == []
