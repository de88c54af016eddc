"""When this PC should be woken (a set time before each school day's first lesson) and its school hours (sans-IO).

The instants go into ``info`` (retained), so the centre still has them while the PC sleeps; see
`central.wake`.  Days without lessons (weekends, ``skip_dates``) have none; ``makeup_days`` do.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from agent.timetable.model import Timetable
from contract.hours import MAX_HOURS
from contract.power import MAX_WAKES

HORIZON_DAYS = 14


def wake_times(
    timetable: Timetable, now: datetime, before_min: int, horizon_days: int = HORIZON_DAYS
) -> list[datetime]:
    """Each school day's first lesson start minus `before_min`, after `now` (aware), at most MAX_WAKES."""
    tz = timetable.tz
    today = now.astimezone(tz).date()
    out: list[datetime] = []
    for offset in range(horizon_days + 1):
        day = today + timedelta(days=offset)
        lessons = timetable.lessons_on(day)
        if not lessons:
            continue
        wake = datetime.combine(day, lessons[0].start, tzinfo=tz) - timedelta(minutes=before_min)
        if wake > now:
            out.append(wake)
    return out[:MAX_WAKES]


def school_hours(
    timetable: Timetable, now: datetime, horizon_days: int = HORIZON_DAYS
) -> list[tuple[datetime, datetime]]:
    """Each school day's (first lesson start, last lesson end) not over by `now`, at most MAX_HOURS.

    ``info.hours`` (`contract.hours`): the centre raises ``offline_in_hours`` for a room that is not
    online inside one.
    """
    tz = timetable.tz
    today = now.astimezone(tz).date()
    out: list[tuple[datetime, datetime]] = []
    for offset in range(horizon_days + 1):
        day = today + timedelta(days=offset)
        lessons = timetable.lessons_on(day)
        if not lessons:
            continue
        start = datetime.combine(day, lessons[0].start, tzinfo=tz)
        end = datetime.combine(day, max(x.end for x in lessons), tzinfo=tz)
        if end > now and end > start:
            out.append((start, end))
    return out[:MAX_HOURS]
