"""How long the centre keeps what it collects, and the prune rows that enforce it (sans-IO)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from central.errors import ConfigError
from central.fleet_rows import Prune, PruneTelemetry, Row
from contract import to_iso

# 《网络安全法》第二十一条: network operators keep their network logs for at least six months.
LOG_MIN_DAYS = 180.0


@dataclass(frozen=True, slots=True)
class Retention:
    """Days each table is kept; open alarms are kept whatever their age."""

    telemetry_days: float = 30.0
    events_days: float = LOG_MIN_DAYS  # events, and alarms cleared this long ago
    audit_days: float = LOG_MIN_DAYS  # the command audit log
    history_days: float = LOG_MIN_DAYS  # online / offline / lost / silent changes

    def problems(self) -> list[str]:
        """Every value that is not a finite number of days above zero, as ``key: got X, expected Y``."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                out.append(f"{f.name}: got {value!r}, expected a number of days above 0")
        return out

    def validate(self) -> Retention:
        """Return self, or raise ConfigError naming every bad value."""
        if found := self.problems():
            raise ConfigError("; ".join(found))
        return self

    def below_log_minimum(self) -> list[str]:
        """The log tables kept for less than the legal minimum (worth a warning at start)."""
        logs = {"events_days": self.events_days, "audit_days": self.audit_days, "history_days": self.history_days}
        return [name for name, days in logs.items() if days < LOG_MIN_DAYS]

    def rows(self, now: datetime) -> list[Row]:
        """The prune rows that bring fleet.db within these limits at `now` (an aware datetime)."""

        def before(days: float) -> str:
            return to_iso(now - timedelta(days=days))

        return [
            PruneTelemetry(before(self.telemetry_days)),
            Prune("events", before(self.events_days)),
            Prune("alarms", before(self.events_days)),
            Prune("commands", before(self.audit_days)),
            Prune("status_history", before(self.history_days)),
        ]
