"""The one checker behind profiles, site configs, timetables, the broker registry and wire payloads."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from drivers.checks import REQUIRED, Checks, at, join

CONFIG = tomllib.loads(
    """
colour = "red"
[recording]
fps = nan
segment_s = inf
fragment_s = true
size = 1280
port = 70000
corner = "middle"
[[devices]]
id = "panel"
[[devices]]
idd = "camera"
"""
)


def read(check: Checks, data: dict[str, Any]) -> None:
    check.known(data, "", {"recording", "devices"})
    rec = check.section(data, "recording")
    check.positive(rec, "fps", "recording", 25.0)
    check.positive(rec, "segment_s", "recording", 600.0)
    check.positive(rec, "fragment_s", "recording", 2.0)
    check.text(rec, "size", "recording", "1280x720")
    check.integer(rec, "port", "recording", 8765, low=0, high=65535, expected="a port 0..65535")
    check.choice(rec, "corner", "recording", ("top-left", "bottom-right"))
    for i, dev in enumerate(check.array(data, "devices", "")):
        check.table(dev, at("devices", i), {"id"}, {"id"})


def test_every_problem_is_reported_at_once_with_its_key_path() -> None:
    check = Checks()
    read(check, CONFIG)
    assert check.problems == [
        "colour: unknown key",
        "recording.fps: got nan, expected a finite number",
        "recording.segment_s: got inf, expected a finite number",
        "recording.fragment_s: got True, expected int or float",
        "recording.size: got 1280, expected str",
        "recording.port: got 70000, expected a port 0..65535",
        "recording.corner: got 'middle', expected one of top-left | bottom-right",
        "devices[1].idd: unknown key",
        "devices[1].id: missing",
    ]


def test_a_message_fails_at_its_first_problem_with_the_callers_error() -> None:
    with pytest.raises(LookupError, match=r"^colour: unknown key$"):
        read(Checks(fail=LookupError), CONFIG)


def test_a_value_out_of_range_or_of_the_wrong_type_gives_the_default_and_an_absent_key_no_problem() -> None:
    check = Checks()
    assert check.integer({"n": 3}, "n", "", 1, low=1, high=5) == 3
    assert check.integer({"n": 9}, "n", "", 1, low=1, high=5) == 1
    assert check.integer({"n": True}, "n", "", 1) == 1
    assert check.number({"x": 0.5}, "x", "", 1.0, low=0, high=1) == 0.5
    assert check.non_negative({"x": -1}, "x", "t", 2.0) == 2.0
    assert check.integer({}, "room", "", 0, low=1) == 0  # absent: the default, even outside the range
    assert check.flag({"on": 1}, "on", "", False) is False
    assert check.problems == [
        "n: got 9, expected 1..5",
        "n: got True, expected int",
        "t.x: got -1, expected 0 or more",
        "on: got 1, expected bool",
    ]


def test_required_keys_and_a_root_prefix() -> None:
    check = Checks("timetable")
    assert check.get({}, "lesson", "", str, REQUIRED) is None
    assert check.choice({"mode": 1}, "mode", "live", ("a", "b"), REQUIRED, sep=", ") == ""
    check.table([1], "lessons", expected="a table/object")
    check.add("", "not usable")
    assert check.problems == [
        "timetable.lesson: missing",
        "timetable.live.mode: got 1, expected str",
        "timetable.lessons: got [1], expected a table/object",
        "timetable: not usable",
    ]


def test_unknown_keys_may_list_the_allowed_ones() -> None:
    check = Checks()
    check.known({"site": "a", "zone": 1}, at("agents", 0), ("site", "id"), listed=True)
    assert check.problems == ["agents[0].zone: unknown key, expected site, id"]
    assert join("", "a") == "a" and join("a", "") == "a" and join("a", "b") == "a.b"


@pytest.mark.parametrize(
    "hostile",
    [None, [], {}, "", "x" * 10_000, float("nan"), -(10**400), 10**400, b"\x00", [[[]]], {"a": {"b": None}}],
    ids=lambda value: type(value).__name__,
)
def test_any_value_in_any_getter_becomes_a_problem_never_an_exception(hostile: object) -> None:
    check = Checks()
    data = {"k": hostile}
    check.text(data, "k", "p")
    check.flag(data, "k", "p", False)
    check.integer(data, "k", "p", 0, low=0, high=10)
    check.number(data, "k", "p", 0.0, low=0, high=10)
    check.positive(data, "k", "p", 1.0)
    check.choice(data, "k", "p", ("a",))
    check.array(data, "k", "p")
    check.mapping(data, "k", "p")
    check.table(hostile, "p", {"a"})
    check.section(data, "k", "p")
    assert check.problems and all(p.startswith("p") and len(p) < 200 for p in check.problems)
