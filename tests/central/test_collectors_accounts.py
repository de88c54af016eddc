"""``run --collectors N`` on a Mosquitto written by broker-config, which takes each user name as the client id.

Every process of one account would get the same client id there, and each would knock the others
off.  A central row with ``collectors = N`` gets an account per helper (``central-1`` …, same
password and rights), and the helpers log in with it: the group splits the fleet, nobody is
knocked off, every event is stored once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from group_processes import (
    SITE,
    Fleet,
    connects,
    kill_group,
    start,
    stop,
    stored,
    subscribed,
    taken_over,
    until,
)

from central.broker_config import write_broker_config
from central.broker_registry import AgentAccount, Registry, UserAccount
from central.mosquitto import LocalBroker
from contract.mqtt import BrokerAddress, make_client

CENTRAL_PASSWORD = "pw-central-3f9a"
ROOM_PASSWORD = "pw-room-0-77d2"


@pytest.fixture
def configured(tmp_path: Path) -> Iterator[LocalBroker]:
    """A Mosquitto run with broker-config's password file, ACL and client-id rule."""
    users = (UserAccount("central", CENTRAL_PASSWORD, "central", collectors=2),)
    registry = Registry((AgentAccount(SITE, "room-0", ROOM_PASSWORD),), users)
    files = write_broker_config(registry, tmp_path / "conf", None, 1883)
    rules = [line for line in files.conf_file.read_text().splitlines() if line.startswith("use_username_as_clientid")]
    assert rules == ["use_username_as_clientid true"]
    broker = LocalBroker(
        tmp_path / "broker", password_file=files.password_file, acl_file=files.acl_file, extra=tuple(rules)
    )
    with broker as running:
        yield running


async def test_each_helper_logs_in_with_its_own_account(configured: LocalBroker, pg_url: str, tmp_path: Path) -> None:
    log = tmp_path / "central.log"
    words = ["--broker", configured.url, "--username", "central", "--db", pg_url, "--group", "g", "--collectors", "2"]
    words += ["--recordings", str(tmp_path / "recordings")]
    parent = await start(log, *words, env={"CLASSROOM_BROKER_PASSWORD": CENTRAL_PASSWORD})
    try:
        await until(lambda: subscribed(log) == 2, "both collectors subscribed")
        room = BrokerAddress.parse(configured.url, username="room-0", password=ROOM_PASSWORD)
        async with make_client(room, "room-0") as client:
            fleet = Fleet(client, rooms=1)
            await fleet.publish(300)
            await until(lambda: len(stored(pg_url)) == fleet.sent, "every event")
        assert sorted(stored(pg_url)) == sorted(fleet.expected())
        assert taken_over(configured) == []  # nobody knocked off
        assert connects(configured, "central") == 1 and connects(configured, "central-1") == 1
        assert await stop(parent) == 0
    finally:
        await kill_group(parent)


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"role": "technician", "collectors": 2}, "users[0].collectors: got 2, but only a central account has helpers"),
        ({"role": "central", "collectors": 0}, "users[0].collectors: got 0, expected 1 to 64"),
        ({"role": "central", "collectors": True}, "users[0].collectors: got True, expected 1 to 64"),
        ({"role": "central", "collectors": 2, "name": "c"}, "username 'c-1': registered twice"),
    ],
)
def test_a_bad_collectors_count_is_a_load_error_naming_the_row(row: dict[str, object], problem: str) -> None:
    from central.broker_registry import registry_from_dict
    from central.errors import ConfigError

    other = {"name": "c-1", "password": "pw-2", "role": "central"}
    users = [{"name": "central", "password": "pw-1-long", **row}, other]
    with pytest.raises(ConfigError) as caught:
        registry_from_dict({"users": users})
    assert problem in str(caught.value)
