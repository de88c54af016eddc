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
from drivers.checks import Checks, at, join

_FORBIDDEN = set("+# \t")  # an agent id is an MQTT topic level


def _agent_ref(text: str) -> bool:
    """An agent id, or ``site/agent`` (as ``[lesson] trusted`` accepts)."""
    parts = text.split("/")
    return len(parts) <= 2 and all(parts) and not _FORBIDDEN & set(text)


def parse_timetable(data: Any, path: str = "timetable") -> Timetable:
    """A checked Timetable; TimetableError lists every problem found."""
    return _Parser(path).timetable(data)


_TOP = {"lessons", "power_on_before_min", "power_off_after_min", "auto_power", "timezone", "skip_dates", "makeup_days"}
_LESSON = {
    "day", "dates", "start", "end", "name", "teacher", "record", "layout", "live", "remotes", "main", "broadcast",
}  # fmt: skip


class _Parser:
    """Builds one timetable; its `check` collects every problem, each as ``path.key: message``."""

    def __init__(self, path: str) -> None:
        self.check = Checks(path)

    def timetable(self, data: Any) -> Timetable:
        if not isinstance(data, Mapping):
            self.check.table(data, "", expected="a table/object")
            raise TimetableError(self.check.problems)
        self.check.known(data, "", _TOP)
        zone = self.check.text(data, "timezone", "", "+08:00")
        try:
            parse_zone(zone)
        except ValueError as exc:
            self.check.add("timezone", str(exc))
        raw = self.check.array(data, "lessons", "")
        lessons = [self.lesson(item, at("lessons", i)) for i, item in enumerate(raw)]
        table = Timetable(
            lessons=tuple(x for x in lessons if x is not None),
            power_on_before_min=self.minutes(data, "power_on_before_min"),
            power_off_after_min=self.minutes(data, "power_off_after_min"),
            auto_power=self.check.flag(data, "auto_power", "", True),
            timezone=zone,
            skip_dates=self.skip_dates(data.get("skip_dates", [])),
            makeup_days=self.makeup_days(data.get("makeup_days", {})),
        )
        if len(table.lessons) == len(raw):  # indexes in overlap messages only mean something then
            self.overlaps(table)
        if self.check.problems:
            raise TimetableError(self.check.problems)
        return table

    def minutes(self, data: Mapping[str, Any], key: str) -> int:
        return self.check.integer(data, key, "", 10, low=0, high=MAX_POWER_MIN, expected=f"minutes 0..{MAX_POWER_MIN}")

    def lesson(self, data: Any, where: str) -> Lesson | None:
        if not isinstance(data, Mapping):
            self.check.table(data, where, expected="a table/object")
            return None
        before = len(self.check.problems)
        self.check.known(data, where, _LESSON)
        days, dates = self.days(data, where), self.dates(data.get("dates", []), join(where, "dates"))
        if not days and not dates:
            self.check.add(join(where, "day"), "missing (a weekday 1-7, a list of them, or dates = [...])")
        elif days and dates:
            self.check.add(join(where, "dates"), "give either day or dates, not both")
        start, end = self.a_time(data, "start", where), self.a_time(data, "end", where)
        if start and end and end <= start:
            self.check.add(join(where, "end"), f"{hhmm(end)} is not after start {hhmm(start)}")
        name = self.check.text(data, "name", where)
        if not name.strip():
            self.check.add(join(where, "name"), "missing (the lesson's name, e.g. 语文)")
        teacher = self.check.text(data, "teacher", where)
        record = self.check.flag(data, "record", where, False)
        layout = self.check.get(data, "layout", where, str, None)
        live, remotes, main = self.live(data, where)
        broadcast = self.check.get(data, "broadcast", where, str, None)
        if broadcast is not None and (not broadcast or any(c in broadcast for c in "/+#=, ")):
            self.check.add(join(where, "broadcast"), f"got {broadcast!r}, expected a [broadcast] target's name")
        if len(self.check.problems) > before or start is None or end is None:
            return None
        return Lesson(
            start, end, name.strip(), teacher.strip(), record, layout or None, days, dates, live, remotes, main,
            broadcast,
        )  # fmt: skip

    def live(self, data: Mapping[str, Any], where: str) -> tuple[str | None, tuple[str, ...], str | None]:
        """``live`` + ``remotes`` (this room leads) or ``main`` (another room leads), checked together."""
        live = self.check.get(data, "live", where, str, None)
        if live is not None and live not in LIVE_MODES:
            self.check.add(join(where, "live"), f"got {live!r}, expected {' or '.join(LIVE_MODES)}")
        remotes = self.remotes(data, where, live)
        main = self.check.get(data, "main", where, str, None)
        at_main = join(where, "main")
        if main is not None and not _agent_ref(main):
            self.check.add(at_main, f"got {main!r}, expected the leading classroom's agent id (or site/agent id)")
        if main is not None and live is not None:
            self.check.add(at_main, "give either live (this room leads) or main (another room leads), not both")
        return live, remotes, main

    def remotes(self, data: Mapping[str, Any], where: str, live: str | None) -> tuple[str, ...]:
        key = join(where, "remotes")
        if "remotes" not in data:
            if live is not None:
                self.check.add(key, 'missing (the remote classrooms\' agent ids, e.g. ["room-101"])')
            return ()
        if live is None:
            self.check.add(key, "only with live = " + " or ".join(LIVE_MODES) + " (a lesson this room leads)")
        value = data["remotes"]
        if not isinstance(value, list) or not value:
            self.check.add(key, f"got {value!r}, expected a list of agent ids")
            return ()
        for i, item in enumerate(value):
            if not (isinstance(item, str) and _agent_ref(item) and "/" not in item):
                self.check.add(at(key, i), f"got {item!r}, expected an agent id (no spaces, / + #)")
            elif value.index(item) < i:
                self.check.add(at(key, i), f"{item!r} is listed twice")
        if live == "dual_teacher" and len(value) != 1:
            self.check.add(key, f"dual_teacher takes exactly one remote classroom, got {len(value)}")
        return tuple(str(x) for x in value)

    def days(self, data: Mapping[str, Any], where: str) -> tuple[int, ...]:
        value = data.get("day", [])
        items = [value] if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(items, list) or not all(type(d) is int and 1 <= d <= 7 for d in items):
            self.check.add(join(where, "day"), f"got {value!r}, expected a weekday 1-7 (1 = Monday) or a list of them")
            return ()
        return tuple(sorted(set(items)))

    def a_time(self, data: Mapping[str, Any], key: str, where: str) -> time | None:
        if key not in data:
            self.check.add(join(where, key), "missing (HH:MM)")
            return None
        try:
            return parse_time(data[key])
        except ValueError as exc:
            self.check.add(join(where, key), str(exc))
            return None

    def a_date(self, value: Any, key: str) -> date | None:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        try:
            return date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
        except ValueError:
            pass
        self.check.add(key, f"got {value!r}, expected a date YYYY-MM-DD")
        return None

    def dates(self, value: Any, key: str) -> tuple[date, ...]:
        if not isinstance(value, list):
            self.check.add(key, f"got {value!r}, expected a list of dates")
            return ()
        found = [self.a_date(item, at(key, i)) for i, item in enumerate(value)]
        return tuple(sorted({d for d in found if d is not None}))

    def skip_dates(self, value: Any) -> tuple[tuple[date, date], ...]:
        if not isinstance(value, list):
            self.check.add("skip_dates", f"got {value!r}, expected a list of dates or YYYY-MM-DD..YYYY-MM-DD ranges")
            return ()
        out: list[tuple[date, date]] = []
        for i, item in enumerate(value):
            ends = item.split("..") if isinstance(item, str) and ".." in item else [item, item]
            first, last = (self.a_date(end, at("skip_dates", i)) for end in ends[:2])
            if first and last and last < first:
                self.check.add(at("skip_dates", i), f"range {item!r} ends before it starts")
            elif first and last:
                out.append((first, last))
        return tuple(sorted(out))

    def makeup_days(self, value: Any) -> tuple[tuple[date, int], ...]:
        if not isinstance(value, Mapping):
            self.check.add("makeup_days", f"got {value!r}, expected a table of date = weekday")
            return ()
        out: list[tuple[date, int]] = []
        for key, weekday in value.items():
            day = self.a_date(key, f"makeup_days.{key}")
            if type(weekday) is not int or not 1 <= weekday <= 7:
                expected = "the weekday 1-7 whose lessons it follows"
                self.check.add(f"makeup_days.{key}", f"got {weekday!r}, expected {expected}")
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
                        self.check.add(
                            at("lessons", pair[1]),
                            f"overlaps lessons[{pair[0]}] ({a.name} {a.span()} / {b.name} {b.span()}) {when}",
                        )
