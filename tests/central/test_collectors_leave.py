"""A collector that leaves its group for good (``run --leave``): its share is neither lost nor kept waiting.

Mosquitto hands the group's messages in turn to every member's persistent session, connected or
not: what a stopped member's session holds is stored only when that client id comes back.
``run --leave --client-id ID`` stores it and ends the session, and the rest of the group then
gets everything.  Real processes, the test's Mosquitto, a scratch PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from group_processes import CENTRAL, Fleet, start, stop, stored, subscribed, until

from central.mosquitto import LocalBroker
from contract.mqtt import BrokerAddress, make_client


async def test_a_member_leaving_for_good_stores_its_share_and_the_group_takes_the_rest(
    broker: LocalBroker, pg_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "central.log"
    common = ["--broker", broker.url, "--db", pg_url, "--group", "g", "--recordings", str(tmp_path / "rec")]
    staying = await start(log, *common, "--client-id", "a")
    leaving = await start(log, *common, "--client-id", "b", "--collector-only")
    try:
        await until(lambda: subscribed(log) == 2, "both members subscribed")
        async with make_client(BrokerAddress.parse(broker.url), f"test-fleet-{os.getpid()}") as client:
            fleet = Fleet(client)
            assert await stop(leaving) == 0
            await fleet.publish(100)  # b is stopped: its half waits in its session

            done = await asyncio.create_subprocess_exec(
                *CENTRAL, "run", *common, "--client-id", "b", "--leave",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await done.communicate()
            assert done.returncode == 0, err.decode()[-2000:]
            said = out.decode()  # b's share of the 100 (about half: the round goes over the centre's own status too)
            assert said.startswith("b left group g: ") and said.endswith(" queued messages stored, its session ended\n")
            assert int(said.split()[4]) >= 40, said

            await fleet.publish(100)  # b has left: all of these go to a
            await until(lambda: len(stored(pg_url)) == fleet.sent, "every event, with b gone")
        assert sorted(stored(pg_url)) == sorted(fleet.expected())
    finally:
        for proc in (staying, leaving):
            if proc.returncode is None:
                await stop(proc)
