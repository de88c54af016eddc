"""The rows the centre's single writer applies to fleet.db, one per message or housekeeping step."""

from __future__ import annotations

from dataclasses import dataclass

from contract import Command, CommandReply, DeviceState, Event, Info, Status, Telemetry

Payload = Status | Info | DeviceState | Telemetry | Event


@dataclass(frozen=True, slots=True)
class Seen:
    """A contract message from an agent (``retained``: replayed by the broker, not heard live)."""

    site: str
    agent_id: str
    payload: Payload
    received: str
    retained: bool = False


@dataclass(frozen=True, slots=True)
class Silent:
    """The agent has sent nothing for 3 telemetry intervals."""

    agent_id: str
    received: str


@dataclass(frozen=True, slots=True)
class CommandSent:
    """A command published to an agent (the audit log's first line)."""

    site: str
    agent_id: str
    command: Command
    sent_ts: str


@dataclass(frozen=True, slots=True)
class CommandReplied:
    """An agent's reply to a command."""

    agent_id: str
    reply: CommandReply
    received: str


@dataclass(frozen=True, slots=True)
class CommandTimedOut:
    """No reply came in time."""

    command_id: str
    received: str


@dataclass(frozen=True, slots=True)
class PruneTelemetry:
    """Retention: delete telemetry received before `before`."""

    before: str


Row = Seen | Silent | CommandSent | CommandReplied | CommandTimedOut | PruneTelemetry
Change = tuple[str, str]  # (kind, agent_id)
