"""``run --collectors N``: N-1 more collector processes of the same group, started and kept by this one.

Python runs one process on one core: several collectors of one group split the ingest only as
processes.  Each helper is ``classroom-central run --collector-only`` (no dashboard, no retention,
no wake schedule: this process does those) with the group, the store and the broker of its parent,
the client id ``<parent's>-<k>`` (stable across restarts, so its persistent session is found again)
and the broker password in its environment, never on its command line.  A helper that exits is
started again after a backoff; stopping the parent stops them (SIGTERM: each commits, acknowledges
and says offline like any clean stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from dataclasses import dataclass

from central.errors import ConfigError
from central.group import check_group
from central.store import Location
from contract.mqtt import BrokerAddress
from drivers.backoff import Backoff

log = logging.getLogger(__name__)

PASSWORD_ENV = "CLASSROOM_BROKER_PASSWORD"
STOP_S = 15.0


@dataclass(frozen=True, slots=True)
class Helpers:
    """The helper collectors of one ``run``: how many, and what they share with it."""

    count: int
    broker: BrokerAddress
    db: str
    group: str
    client_id: str

    def argv(self, k: int) -> list[str]:
        """The command line of helper `k` (1-based)."""
        words = [sys.executable, "-m", "central.cli", "run", "--broker", self.broker.url, "--db", self.db]
        words += ["--group", self.group, "--client-id", f"{self.client_id}-{k}", "--collector-only"]
        if self.broker.username:
            words += ["--username", self.broker.username]
        if self.broker.ca_file:
            words += ["--ca-file", self.broker.ca_file]
        return words

    async def run(self) -> None:
        """Keep every helper running until cancelled; then stop them all."""
        async with asyncio.TaskGroup() as tg:
            for k in range(1, self.count):
                tg.create_task(self._keep(k), name=f"collectors[{self.client_id}-{k}].keep")

    async def _keep(self, k: int) -> None:
        backoff = Backoff(base=1.0, cap=30.0)
        env = {**os.environ, PASSWORD_ENV: self.broker.password} if self.broker.password else dict(os.environ)
        while True:
            proc = await asyncio.create_subprocess_exec(*self.argv(k), env=env)
            log.info("collector %s-%d started (pid %d)", self.client_id, k, proc.pid)
            try:
                code = await proc.wait()
            finally:
                if proc.returncode is None:
                    await _stop(proc)
            delay = backoff.next_delay()
            log.warning("collector %s-%d exited (%s); starting it again in %.1f s", self.client_id, k, code, delay)
            await asyncio.sleep(delay)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM (a clean stop), then SIGKILL if it has not stopped within `STOP_S`."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), STOP_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def plan(collectors: int, group: str, db: Location, broker: BrokerAddress, client_id: str) -> Helpers | None:
    """The helpers ``run --collectors N --group NAME`` starts; ConfigError for flags that do not go together."""
    if group:
        try:
            check_group(group)
        except ValueError as exc:
            raise ConfigError(f"--group: {exc}") from None
    if collectors < 1:
        raise ConfigError(f"--collectors: got {collectors}, expected 1 or more")
    if collectors == 1:
        return None
    if not group:
        raise ConfigError("--collectors N needs --group NAME (the shared subscription they split)")
    if db.is_sqlite:
        raise ConfigError("--collectors N needs --db postgresql://… (a SQLite file takes one writer at a time)")
    return Helpers(collectors, broker, db.target, group, client_id)
