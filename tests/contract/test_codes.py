"""Codes and params (how refusals, failures and alarms travel to be worded), names, inputs and school hours."""

from __future__ import annotations

import math
from typing import Any

import pytest

from contract import (
    CommandReply,
    CommandStatus,
    DeviceInfo,
    DeviceState,
    Info,
    PayloadError,
    SourceInfo,
    decode,
    encode,
)
from contract.codes import MAX_PARAMS, clean_params, params_from
from contract.limits import COMMAND, PAYLOAD


def _reply(extra: dict[str, Any]) -> CommandReply:
    wire = {"id": "c1", "status": "rejected", "error": "level: 140 is out of range 0..100", **extra}
    return CommandReply.from_dict(decode(encode(wire), COMMAND))


def test_a_refusal_carries_its_code_and_params_to_the_reader() -> None:
    params = {"arg": "level", "value": 140, "min": 0, "max": 100}
    error = "level: 140 is out of range 0..100"
    reply = CommandReply("c1", CommandStatus.REJECTED, None, error, "panel.volume", "arg_range", params)
    wire = reply.to_dict()
    assert wire["code"] == "arg_range" and wire["params"]["max"] == 100
    assert CommandReply.from_dict(decode(encode(wire), COMMAND)) == reply
    ok = CommandReply("c2", CommandStatus.SUCCEEDED, {"volume": 30}, code="ignored")
    assert "code" not in ok.to_dict()  # a success has nothing to word


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"code": "Arg Range!"}, "code"),
        ({"code": "x" * 65}, "code"),
        ({"code": 7}, "code"),
        ({"code": "arg_range", "params": [1]}, "params"),
        ({"code": "arg_range", "params": {f"k{i}": i for i in range(MAX_PARAMS + 1)}}, "params"),
        ({"code": "arg_range", "params": {"arg": {"deep": 1}}}, "params.arg"),
        ({"code": "arg_range", "params": {"arg": "x" * 257}}, "params.arg"),
        ({"code": "arg_range", "params": {"choices": ["a"] * 33}}, "params.choices"),
        ({"code": "arg_range", "params": {"k" * 65: 1}}, "params."),
    ],
)
def test_a_code_or_params_out_of_bounds_is_refused_naming_the_key(extra: dict[str, Any], named: str) -> None:
    with pytest.raises(PayloadError, match=rf"^{named}"):
        _reply(extra)


def test_clean_params_keeps_any_params_within_what_a_reader_accepts() -> None:
    hostile: dict[str, object] = {f"k{i}": i for i in range(40)}
    hostile |= {"k0": math.inf, "k1": {"deep": [1]}, "k2": "x" * 10_000, "k3": ("a", 2), "k4": 2**80}
    clean = clean_params(hostile)
    assert len(clean) == MAX_PARAMS and clean["k0"] == "inf" and clean["k1"] == "{'deep': [1]}"
    assert len(clean["k2"]) == 256 and clean["k3"] == ["a", "2"] and clean["k4"] == str(2**80)
    assert params_from(decode(encode({"params": clean}), PAYLOAD)) == clean


def test_names_inputs_and_school_hours_ride_in_info_within_bounds() -> None:
    info = Info(
        "高一(1)班", "pc", "1.0",
        (DeviceInfo("panel", "display", "samsung-mdc", "讲台大屏", ("hdmi1", "ops")),),
        sources=(SourceInfo("teacher", "rtsp", "rtsp://10.0.0.9/main", "老师特写"),),
        hours=(("2026-11-23T00:00:00Z", "2026-11-23T09:00:00Z"),),
    )  # fmt: skip
    assert Info.from_dict(decode(encode(info.to_dict()))) == info
    wire = info.to_dict()
    for key, value, named in [
        ("devices", [{"id": "p", "name": "名" * 65}], "devices[0].name"),
        ("devices", [{"id": "p", "inputs": ["hdmi1"] * 65}], "devices[0].inputs"),
        ("devices", [{"id": "p", "inputs": [""]}], "devices[0].inputs"),
        ("sources", [{"id": "s", "name": 5}], "sources[0].name"),
        ("hours", [{"start": "2026-11-23T09:00:00Z", "end": "2026-11-23T08:00:00Z"}], "hours[0]"),
        ("hours", [{"start": "2026-11-23T09:00:00Z"}], "hours[0].end"),
        ("hours", [{"start": "2026-11-23T08:00:00Z", "end": "2026-11-23T09:00:00Z"}] * 17, "hours"),
    ]:
        with pytest.raises(PayloadError, match=rf"^{named.replace('[', '.').replace(']', '.')}"):
            Info.from_dict({**wire, key: value})


def test_an_offline_device_says_why_in_a_code() -> None:
    state = DeviceState("side", False, "2026-11-23T08:00:00Z", {}, "/dev/ttyUSB7: cannot open", "device_unreachable")
    assert DeviceState.from_dict(decode(encode(state.to_dict()))) == state
    with pytest.raises(PayloadError, match="^code"):
        DeviceState.from_dict({**state.to_dict(), "code": "Not A Code"})
