"""Checking a timetable mapping (the site config's ``[timetable]`` or ``schedule.set``'s argument).

Every problem is collected, each as ``path.key: message``, and reported at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

from agent.timetable.model import (
    LIVE_MODES,
    MAX_POWER_MIN,
    Lesson,
    Timetable,
    TimetableError,
    hhmm,
    parse_time,
    parse_zone,
)

_FORBIDDEN = set("+# \t")  # an agent id is an MQTT topic level


def _agent_ref(text: str) -> bool:
    """An agent id, or ``site/agent`` (as ``[lesson] trusted`` accepts)."""
    parts = text.split("/")
    return len(parts) <= 2 and all(parts) and not _FORBIDDEN & set(text)


def parse_timetable(data: Any, path: str = "timetable") -> Timetable:
    """A checked Timetable; TimetableError lists every problem found."""
    return _Parser(path).timetable(data)


_TOP = {"lessons", "power_on_before_min", "power_off_after_min", "auto_power", "timezone", "skip_dates", "makeup_days"}
_LESSON = {"day", "dates", "start", "end", "name", "teacher", "record", "layout", "live", "remotes", "main"}


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
            self.add(f"{where}end", f"{hhmm(end)} is not after start {hhmm(start)}")
        name = self.get(data, "name", where, str, "")
        if not name.strip():
            self.add(f"{where}name", "missing (the lesson's name, e.g. 语文)")
        teacher = self.get(data, "teacher", where, str, "")
        record = self.get(data, "record", where, bool, False)
        layout = self.get(data, "layout", where, str, None)
        live, remotes, main = self.live(data, where)
        if len(self.problems) > before or start is None or end is None:
            return None
        return Lesson(
            start, end, name.strip(), teacher.strip(), record, layout or None, days, dates, live, remotes, main
        )

    def live(self, data: Mapping[str, Any], where: str) -> tuple[str | None, tuple[str, ...], str | None]:
        """``live`` + ``remotes`` (this room leads) or ``main`` (another room leads), checked together."""
        live = self.get(data, "live", where, str, None)
        if live is not None and live not in LIVE_MODES:
            self.add(f"{where}live", f"got {live!r}, expected {' or '.join(LIVE_MODES)}")
        remotes = self.remotes(data, where, live)
        main = self.get(data, "main", where, str, None)
        if main is not None and not _agent_ref(main):
            self.add(f"{where}main", f"got {main!r}, expected the leading classroom's agent id (or site/agent id)")
        if main is not None and live is not None:
            self.add(f"{where}main", "give either live (this room leads) or main (another room leads), not both")
        return live, remotes, main

    def remotes(self, data: Mapping[str, Any], where: str, live: str | None) -> tuple[str, ...]:
        key = f"{where}remotes"
        if "remotes" not in data:
            if live is not None:
                self.add(key, 'missing (the remote classrooms\' agent ids, e.g. ["room-101"])')
            return ()
        if live is None:
            self.add(key, "only with live = " + " or ".join(LIVE_MODES) + " (a lesson this room leads)")
        value = data["remotes"]
        if not isinstance(value, list) or not value:
            self.add(key, f"got {value!r}, expected a list of agent ids")
            return ()
        for i, item in enumerate(value):
            if not (isinstance(item, str) and _agent_ref(item) and "/" not in item):
                self.add(f"{key}[{i}]", f"got {item!r}, expected an agent id (no spaces, / + #)")
            elif value.index(item) < i:
                self.add(f"{key}[{i}]", f"{item!r} is listed twice")
        if live == "dual_teacher" and len(value) != 1:
            self.add(key, f"dual_teacher takes exactly one remote classroom, got {len(value)}")
        return tuple(str(x) for x in value)

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
