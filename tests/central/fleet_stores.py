"""The fleet store a central test runs on: a SQLite file, or a scratch PostgreSQL database.

`fleet_at(tmp_path)` is ``tmp_path / "fleet.db"`` unless ``CLASSROOM_TEST_DB`` names a PostgreSQL
server (``postgresql://…``, a database the test user may create databases from): then it is the URL
of a database made for this test alone, dropped when the test ends (tests/central/conftest.py).
CI runs tests/central twice, once each way (.ci/run).  `rows` reads either with plain SQL.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ENV = "CLASSROOM_TEST_DB"
# Where a PostgreSQL server is looked for when a test needs one and ENV is unset: this machine kind's
# loopback server, then its Unix socket (which also answers inside scripts/loopback-ns's namespace).
CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/postgres",
    "postgresql://postgres@/postgres?host=/var/run/postgresql",
)
_made: dict[Path, str] = {}


def server() -> tuple[str, str]:
    """(admin URL, "") of a PostgreSQL server that answers, or ("", why none does)."""
    import psycopg

    tried = [os.environ[ENV]] if os.environ.get(ENV) else list(CANDIDATES)
    reasons = []
    for url in tried:
        try:
            psycopg.connect(url, connect_timeout=3, autocommit=True).close()
            return url, ""
        except psycopg.Error as exc:
            reasons.append(f"{url}: {str(exc).strip().splitlines()[0]}")
    return "", "no PostgreSQL server answers (" + "; ".join(reasons) + ")"


def scratch(admin_url: str) -> str:
    """A new, empty database on the server of `admin_url`; its URL."""
    import psycopg

    name = f"classroom_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def drop(url: str, admin_url: str) -> None:
    """Drop a scratch database (its connections too)."""
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fleet_at(tmp_path: Path) -> Any:
    """The test's fleet store: ``tmp_path / "fleet.db"``, or a scratch PostgreSQL database under ENV."""
    admin = os.environ.get(ENV, "")
    if not admin:
        return tmp_path / "fleet.db"
    if tmp_path not in _made:
        _made[tmp_path] = scratch(admin)
    return _made[tmp_path]


def drop_made() -> None:
    """Drop every scratch database `fleet_at` made."""
    admin = os.environ.get(ENV, "")
    while _made:
        _, url = _made.popitem()
        drop(url, admin)


def rows(location: Any, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """The rows of one query on the store at `location` (SQLite-style ``?`` parameters)."""
    from central.store import Store

    store = Store(location, wal=False)
    try:
        return [tuple(r) for r in store.execute(sql, params or []).fetchall()]
    finally:
        store.close()
