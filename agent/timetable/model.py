"""The weekly timetable (课表) and the sans-IO planner: what should be true at a given instant.

Weekdays are ISO: 1 is Monday (周一), 7 is Sunday.  Weekly lessons do not take place on the
``skip_dates`` (holidays, single dates or ``first..last`` ranges); a date in ``makeup_days``
(调休) follows the given weekday's lessons even inside a skipped range, and a lesson with
explicit ``dates`` takes place on those dates whatever ``skip_dates`` says.  Times are wall-clock
times in the timetable's ``timezone`` (an offset such as ``+08:00`` or a zone such as
``Asia/Shanghai``).  No lesson crosses midnight.  A lesson's optional ``layout`` is passed to
``record.start`` as its ``layout`` argument (and to ``broadcast.start``: the same picture, one encoder).
A lesson's ``broadcast`` names a ``[broadcast]`` target: the lesson is pushed live there while it is on.

A lesson can be live (专递课堂 / 双师): on the leading classroom's timetable ``live`` is the
``lesson.start`` mode and ``remotes`` the remote classrooms' agent ids; on a remote classroom's
timetable ``main`` names the agent that leads the same lesson, whose offers it then answers
while the lesson is on (`timetable_main`) even when ``[lesson] trusted`` does not name it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from agent.errors import ConfigError

MAX_POWER_MIN = 720
LIVE_MODES = ("zhuandi", "dual_teacher")
# A remote classroom answers its timetable's main this long before the lesson starts: two school
# PCs' clocks differ by seconds to minutes, and a teacher may start the live lesson a little early.
MAIN_EARLY = timedelta(minutes=5)
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_OFFSET = re.compile(r"^(?:UTC)?([+-])(\d{2}):?(\d{2})$")


class TimetableError(ConfigError):
    """A timetable is wrong; ``problems`` lists every one as ``key.path: message``."""

    def __init__(self, problems: list[str]) -> None:
        """Keep the problems for callers that merge them into a larger report."""
        self.problems = tuple(problems)
        super().__init__(f"{len(problems)} problem(s):\n  " + "\n  ".join(problems))


@dataclass(frozen=True, slots=True)
class Lesson:
    """One lesson: weekly on ``days`` or once on each of ``dates``, from ``start`` to ``end``."""

    start: time
    end: time
    name: str
    teacher: str = ""
    record: bool = False
    layout: str | None = None
    days: tuple[int, ...] = ()
    dates: tuple[date, ...] = ()
    live: str | None = None
    remotes: tuple[str, ...] = ()
    main: str | None = None
    broadcast: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON/TOML form (``day`` is one weekday or a list)."""
        out: dict[str, Any] = {}
        if self.days:
            out["day"] = self.days[0] if len(self.days) == 1 else list(self.days)
        if self.dates:
            out["dates"] = [d.isoformat() for d in self.dates]
        out.update(start=hhmm(self.start), end=hhmm(self.end), name=self.name, teacher=self.teacher)
        out["record"] = self.record
        if self.layout is not None:
            out["layout"] = self.layout
        if self.live is not None:
            out.update(live=self.live, remotes=list(self.remotes))
        if self.main is not None:
            out["main"] = self.main
        if self.broadcast is not None:
            out["broadcast"] = self.broadcast
        return out

    def span(self) -> str:
        """``08:00-08:45``, for messages."""
        return f"{hhmm(self.start)}-{hhmm(self.end)}"


@dataclass(frozen=True, slots=True)
class Recording:
    """A lesson occurrence that should be recorded now: the ``record.start`` arguments and its times."""

    lesson: str
    teacher: str
    layout: str | None
    starts: datetime
    ends: datetime

    def args(self) -> dict[str, Any]:
        """The ``record.start`` arguments (empty ones left out: the command rejects empty strings)."""
        out: dict[str, Any] = {"lesson": self.lesson}
        if self.teacher:
            out["teacher"] = self.teacher
        if self.layout:
            out["layout"] = self.layout
        return out


@dataclass(frozen=True, slots=True)
class Live:
    """A live lesson occurrence this room should lead now: the ``lesson.start`` arguments and its times."""

    lesson: str
    mode: str
    remotes: tuple[str, ...]
    starts: datetime
    ends: datetime

    def args(self) -> dict[str, Any]:
        """The ``lesson.start`` arguments."""
        return {"mode": self.mode, "remotes": list(self.remotes)}


@dataclass(frozen=True, slots=True)
class Broadcast:
    """A lesson occurrence that should be pushed live now: the ``broadcast.start`` arguments and its times."""

    lesson: str
    target: str
    layout: str | None
    starts: datetime
    ends: datetime

    def args(self) -> dict[str, Any]:
        """The ``broadcast.start`` arguments."""
        out: dict[str, Any] = {"target": self.target}
        if self.layout:
            out["layout"] = self.layout
        return out


@dataclass(frozen=True, slots=True)
class Plan:
    """What should be true at one instant."""

    lesson: Lesson | None
    should_record: Recording | None
    devices_on: bool
    should_lead: Live | None = None
    should_broadcast: Broadcast | None = None


@dataclass(frozen=True, slots=True)
class Timetable:
    """The room's timetable and its power schedule (定时开关机)."""

    lessons: tuple[Lesson, ...] = ()
    power_on_before_min: int = 10
    power_off_after_min: int = 10
    auto_power: bool = True
    timezone: str = "+08:00"
    skip_dates: tuple[tuple[date, date], ...] = ()
    makeup_days: tuple[tuple[date, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON/TOML form, accepted back by `agent.timetable.parse.parse_timetable`."""
        return {
            "timezone": self.timezone,
            "power_on_before_min": self.power_on_before_min,
            "power_off_after_min": self.power_off_after_min,
            "auto_power": self.auto_power,
            "skip_dates": [
                a.isoformat() if a == b else f"{a.isoformat()}..{b.isoformat()}" for a, b in self.skip_dates
            ],
            "makeup_days": {d.isoformat(): w for d, w in self.makeup_days},
            "lessons": [lesson.to_dict() for lesson in self.lessons],
        }

    @property
    def tz(self) -> tzinfo:
        """The zone the lesson times are in."""
        return parse_zone(self.timezone)

    def lessons_on(self, day: date) -> list[Lesson]:
        """The lessons taking place on a date, by start time."""
        makeup = dict(self.makeup_days)
        weekday = makeup.get(day, day.isoweekday())
        weekly = day in makeup or not any(a <= day <= b for a, b in self.skip_dates)
        found = [x for x in self.lessons if day in x.dates or (weekly and weekday in x.days)]
        return sorted(found, key=lambda x: x.start)


def plan(timetable: Timetable, now: datetime) -> Plan:
    """What should be true at ``now`` (a naive ``now`` is read in the timetable's zone)."""
    now = _local(timetable, now)
    lesson = next((x for x in timetable.lessons_on(now.date()) if _at(now, x.start) <= now < _at(now, x.end)), None)
    recording, live, broadcast = None, None, None
    if lesson is not None:
        starts, ends = _at(now, lesson.start), _at(now, lesson.end)
        if lesson.record:
            recording = Recording(lesson.name, lesson.teacher, lesson.layout, starts, ends)
        if lesson.live is not None:
            live = Live(lesson.name, lesson.live, lesson.remotes, starts, ends)
        if lesson.broadcast is not None:
            broadcast = Broadcast(lesson.name, lesson.broadcast, lesson.layout, starts, ends)
    on = any(first <= now < last for first, last in _windows(timetable, now.date() - timedelta(days=1), 3))
    return Plan(lesson, recording, on, live, broadcast)


def timetable_main(timetable: Timetable, now: datetime, early: timedelta = MAIN_EARLY) -> str | None:
    """The agent (``id`` or ``site/id``) leading the live lesson on now, or starting within `early`; else None.

    A remote classroom answers that agent's offers as if ``[lesson] trusted`` named it.
    """
    now = _local(timetable, now)
    for day in (now.date(), (now + early).date()):  # a lesson just after midnight starts "tomorrow"
        for lesson in timetable.lessons_on(day):
            if lesson.main and _at(now, lesson.start, day) - early <= now < _at(now, lesson.end, day):
                return lesson.main
    return None


def is_timetable_main(timetable: Timetable, now: datetime, site: str, agent: str) -> bool:
    """Whether `agent` of `site` leads the live lesson on now (`timetable_main`, by id or ``site/id``)."""
    return timetable_main(timetable, now) in (agent, f"{site}/{agent}")


def next_change(timetable: Timetable, now: datetime, horizon_days: int = 8) -> datetime | None:
    """The first instant after ``now`` at which the plan may change; None if none within the horizon."""
    now = _local(timetable, now)
    later = [t for t in _instants(timetable, now.date() - timedelta(days=1), horizon_days + 1) if t > now]
    return min(later, default=None)


def parse_zone(text: str) -> tzinfo:
    """``+08:00`` / ``UTC+0800`` / ``UTC`` / a zone name; ValueError when it is none of them."""
    match = _OFFSET.match(text)
    if match:
        sign, hours, minutes = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes))
        if delta >= timedelta(hours=24):
            raise ValueError(f"offset {text!r} is out of range")
        return timezone(-delta if sign == "-" else delta)
    if text in ("UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(text)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"got {text!r}, expected an offset like +08:00 or a zone like Asia/Shanghai") from None


def parse_time(value: Any) -> time:
    """``8:00``, ``08:00``, ``08:00:30`` or a TOML local time; ValueError otherwise."""
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise ValueError(f"got {value!r}, expected a wall-clock time without a zone")
        return value
    match = _TIME.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"got {value!r}, expected a time HH:MM")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"got {value!r}, expected a time 00:00..23:59")
    return time(hours, minutes, seconds)


def hhmm(value: time) -> str:
    """``08:00``, or ``08:00:30`` when the time has seconds."""
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


def _local(timetable: Timetable, now: datetime) -> datetime:
    tz = timetable.tz
    return now.replace(tzinfo=tz) if now.tzinfo is None else now.astimezone(tz)


def _at(now: datetime, at: time, day: date | None = None) -> datetime:
    return datetime.combine(day or now.date(), at, tzinfo=now.tzinfo)


def _days(first: date, count: int) -> Iterator[date]:
    return (first + timedelta(days=i) for i in range(count))


def _windows(timetable: Timetable, first: date, count: int) -> Iterator[tuple[datetime, datetime]]:
    """Per day with lessons: from N minutes before the first lesson to N minutes after the last."""
    tz = timetable.tz
    for day in _days(first, count):
        lessons = timetable.lessons_on(day)
        if lessons:
            opens = datetime.combine(day, lessons[0].start, tzinfo=tz)
            closes = datetime.combine(day, max(x.end for x in lessons), tzinfo=tz)
            yield (
                opens - timedelta(minutes=timetable.power_on_before_min),
                closes + timedelta(minutes=timetable.power_off_after_min),
            )


def _instants(timetable: Timetable, first: date, count: int) -> Iterator[datetime]:
    tz = timetable.tz
    for day in _days(first, count):
        for lesson in timetable.lessons_on(day):
            yield datetime.combine(day, lesson.start, tzinfo=tz)
            yield datetime.combine(day, lesson.end, tzinfo=tz)
    for opens, closes in _windows(timetable, first, count):
        yield opens
        yield closes
