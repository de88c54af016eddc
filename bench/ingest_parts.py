"""Pieces of bench/central_ingest.py: child output readers, the mosquitto_sub anchor, CPU and store audits."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil
from ingest_load import SITE


@dataclass
class Lines:
    """A child's stdout read in a thread: JSON lines kept, the newest progress line at hand."""

    proc: subprocess.Popen[bytes]
    lines: list[dict[str, Any]] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Lines:
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            text = raw.decode().strip()
            if text == "ready" or text.startswith('{"ready"'):
                self.ready.set()
            elif text.startswith("{"):
                self.lines.append(json.loads(text))

    def wait_ready(self, timeout: float) -> None:
        if not self.ready.wait(timeout):
            raise RuntimeError(f"{self.proc.args!r} did not get ready within {timeout} s")


@dataclass
class Anchor:
    """mosquitto_sub on the same stream: counts lines (one per message, topic only) and times the last."""

    proc: subprocess.Popen[bytes]
    target: int
    count: int = 0
    last: float = 0.0
    first_seen: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Anchor:
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while chunk := os.read(fd, 1 << 16):
            self.count += chunk.count(b"\n")
            self.last = time.monotonic()
            self.first_seen.set()


def cpu_seconds(watched: dict[str, list[int]]) -> dict[str, float]:
    out = {}
    for name, pids in watched.items():
        total = 0.0
        for pid in pids:
            try:
                t = psutil.Process(pid).cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.NoSuchProcess:
                pass
        out[name] = total
    return out


def audit(db: str, n: int, rounds: int) -> dict[str, int]:
    """What the fleet store holds, counted independently of the centre's counters."""
    from central.store import Store

    store = Store(db, wal=False)
    seq = "json_extract(state, '$.seq')" if store.dialect == "sqlite" else "CAST(state AS json)->>'seq'"
    try:
        one = lambda sql: int(store.scalar(sql))  # noqa: E731
        return {
            "telemetry": one("SELECT count(*) FROM telemetry"),
            "agents_online": one(f"SELECT count(*) FROM agents WHERE state = 'online' AND site = '{SITE}'"),
            "info_rows": one("SELECT count(*) FROM agents WHERE hostname LIKE 'pc-%'"),
            "status_rows": one("SELECT count(*) FROM status_history WHERE state = 'online'"),
            "devices_last": one(f"SELECT count(*) FROM devices WHERE CAST({seq} AS INTEGER) = {rounds}"),
        }
    finally:
        store.close()


def scratch_db(server: str) -> tuple[str, str]:
    """(URL of a new database on the PostgreSQL server of `server`, its name)."""
    import psycopg

    name = f"classroom_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, "")), name


def server_pids(url: str) -> list[int]:
    """The PostgreSQL server processes serving the database of `url` now (their CPU is the store's)."""
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(url, autocommit=True) as conn:
        me = conn.info.backend_pid
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [name]).fetchall()
    return [pid for (pid,) in rows if pid != me]


def drop_db(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
