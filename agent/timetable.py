"""The weekly timetable (课表) and the sans-IO planner: what should be true at a given instant.

Weekdays are ISO: 1 is Monday (周一), 7 is Sunday.  Weekly lessons do not take place on the
``skip_dates`` (holidays, single dates or ``first..last`` ranges); a date in ``makeup_days``
(调休) follows the given weekday's lessons even inside a skipped range, and a lesson with
explicit ``dates`` takes place on those dates whatever ``skip_dates`` says.  Times are wall-clock
times in the timetable's ``timezone`` (an offset such as ``+08:00`` or a zone such as
``Asia/Shanghai``).  No lesson crosses midnight.  A lesson's optional ``layout`` is passed to
``record.start`` as its ``layout`` argument.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from central.errors import ConfigError

MAX_POWER_MIN = 720
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

    def to_dict(self) -> dict[str, Any]:
        """The JSON/TOML form (``day`` is one weekday or a list)."""
        out: dict[str, Any] = {}
        if self.days:
            out["day"] = self.days[0] if len(self.days) == 1 else list(self.days)
        if self.dates:
            out["dates"] = [d.isoformat() for d in self.dates]
        out.update(start=_hhmm(self.start), end=_hhmm(self.end), name=self.name, teacher=self.teacher)
        out["record"] = self.record
        if self.layout is not None:
            out["layout"] = self.layout
        return out

    def span(self) -> str:
        """``08:00-08:45``, for messages."""
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


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
class Plan:
    """What should be true at one instant."""

    lesson: Lesson | None
    should_record: Recording | None
    devices_on: bool


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

    @classmethod
    def from_dict(cls, data: Any, path: str = "timetable") -> Timetable:
        """Check a timetable mapping; TimetableError lists every problem found."""
        return _Parser(path).timetable(data)

    def to_dict(self) -> dict[str, Any]:
        """The JSON/TOML form, accepted back by `from_dict`."""
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
    recording = None
    if lesson is not None and lesson.record:
        starts, ends = _at(now, lesson.start), _at(now, lesson.end)
        recording = Recording(lesson.name, lesson.teacher, lesson.layout, starts, ends)
    on = any(first <= now < last for first, last in _windows(timetable, now.date() - timedelta(days=1), 3))
    return Plan(lesson, recording, on)


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


def _hhmm(value: time) -> str:
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


_TOP = {"lessons", "power_on_before_min", "power_off_after_min", "auto_power", "timezone", "skip_dates", "makeup_days"}
_LESSON = {"day", "dates", "start", "end", "name", "teacher", "record", "layout"}


class _Parser:
    """Collects every problem of one timetable, each as ``path.key: message``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.problems.append(f"{self.path}.{key}: {message}" if key else f"{self.path}: {message}")

    def get(self, data: Mapping[str, Any], key: str, where: str, kind: type, default: Any) -> Any:
        value = data.get(key, default)
        if key in data and ((isinstance(value, bool) and kind is not bool) or not isinstance(value, kind)):
            self.add(f"{where}{key}", f"got {value!r}, expected {kind.__name__}")
            return default
        return value

    def known(self, data: Mapping[str, Any], where: str, allowed: set[str]) -> None:
        for key in sorted(set(data) - allowed):
            self.add(f"{where}{key}", "unknown key")

    def timetable(self, data: Any) -> Timetable:
        if not isinstance(data, Mapping):
            raise TimetableError([f"{self.path}: got {data!r}, expected a table/object"])
        self.known(data, "", _TOP)
        zone = self.get(data, "timezone", "", str, "+08:00")
        try:
            parse_zone(zone)
        except ValueError as exc:
            self.add("timezone", str(exc))
        raw = self.get(data, "lessons", "", list, [])
        lessons = [self.lesson(item, f"lessons[{i}].") for i, item in enumerate(raw)]
        table = Timetable(
            lessons=tuple(x for x in lessons if x is not None),
            power_on_before_min=self.minutes(data, "power_on_before_min"),
            power_off_after_min=self.minutes(data, "power_off_after_min"),
            auto_power=self.get(data, "auto_power", "", bool, True),
            timezone=zone,
            skip_dates=self.skip_dates(data.get("skip_dates", [])),
            makeup_days=self.makeup_days(data.get("makeup_days", {})),
        )
        if len(table.lessons) == len(raw):  # indexes in overlap messages only mean something then
            self.overlaps(table)
        if self.problems:
            raise TimetableError(self.problems)
        return table

    def minutes(self, data: Mapping[str, Any], key: str) -> int:
        value = self.get(data, key, "", int, 10)
        if not 0 <= value <= MAX_POWER_MIN:
            self.add(key, f"got {value!r}, expected minutes 0..{MAX_POWER_MIN}")
            return 10
        return int(value)

    def lesson(self, data: Any, where: str) -> Lesson | None:
        if not isinstance(data, Mapping):
            self.add(where.rstrip("."), f"got {data!r}, expected a table/object")
            return None
        before = len(self.problems)
        self.known(data, where, _LESSON)
        days, dates = self.days(data, where), self.dates(data.get("dates", []), f"{where}dates")
        if not days and not dates:
            self.add(f"{where}day", "missing (a weekday 1-7, a list of them, or dates = [...])")
        elif days and dates:
            self.add(f"{where}dates", "give either day or dates, not both")
        start, end = self.a_time(data, "start", where), self.a_time(data, "end", where)
        if start and end and end <= start:
            self.add(f"{where}end", f"{_hhmm(end)} is not after start {_hhmm(start)}")
        name = self.get(data, "name", where, str, "")
        if not name.strip():
            self.add(f"{where}name", "missing (the lesson's name, e.g. 语文)")
        teacher = self.get(data, "teacher", where, str, "")
        record = self.get(data, "record", where, bool, False)
        layout = self.get(data, "layout", where, str, None)
        if len(self.problems) > before or start is None or end is None:
            return None
        return Lesson(start, end, name.strip(), teacher.strip(), record, layout or None, days, dates)

    def days(self, data: Mapping[str, Any], where: str) -> tuple[int, ...]:
        value = data.get("day", [])
        items = [value] if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(items, list) or not all(type(d) is int and 1 <= d <= 7 for d in items):
            self.add(f"{where}day", f"got {value!r}, expected a weekday 1-7 (1 = Monday) or a list of them")
            return ()
        return tuple(sorted(set(items)))

    def a_time(self, data: Mapping[str, Any], key: str, where: str) -> time | None:
        if key not in data:
            self.add(f"{where}{key}", "missing (HH:MM)")
            return None
        try:
            return parse_time(data[key])
        except ValueError as exc:
            self.add(f"{where}{key}", str(exc))
            return None

    def a_date(self, value: Any, key: str) -> date | None:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        try:
            return date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
        except ValueError:
            pass
        self.add(key, f"got {value!r}, expected a date YYYY-MM-DD")
        return None

    def dates(self, value: Any, key: str) -> tuple[date, ...]:
        if not isinstance(value, list):
            self.add(key, f"got {value!r}, expected a list of dates")
            return ()
        found = [self.a_date(item, f"{key}[{i}]") for i, item in enumerate(value)]
        return tuple(sorted({d for d in found if d is not None}))

    def skip_dates(self, value: Any) -> tuple[tuple[date, date], ...]:
        if not isinstance(value, list):
            self.add("skip_dates", f"got {value!r}, expected a list of dates or YYYY-MM-DD..YYYY-MM-DD ranges")
            return ()
        out: list[tuple[date, date]] = []
        for i, item in enumerate(value):
            ends = item.split("..") if isinstance(item, str) and ".." in item else [item, item]
            first, last = (self.a_date(end, f"skip_dates[{i}]") for end in ends[:2])
            if first and last and last < first:
                self.add(f"skip_dates[{i}]", f"range {item!r} ends before it starts")
            elif first and last:
                out.append((first, last))
        return tuple(sorted(out))

    def makeup_days(self, value: Any) -> tuple[tuple[date, int], ...]:
        if not isinstance(value, Mapping):
            self.add("makeup_days", f"got {value!r}, expected a table of date = weekday")
            return ()
        out: list[tuple[date, int]] = []
        for key, weekday in value.items():
            day = self.a_date(key, f"makeup_days.{key}")
            if type(weekday) is not int or not 1 <= weekday <= 7:
                self.add(f"makeup_days.{key}", f"got {weekday!r}, expected the weekday 1-7 whose lessons it follows")
            elif day is not None:
                out.append((day, weekday))
        return tuple(sorted(out))

    def overlaps(self, table: Timetable) -> None:
        index = {id(x): i for i, x in enumerate(table.lessons)}
        reported: set[tuple[int, int]] = set()
        groups = [(f"on weekday {w}", [x for x in table.lessons if w in x.days]) for w in range(1, 8)]
        dated = sorted({d for x in table.lessons for d in x.dates})
        groups += [(f"on {d.isoformat()}", table.lessons_on(d)) for d in dated]
        for when, lessons in groups:
            lessons = sorted(lessons, key=lambda x: (x.start, index[id(x)]))
            for i, a in enumerate(lessons):
                for b in lessons[i + 1 :]:
                    pair = tuple(sorted((index[id(a)], index[id(b)])))
                    if b.start < a.end and pair not in reported:
                        reported.add((pair[0], pair[1]))
                        self.add(
                            f"lessons[{pair[1]}]",
                            f"overlaps lessons[{pair[0]}] ({a.name} {a.span()} / {b.name} {b.span()}) {when}",
                        )
