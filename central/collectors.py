"""``run --collectors N``: N-1 more collector processes of the same group, started and kept by this one.

Python runs one process on one core: several collectors of one group split the ingest only as
processes.  Each helper is ``classroom-central run --collector-only`` (no dashboard, no retention,
no wake schedule: this process does those) with the group, the store, the recordings folder and the
broker of its parent, the client id ``<parent's>-<k>`` (stable across restarts, so its persistent
session is found again) and the user name ``<parent's>-<k>``: a broker that takes each account's user
name as its client id (broker-config's ``use_username_as_clientid``) would otherwise give every process
the same id, and each would knock the others off.  Secrets go in its environment, never on its
command line (which every user sees in ``ps``): the broker password and the store's URL (a
PostgreSQL URL may hold a password).

A helper that exits is started again after a backoff; stopping the parent stops them (SIGTERM: each
commits, acknowledges and says offline like any clean stop).  A parent that dies without stopping
them (SIGKILL, a crash) closes their stdin, a pipe from it: they stop cleanly then, rather than live
on beside the helpers a new parent starts with the same client ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from central.errors import ConfigError
from central.group import check_group
from central.store import Location
from contract.mqtt import BrokerAddress
from drivers.backoff import Backoff

log = logging.getLogger(__name__)

PASSWORD_ENV = "CLASSROOM_BROKER_PASSWORD"
DB_ENV = "CLASSROOM_CENTRAL_DB"  # the fleet store when ``run`` has no --db
PARENT_ENV = "CLASSROOM_CENTRAL_PARENT"  # "stdin": stdin is a pipe from the parent, closed when it is gone
STOP_S = 15.0


@dataclass(frozen=True, slots=True)
class Helpers:
    """The helper collectors of one ``run``: how many, and what they share with it."""

    count: int
    broker: BrokerAddress
    db: str
    group: str
    client_id: str
    recordings: Path

    def argv(self, k: int) -> list[str]:
        """The command line of helper `k` (1-based): no secret on it (see `environment`)."""
        words = [sys.executable, "-m", "central.cli", "run", "--broker", self.broker.url]
        words += ["--group", self.group, "--client-id", f"{self.client_id}-{k}", "--collector-only"]
        words += ["--recordings", str(self.recordings)]
        if self.broker.username:
            words += ["--username", f"{self.broker.username}-{k}"]
        if self.broker.ca_file:
            words += ["--ca-file", self.broker.ca_file]
        return words

    def environment(self) -> dict[str, str]:
        """The helpers' environment: ours, with the store, the broker password and the parent's pipe."""
        env = {**os.environ, DB_ENV: self.db, PARENT_ENV: "stdin"}
        env.pop(PASSWORD_ENV, None)
        if self.broker.password:
            env[PASSWORD_ENV] = self.broker.password
        return env

    async def run(self) -> None:
        """Keep every helper running until cancelled; then stop them all."""
        async with asyncio.TaskGroup() as tg:
            for k in range(1, self.count):
                tg.create_task(self._keep(k), name=f"collectors[{self.client_id}-{k}].keep")

    async def _keep(self, k: int) -> None:
        backoff = Backoff(base=1.0, cap=30.0)
        env = self.environment()
        while True:
            # stdin: a pipe only this process holds, so the helper sees it close when we are gone.
            proc = await asyncio.create_subprocess_exec(*self.argv(k), env=env, stdin=asyncio.subprocess.PIPE)
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


async def parent_gone() -> None:
    """Return once stdin, the parent's pipe (`PARENT_ENV`), is closed: the parent stopped or died."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while await reader.read(4096):
            pass  # the parent writes nothing; only the end matters
    finally:
        transport.close()


def plan(
    collectors: int, group: str, db: Location, broker: BrokerAddress, client_id: str, recordings: Path
) -> Helpers | None:
    """The helpers ``run --collectors N --group NAME`` starts; ConfigError for flags that do not go together.

    `recordings`: the parent's folder of uploaded recordings (a helper opens it too), made absolute.
    """
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
    return Helpers(collectors, broker, db.target, group, client_id, recordings.absolute())
