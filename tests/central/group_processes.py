"""Collector processes of one group, as an operator starts them, and what the tests read about them.

`start` runs ``classroom-central run …`` (its log in a file), `cli` any command that ends;
`helpers` are a parent's child processes (``run --collectors N``); `connects` counts a client id's
connections in the test broker's log; `Fleet` publishes numbered events for a few rooms at QoS 1.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fleet_stores import rows

from central.mosquitto import LocalBroker
from contract import Event, Topics, encode, now_iso
from contract.mqtt import Client

CENTRAL = [sys.executable, "-m", "central.cli"]
SITE, ROOMS = "school-c", 5
LIMIT = 60.0  # a generous end for waits on a busy 2-core machine; nothing waits for time itself
SECRET_ENV = ("CLASSROOM_BROKER_PASSWORD", "CLASSROOM_CENTRAL_DB", "CLASSROOM_CENTRAL_PARENT")


async def until(check: Callable[[], Any], what: str) -> Any:
    """`check()` once it is true; AssertionError naming `what` after `LIMIT`."""
    try:
        async with asyncio.timeout(LIMIT):
            while not (value := check()):
                await asyncio.sleep(0.1)
            return value
    except TimeoutError:
        raise AssertionError(f"gave up waiting for {what}") from None


async def start(log: Path, *words: str, env: Mapping[str, str] | None = None) -> asyncio.subprocess.Process:
    """``classroom-central run`` with `words`, its stderr (the log) in `log`; no secret of ours in its environment."""
    base = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            *CENTRAL, "run", *words, env={**base, **(env or {})}, stdin=asyncio.subprocess.DEVNULL, stderr=out
        )


async def cli(*words: str, env: Mapping[str, str] | None = None, stdin: str = "") -> tuple[int, str, str]:
    """``classroom-central WORDS`` (``send``, ``users`` …) run to its end: its status, stdout and stderr."""
    base = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
    proc = await asyncio.create_subprocess_exec(
        *CENTRAL,
        *words,
        env={**base, **(env or {})},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(LIMIT):
            out, err = await proc.communicate(stdin.encode())
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


async def stop(proc: asyncio.subprocess.Process, sig: signal.Signals = signal.SIGTERM) -> int:
    """Send `sig` and wait for the process's exit status."""
    if proc.returncode is None:
        proc.send_signal(sig)
    async with asyncio.timeout(LIMIT):
        return await proc.wait()


def helpers(pid: int) -> list[int]:
    """The live child processes of `pid` (a parent's helper collectors)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split() if alive(int(p))]


async def kill_group(parent: asyncio.subprocess.Process) -> None:
    """SIGKILL a ``run --collectors N`` and its helpers, whatever state the test left them in."""
    for pid in helpers(parent.pid):
        os.kill(pid, signal.SIGKILL)
    if parent.returncode is None:
        parent.kill()
        await parent.wait()


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def connects(broker: LocalBroker, client_id: str) -> int:
    """How many times `client_id` has connected to `broker` (its log, notice level)."""
    return len(re.findall(rf" as {re.escape(client_id)} \(", _log(broker)))


def clean_stops(broker: LocalBroker, client_id: str) -> int:
    """How many times `client_id` disconnected cleanly (MQTT DISCONNECT, not a dropped socket)."""
    return len(re.findall(rf"Client {re.escape(client_id)} disconnected\.", _log(broker)))


def taken_over(broker: LocalBroker) -> list[str]:
    """The broker's lines about a client knocked off by another with its client id."""
    return [line for line in _log(broker).splitlines() if "already connected, closing old connection" in line]


def subscribed(log: Path) -> int:
    """How many times the processes logging to `log` have subscribed (each connection, fresh or not)."""
    return log.read_text(errors="replace").count("INFO central.collector: collecting from") if log.exists() else 0


def _log(broker: LocalBroker) -> str:
    return broker.log_file.read_text(errors="replace") if broker.log_file.exists() else ""


def with_password(url: str, password: str) -> str:
    """`url` with `password` in it, unless it has one (a trust-authenticated server ignores it)."""
    parts = urlsplit(url)
    if parts.password:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{parts.username or 'postgres'}:{password}@{host}", *parts[2:]))


def stored(store: str) -> list[str]:
    """Every stored event's id, as many times as it is stored."""
    return [str(r[0]) for r in rows(store, "SELECT event_id FROM events")]


class Fleet:
    """Rooms publishing numbered events (``ev-<n>``) at QoS 1, the broker's PUBACK awaited for each."""

    def __init__(self, client: Client, rooms: int = ROOMS) -> None:
        """`client`: a connected client of the test broker, publishing for `rooms` rooms."""
        self._client = client
        self._rooms = rooms
        self.sent = 0

    async def publish(self, count: int) -> None:
        """`count` more events."""
        for _ in range(count):
            n, self.sent = self.sent, self.sent + 1
            event = Event("load.test", "info", "log", now_iso(), f"event {n}", id=f"ev-{n}")
            await self._client.publish(Topics(SITE, f"room-{n % self._rooms}").event, encode(event.to_dict()), qos=1)

    async def flow(self, pause: float) -> None:
        """Publish until cancelled, one event every `pause` seconds (a steady stream, not a load test)."""
        while True:
            await self.publish(1)
            await asyncio.sleep(pause)

    def expected(self) -> list[str]:
        """The ids of every event published so far."""
        return [f"ev-{n}" for n in range(self.sent)]
