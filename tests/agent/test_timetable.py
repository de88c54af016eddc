"""Timetable (课表) behaviour with an injected clock: parsing, the planner, the scheduler, schedule.*."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import pytest

from agent.timetable.model import Timetable, TimetableError, next_change, plan
from agent.timetable.parse import parse_timetable

BEIJING = timezone(timedelta(hours=8))
MONDAY = date(2025, 9, 1)

TIMETABLE: dict[str, Any] = {
    "timezone": "+08:00",
    "power_on_before_min": 15,
    "power_off_after_min": 10,
    "skip_dates": ["2025-10-01..2025-10-07"],
    "makeup_days": {"2025-09-28": 3},
    "lessons": [
        {"day": [1, 3], "start": "08:00", "end": "08:45", "name": "语文", "teacher": "王老师", "record": True},
        {"day": [1, 3], "start": "08:55", "end": "09:40", "name": "数学", "teacher": "李老师"},
        {"day": [1, 3], "start": "10:00", "end": "10:45", "name": "英语", "teacher": "张老师", "record": True},
        {"day": 6, "start": "09:00", "end": "09:45", "name": "兴趣课", "record": True, "layout": "pip"},
    ],
}


def at(day: date, hhmm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=BEIJING)


# --- parsing -------------------------------------------------------------------------------


def test_every_problem_is_reported_at_once_with_its_key_path() -> None:
    bad = {
        "timezone": "Mars/Olympus",
        "power_on_before_min": -5,
        "colour": "red",
        "skip_dates": ["2025-13-01"],
        "lessons": [
            {"day": 1, "start": "08:00", "end": "08:45", "name": "语文"},
            {"day": 1, "start": "08:30", "end": "09:15", "name": "数学"},
            {"day": 8, "start": "25:00", "end": "09:00", "name": ""},
            {"day": 2, "start": "10:00", "end": "09:00", "name": "英语", "room": "A"},
        ],
    }
    with pytest.raises(TimetableError) as caught:
        parse_timetable(bad)
    problems = caught.value.problems
    expected = [
        "timetable.timezone:",
        "timetable.power_on_before_min:",
        "timetable.colour: unknown key",
        "timetable.skip_dates[0]:",
        "timetable.lessons[2].day:",
        "timetable.lessons[2].start:",
        "timetable.lessons[2].name: missing",
        "timetable.lessons[3].end: 09:00 is not after start 10:00",
        "timetable.lessons[3].room: unknown key",
    ]
    for prefix in expected:
        assert any(p.startswith(prefix) for p in problems), (prefix, problems)
    assert str(len(problems)) in str(caught.value)


def test_overlapping_lessons_on_a_day_are_named() -> None:
    data = {
        "lessons": [
            {"day": [1, 2], "start": "08:00", "end": "08:45", "name": "语文"},
            {"day": 2, "start": "08:40", "end": "09:20", "name": "数学"},
            {"dates": ["2025-09-01"], "start": "08:30", "end": "09:00", "name": "公开课"},
        ]
    }
    with pytest.raises(TimetableError) as caught:
        parse_timetable(data)
    assert caught.value.problems == (
        "timetable.lessons[1]: overlaps lessons[0] (语文 08:00-08:45 / 数学 08:40-09:20) on weekday 2",
        "timetable.lessons[2]: overlaps lessons[0] (语文 08:00-08:45 / 公开课 08:30-09:00) on 2025-09-01",
    )


def test_round_trip_and_toml_native_times_and_dates() -> None:
    timetable = parse_timetable(TIMETABLE)
    assert parse_timetable(json.loads(json.dumps(timetable.to_dict()))) == timetable
    toml = tomllib.loads(
        """
        [timetable]
        skip_dates = [2025-10-01, "2025-10-02..2025-10-07"]
        [[timetable.lessons]]
        day = 6
        start = 09:00:00
        end = 09:45:00
        name = "兴趣课"
        record = true
        """
    )
    parsed = parse_timetable(toml["timetable"])
    assert parsed.lessons[0].start == time(9, 0) and parsed.lessons[0].days == (6,)
    assert parsed.skip_dates == ((date(2025, 10, 1), date(2025, 10, 1)), (date(2025, 10, 2), date(2025, 10, 7)))


# --- the planner ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "lesson", "record", "on"),
    [
        (at(MONDAY, "07:40"), None, None, False),  # before the power window
        (at(MONDAY, "07:45"), None, None, True),  # 15 minutes before the first lesson
        (at(MONDAY, "08:00"), "语文", "语文", True),
        (at(MONDAY, "08:44:59"), "语文", "语文", True),
        (at(MONDAY, "08:45"), None, None, True),  # break
        (at(MONDAY, "09:00"), "数学", None, True),  # not marked for recording
        (at(MONDAY, "10:50"), None, None, True),  # within 10 minutes after the last
        (at(MONDAY, "10:55"), None, None, False),
        (at(MONDAY + timedelta(days=1), "08:10"), None, None, False),  # Tuesday: no lessons
        (at(date(2025, 9, 6), "09:10"), "兴趣课", "兴趣课", True),  # Saturday
        (at(date(2025, 9, 7), "08:10"), None, None, False),  # Sunday
        (at(date(2025, 10, 1), "08:10"), None, None, False),  # National Day holiday, a Wednesday
        (at(date(2025, 9, 28), "08:10"), "语文", "语文", True),  # Sunday working as a Wednesday (调休)
        (datetime(2025, 9, 1, 0, 10, tzinfo=UTC), "语文", "语文", True),  # 08:10 in Beijing
    ],
)
def test_plan_says_what_should_be_true(when: datetime, lesson: str | None, record: str | None, on: bool) -> None:
    now = plan(parse_timetable(TIMETABLE), when)
    assert (now.lesson.name if now.lesson else None) == lesson
    assert (now.should_record.lesson if now.should_record else None) == record
    assert now.devices_on is on


def test_record_start_arguments_carry_teacher_and_layout() -> None:
    timetable = parse_timetable(TIMETABLE)
    monday = plan(timetable, at(MONDAY, "08:10")).should_record
    saturday = plan(timetable, at(date(2025, 9, 6), "09:10")).should_record
    assert monday is not None and monday.args() == {"lesson": "语文", "teacher": "王老师"}
    assert monday.starts == at(MONDAY, "08:00") and monday.ends == at(MONDAY, "08:45")
    assert saturday is not None and saturday.args() == {"lesson": "兴趣课", "layout": "pip"}


def test_next_change_is_the_next_boundary() -> None:
    timetable = parse_timetable(TIMETABLE)
    assert next_change(timetable, at(MONDAY, "07:00")) == at(MONDAY, "07:45")
    assert next_change(timetable, at(MONDAY, "08:10")) == at(MONDAY, "08:45")
    assert next_change(timetable, at(MONDAY, "11:00")) == at(MONDAY + timedelta(days=2), "07:45")
    assert next_change(Timetable(), at(MONDAY, "11:00")) is None
