"""The centre's command sender refuses what the contract cannot carry, before it reaches the broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_collector import make_central, replying_agent, running, until

from central.mosquitto import LocalBroker


async def test_a_command_the_contract_cannot_carry_is_rejected_at_once_and_never_sent(
    broker: LocalBroker, tmp_path: Path
) -> None:
    def answer(name: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {"status": "succeeded", "result": {}}

    async with running(make_central(broker, tmp_path)) as central, replying_agent(broker, "a8", answer) as seen:
        await until(lambda: central.db.agent("a8"), "a8 known")
        # Over the cmd limit the agent (and the broker) would drop it unanswered: a 60 s wait for nothing.
        huge = await central.sender.send("a8", "media.watch", {"offer": "v=0" + "x" * 70_000}, "tech1", timeout=60)
        assert huge["status"] == "rejected" and "at most 65536" in huge["error"], huge
        nan = await central.sender.send("a8", "panel.volume", {"level": float("nan")}, "tech1", timeout=60)
        assert nan["status"] == "rejected" and nan["error"].startswith("args: "), nan
        ok = await central.sender.send("a8", "agent.ping", {}, "tech1", timeout=5)
        assert ok["status"] == "succeeded"
        assert [c["name"] for c in seen] == ["agent.ping"]  # neither refused command reached the agent
        statuses = lambda: sorted(c["status"] for c in central.db.commands(agent_id="a8"))  # noqa: E731
        await until(lambda: statuses() == ["rejected", "rejected", "succeeded"], "refusals audited")
