"""A busy classroom PC: its encoders degrade instead of freezing; a technician hears of it when it lasts.

`DegradedWatch` is sans-IO: fed the sent sources' levels (``LessonMedia.sending``) with the time,
it says which ``encoder_degraded`` alarms to raise (a source degraded for `after_s` in a row) and
which to clear (the source back at full quality, or no longer sent).  `watch_encoders` runs it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.lesson.room import Room

ALARM = "encoder_degraded"


@dataclass
class DegradedWatch:
    """Per sent source: since when it has been degraded, and whether its alarm is up."""

    after_s: float
    since: dict[str, float] = field(default_factory=dict)
    raised: set[str] = field(default_factory=set)

    def sample(self, now: float, levels: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, str], list[str]]:
        """(source -> alarm text to raise, sources to clear) for the levels sent now."""
        degraded = {name: level for name, level in levels.items() if level.get("degraded")}
        for name in list(self.since):
            if name not in degraded:
                del self.since[name]
        raise_ = {}
        for name, level in degraded.items():
            start = self.since.setdefault(name, now)
            if name not in self.raised and now - start >= self.after_s:
                self.raised.add(name)
                raise_[name] = (
                    f"{name}: sending {level.get('size')} at {level.get('fps')} fps instead of full quality "
                    f"({level.get('reason') or 'the PC is busy'})"
                )
        clear = sorted(self.raised - set(degraded))
        self.raised -= set(clear)
        return raise_, clear


async def watch_encoders(room: Room, sends: Callable[[], tuple[str, ...]], every_s: float = 1.0) -> None:
    """Raise and clear `encoder_degraded` for the sources `sends()` names now, until cancelled."""
    watch = DegradedWatch(room.config.degraded_after_s)
    try:
        while True:
            await asyncio.sleep(every_s)
            media = room.loaded
            levels = media.sending(sends()) if media is not None else {}
            raise_, clear = watch.sample(time.monotonic(), levels)
            for name, text in raise_.items():
                level = levels.get(name, {})
                params = {"source": name, "size": level.get("size"), "fps": level.get("fps")}
                room.alarms.raise_(ALARM, "warning", text, name, params)
            for name in clear:
                room.alarms.clear(ALARM, name, f"{name}: back at full quality")
    finally:
        for name in watch.raised:
            room.alarms.clear(ALARM, name, f"{name}: no longer sent")
