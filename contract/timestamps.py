"""Contract timestamps: every ``since``, ``ts`` and ``expires`` is ISO 8601 UTC (``2026-11-22T08:00:00Z``)."""

from __future__ import annotations

from datetime import UTC, datetime

from contract.errors import PayloadError


def now_iso() -> str:
    """The current UTC time as the contract writes it (seconds precision)."""
    return to_iso(datetime.now(UTC))


def to_iso(moment: datetime) -> str:
    """A datetime as ``2026-11-22T08:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """Read a contract timestamp; PayloadError when it is not one."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise PayloadError(f"bad timestamp {text!r}: no time zone")
        return moment.astimezone(UTC)
    except (ValueError, AttributeError, TypeError, OverflowError) as exc:  # PayloadError is a ValueError
        if isinstance(exc, PayloadError):
            raise
        raise PayloadError(f"bad timestamp {str(text)[:60]!r}: expected e.g. 2026-11-22T08:00:00Z") from None
