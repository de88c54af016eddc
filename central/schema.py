"""The fleet store's schema, kept by Alembic: every opener brings the store to `HEAD` first.

The revisions live in ``central/migrations/versions``; `migrate` runs them on a connection of its
own (SQLAlchemy, only when the store is behind, so a store at head costs one query and no import).
A fleet.db made before migrations existed is upgraded in place by the first revision.  Several
processes opening one store at once take turns: SQLite through ``BEGIN IMMEDIATE``, PostgreSQL
through an advisory lock; the later ones find it at head.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from central.store import SQLITE, Location, Store, StoreUnavailable

log = logging.getLogger(__name__)

HEAD = "0001"  # the newest revision in central/migrations/versions (tests/central/test_schema.py checks it)
SCRIPTS = Path(__file__).with_name("migrations")
# Alembic's `op` and `context` are process-wide proxies: two upgrades in two threads of one process
# would run on each other's connection.  Processes take turns through the database's own lock.
_ALEMBIC = threading.Lock()


def version(store: Store) -> str | None:
    """The store's revision; None for a store Alembic has never touched (new, or made before migrations)."""
    if store.dialect == SQLITE:
        found = store.scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'")
    else:
        found = store.scalar("SELECT to_regclass('alembic_version') IS NOT NULL")
    return str(store.scalar("SELECT version_num FROM alembic_version")) if found else None


def migrate(store: Store) -> None:
    """Bring the store `store` is connected to up to `HEAD` (nothing to do when it is there)."""
    if version(store) == HEAD:
        return
    # A new store is made quietly (`run` says nothing more before a port it cannot have, say); an
    # existing one being changed is worth a line.
    level = logging.INFO if _has_fleet(store) else logging.DEBUG
    log.log(level, "%s: bringing the schema to revision %s", store.location.display, HEAD)
    try:
        with _ALEMBIC, _alembic_quiet():
            _upgrade(store.location)
    except StoreUnavailable:
        raise
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in ("sqlalchemy", "psycopg", "sqlite3"):
            raise StoreUnavailable(f"{store.location.display}: migrating the schema: {exc}") from exc
        raise


def _has_fleet(store: Store) -> bool:
    """Whether the store holds the fleet's tables already (made before migrations, or at an older revision)."""
    if store.dialect == SQLITE:
        sql = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'agents'"
    else:
        sql = "SELECT to_regclass('agents') IS NOT NULL"
    return bool(store.scalar(sql))


@contextlib.contextmanager
def _alembic_quiet() -> Iterator[None]:
    """Alembic's own INFO lines (plugins set up, DDL mode, each revision) are for its developers: warnings only."""
    logger = logging.getLogger("alembic")
    before = logger.level
    logger.setLevel(max(before, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(before)


def _upgrade(location: Location) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, event
    from sqlalchemy.pool import NullPool

    if location.is_sqlite:
        path = str(location.path)
        engine = create_engine(
            "sqlite://", poolclass=NullPool, creator=lambda: sqlite3.connect(path, timeout=30.0, isolation_level=None)
        )

        @event.listens_for(engine, "begin")
        def _immediate(conn: Any) -> None:  # the write lock from the start: one migrator at a time
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    else:
        import psycopg

        url = location.target
        engine = create_engine(
            "postgresql+psycopg://", poolclass=NullPool, creator=lambda: psycopg.connect(url, connect_timeout=10)
        )
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    try:
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, HEAD)
    finally:
        engine.dispose()
