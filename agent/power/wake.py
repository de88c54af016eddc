"""When this PC should be woken: a set time before the first lesson of each school day (sans-IO).

The instants go into ``info`` (retained), so the centre still has them while the PC sleeps; see
`central.wake`.  Days without lessons (weekends, ``skip_dates``) have none; ``makeup_days`` do.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from agent.timetable.model import Timetable
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
