"""The audit trail: every command is in it, except queries that succeed (a page polls them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.commands.table import CommandDef, CommandTable, Failed, Outcome


async def test_a_successful_query_is_not_audited_but_a_failed_one_and_every_action_are() -> None:
    seen: list[tuple[str, str]] = []
    table = CommandTable(audit=lambda name, args, by, door, outcome: seen.append((name, outcome.status)))
    broken = {"yes": False}

    async def peers(args: Mapping[str, Any]) -> dict[str, Any]:
        if broken["yes"]:
            raise Failed("cannot ask the other classrooms: broker down")
        return {"room-a": {"online": True}}

    async def power(args: Mapping[str, Any]) -> dict[str, Any]:
        return {"power": "on"}

    table.add(CommandDef("lesson.peers", (), peers, read_only=True))
    table.add(CommandDef("panel.power", (), power))
    outcomes: list[Outcome] = [await table.execute("lesson.peers", {}) for _ in range(3)]
    outcomes.append(await table.execute("panel.power", {}))
    broken["yes"] = True
    outcomes.append(await table.execute("lesson.peers", {}))
    assert [o.status for o in outcomes] == ["succeeded"] * 4 + ["failed"]
    assert seen == [("panel.power", "succeeded"), ("lesson.peers", "failed")]
