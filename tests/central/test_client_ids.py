"""Client ids on a broker run from broker-config's own output: no account can knock another off."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fleet_stores import fleet_at

from agent.link import AgentLink
from agent.store import AgentStore
from central import broker_config
from central.app import Central
from central.broker_config import write_broker_config
from central.broker_registry import AgentAccount, Registry, UserAccount
from central.mosquitto import LocalBroker, free_port
from contract import Info, Topics
from contract.mqtt import BrokerAddress, Client, make_client

ROOM_101 = AgentAccount("school-a", "room-101", "pw-101")
ROOM_102 = AgentAccount("school-a", "room-102", "pw-102")
CENTRAL = UserAccount("central", "pw-central", "central")
REGISTRY = Registry((ROOM_101, ROOM_102), (CENTRAL,))
WAIT_S = 10.0


class ConfBroker(LocalBroker):
    """Mosquitto run from the generated ``mosquitto.conf`` snippet itself (plus where to log and persist)."""

    def __init__(self, folder: Path, conf: Path, port: int) -> None:
        super().__init__(folder, port)
        self.conf = conf

    def config(self) -> str:
        run_as = "user root\n" if getattr(os, "geteuid", lambda: -1)() == 0 else ""
        return f"{run_as}log_dest file {self.log_file}\n{self.conf.read_text()}"


@pytest.fixture
def from_snippet(tmp_path: Path) -> Iterator[LocalBroker]:
    port = free_port()
    files = write_broker_config(REGISTRY, tmp_path / "conf", None, port, bind_address="127.0.0.1")
    with ConfBroker(tmp_path / "broker", files.conf_file, port) as running:
        yield running


def address(broker: LocalBroker, account: AgentAccount | UserAccount) -> BrokerAddress:
    return BrokerAddress.parse(broker.url, username=account.username, password=account.password)


async def no_command(_: str, __: Mapping[str, Any]) -> dict[str, Any]:
    return {}


def real_agent(broker: LocalBroker, tmp_path: Path) -> AgentLink:
    """The agent's own link, connecting with the client id it always uses."""
    return AgentLink(
        address(broker, ROOM_101),
        Topics(ROOM_101.site, ROOM_101.agent_id),
        AgentStore(tmp_path / "agent.db"),
        version="test",
        info=lambda: Info(room="101", hostname="pc-101", version="test", devices=()),
        states=list,
        run_command=no_command,
    )


def test_the_generated_conf_binds_client_ids_to_user_names(tmp_path: Path) -> None:
    files = write_broker_config(REGISTRY, tmp_path, None, 1883)
    assert "use_username_as_clientid true" in files.conf_file.read_text().splitlines()
    assert f"max_queued_messages {broker_config.MAX_QUEUED}" in files.conf_file.read_text().splitlines()
    assert files.conf_file.name == broker_config.CONF_FILE


async def test_another_account_using_an_agents_client_id_cannot_knock_it_off(
    from_snippet: LocalBroker, tmp_path: Path
) -> None:
    link = real_agent(from_snippet, tmp_path)
    agent_client_id = f"agent-{ROOM_101.site}-{ROOM_101.agent_id}"  # predictable: site and id are on every topic
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(link.run(), name="agent[room-101].link")
        async with asyncio.timeout(WAIT_S):
            await link.wait_connected()
        for _ in range(6):
            intruder: Client = make_client(address(from_snippet, ROOM_102), agent_client_id)
            async with intruder:
                await intruder.publish(Topics(ROOM_102.site, ROOM_102.agent_id).telemetry, b"{}", qos=1)
        # A round trip through the agent's own connection: it is still the one it opened first.
        assert link.client is not None
        await link.client.publish(Topics(ROOM_101.site, ROOM_101.agent_id).telemetry, b"{}", qos=1)
        connects, connected = link.connects, link.connected
        task.cancel()
    assert (connects, connected) == (1, True)


async def test_the_centre_still_connects_and_collects(from_snippet: LocalBroker, tmp_path: Path) -> None:
    central = Central(address(from_snippet, CENTRAL), fleet_at(tmp_path), silence_check_s=3600)
    try:
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(central.run(), name="central[test].run")
            async with asyncio.timeout(WAIT_S):
                await central.collector.connected.wait()
            task.cancel()
    finally:
        central.close()
