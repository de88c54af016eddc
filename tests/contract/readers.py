"""Every topic kind's reader, as the centre and the agent apply them to what they receive (bounds and fuzz tests)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from contract import Command, CommandReply, DeviceState, Event, Info, Status, Telemetry
from contract.rtc import RtcMessage

READERS: dict[str, Callable[[Mapping[str, Any]], object]] = {
    "status": Status.from_dict,
    "info": Info.from_dict,
    "state": DeviceState.from_dict,
    "telemetry": Telemetry.from_dict,
    "event": Event.from_dict,
    "cmd": lambda data: Command.from_dict("agent.ping", data),
    "reply": CommandReply.from_dict,
    "rtc": RtcMessage.from_dict,
}
