"""The fleet store's two engines behind one small interface: a SQLite file (the default) or PostgreSQL.

`Location.parse` reads ``--db``: ``postgresql://…`` (or ``postgres://…``) is a PostgreSQL database
(psycopg 3; any libpq URL, ``?host=/var/run/postgresql`` for its Unix socket), anything else a
SQLite file.  `Store` is one connection to either, in autocommit mode with explicit transactions.
SQL is written once, SQLite-style (``?`` and ``:name`` parameters, ``excluded.``, ``RETURNING``,
``ON CONFLICT``: both engines speak these); `Store` rewrites the parameters for psycopg.  The few
real differences are properties of the store (`order_key`, `lock`).

Library errors are translated where they enter: a row the engine refuses (a constraint, a value
it cannot hold) is one of `Store.refused`; a database that cannot be written now (locked, a
deadlock, the server gone) raises `StoreUnavailable`, and the caller retries the whole batch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from central.errors import CentralError, ConfigError

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

SQLITE, POSTGRESQL = "sqlite", "postgresql"
_PG_SCHEMES = ("postgresql", "postgres")
Params = Sequence[Any] | Mapping[str, Any]


class StoreUnavailable(CentralError):
    """The database cannot be written or read right now (locked, deadlock, server gone): retry later."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where the fleet store is: a SQLite file (`path`) or a PostgreSQL URL (`url`)."""

    engine: str
    target: str

    @classmethod
    def parse(cls, text: str | os.PathLike[str] | Location) -> Location:
        """``postgresql://…`` -> PostgreSQL; anything else is the path of a SQLite file."""
        if isinstance(text, Location):
            return text
        raw = os.fspath(text)
        scheme = raw.partition("://")[0].lower() if "://" in raw else ""
        if scheme in _PG_SCHEMES:
            return cls(POSTGRESQL, raw)
        if scheme:
            raise ConfigError(f"--db {raw!r}: expected a SQLite file or postgresql://…")
        return cls(SQLITE, raw)

    @property
    def is_sqlite(self) -> bool:
        """Whether this is a SQLite file."""
        return self.engine == SQLITE

    @property
    def path(self) -> Path:
        """The SQLite file; ConfigError for a PostgreSQL database."""
        if not self.is_sqlite:
            raise ConfigError(f"{self.display} is a PostgreSQL database, not a file")
        return Path(self.target)

    @property
    def name(self) -> str:
        """A short name for task names and logs: the file's or the database's."""
        if self.is_sqlite:
            return Path(self.target).name
        return urlsplit(self.target).path.lstrip("/") or "postgres"

    @property
    def display(self) -> str:
        """The location without a password (safe to log)."""
        if self.is_sqlite:
            return self.target
        parts = urlsplit(self.target)
        host = parts.netloc.rpartition("@")[2]
        user = parts.username
        netloc = f"{user}@{host}" if user else host
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))

    def exists(self) -> bool:
        """Whether there is something to open: the file for SQLite (a server is asked when opened)."""
        return not self.is_sqlite or Path(self.target).is_file()

    def default_recordings(self) -> Path:
        """Where uploaded recordings go unless told: beside a SQLite file, else ``./recordings``."""
        return Path(self.target).parent / "recordings" if self.is_sqlite else Path("recordings")


def create_private(path: str | Path) -> None:
    """Create `path` readable by its owner only (0600), or take group and others' access off an existing one.

    fleet.db holds the cookie-signing secret, password hashes and upload tokens' hashes; SQLite gives
    its -wal and -shm files the same mode as the database.
    """
    path = Path(path)
    # Never open (and close) an existing database here: closing any descriptor of a file drops every
    # POSIX lock this process holds on it, SQLite's included.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        os.chmod(path, mode & 0o700)


_TOKENS = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|::|:[A-Za-z_]\w*|\?|%")


def to_pyformat(sql: str) -> str:
    """SQLite-style parameters (``?``, ``:name``) as psycopg's (``%s``, ``%(name)s``), ``%`` doubled.

    Quoted strings and identifiers are left as they are, and so is PostgreSQL's ``::`` cast.
    """

    def swap(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        if token.startswith(":") and token != "::":
            return f"%({token[1:]})s"
        return token.replace("%", "%%")  # psycopg reads % even inside quotes

    return _TOKENS.sub(swap, sql)


class Store:
    """One connection to the fleet store, autocommit, with explicit transactions (`transaction`)."""

    def __init__(self, location: str | os.PathLike[str] | Location, *, wal: bool = True) -> None:
        """Connect; StoreUnavailable when the server does not answer, ConfigError for a bad URL."""
        self.location = Location.parse(location)
        self.dialect = self.location.engine
        self._lock = threading.RLock()
        self._sql: dict[str, str] = {}
        self._pg: psycopg.Connection[Any] | None = None
        self._pipe: psycopg.Pipeline | None = None
        self._lite: sqlite3.Connection | None = None
        if self.dialect == SQLITE:
            path = self.location.path
            create_private(path)
            self._lite = sqlite3.connect(str(path), timeout=10.0, check_same_thread=False, isolation_level=None)
            if wal:
                self._lite.execute("PRAGMA journal_mode=WAL")
                self._lite.execute("PRAGMA synchronous=NORMAL")
            import sqlite3 as engine

            self.refused: tuple[type[BaseException], ...] = (
                engine.IntegrityError, engine.InterfaceError, engine.DataError, engine.ProgrammingError,
            )  # fmt: skip
            self._busy: tuple[type[BaseException], ...] = (engine.OperationalError,)
        else:
            self._pg = _pg_connect(self.location)
            import psycopg

            self.refused = (psycopg.IntegrityError, psycopg.DataError, psycopg.ProgrammingError)
            self._busy = (psycopg.OperationalError, psycopg.InterfaceError)
        # What a refused row costs in either engine: also what building its values raised.
        self.refused += (OverflowError, ValueError, TypeError)

    # ---- the differences --------------------------------------------------------------------

    @property
    def order_key(self) -> str:
        """The column that orders commands as inserted: SQLite's rowid, PostgreSQL's ``seq`` identity."""
        return "rowid" if self.dialect == SQLITE else "seq"

    @property
    def lock(self) -> str:
        """What a SELECT ends with to lock the rows it reads until commit (SQLite holds the whole file)."""
        return "" if self.dialect == SQLITE else " FOR UPDATE"

    def table(self, types: Sequence[str], rows: Sequence[Sequence[Any]]) -> tuple[str, list[Any]]:
        """`rows` as a table one statement selects from: (its SQL, its parameters); columns c1, c2, ….

        `types` are the columns' SQL types (``text``, ``integer``…).  However many the rows, the
        statement's text stays the same (prepared once; psycopg parses a query's text on every new
        one): a JSON array read by ``json_each`` in SQLite, one array per column ``unnest``-ed in
        PostgreSQL, rows kept in their order.
        """
        if self._lite is not None:
            columns = ", ".join(f"value ->> {k} AS c{k + 1}" for k in range(len(types)))
            return f"(SELECT {columns} FROM json_each(?)) AS t", [json.dumps(rows, ensure_ascii=False, allow_nan=False)]
        arrays = ", ".join(f"?::{kind}[]" for kind in types)
        names = ", ".join(f"c{k + 1}" for k in range(len(types)))
        return f"unnest({arrays}) AS t ({names})", [list(column) for column in zip(*rows, strict=True)]

    # ---- statements --------------------------------------------------------------------------

    def execute(self, sql: str, params: Params = ()) -> Any:
        """Run one statement; its cursor (``rowcount``, ``fetchone``, ``fetchall``, ``description``)."""
        with self._lock, self._translated():
            if self._lite is not None:
                return self._lite.execute(sql, params)
            text = self._sql.get(sql)
            if text is None:
                text = self._sql[sql] = to_pyformat(sql)
            return self._connection().execute(text, params or None)

    def changed(self, sql: str, params: Params = ()) -> int:
        """Run one statement; how many rows it changed (in a `pipeline`, waiting for the server's answer)."""
        with self._lock:
            cursor = self.execute(sql, params)
            if self._pipe is not None:
                with self._translated():
                    self._pipe.sync()
            return int(cursor.rowcount)

    @contextlib.contextmanager
    def pipeline(self) -> Iterator[None]:
        """PostgreSQL: send the statements of the block without waiting for each answer (libpq's pipeline mode).

        A statement whose rows are read (``fetchone``…) or counted (`changed`) waits for its own; a
        statement the server refuses raises there or when the block ends.  SQLite: nothing changes.
        """
        if self._lite is not None:
            yield
            return
        with self._lock, self._translated(), self._connection().pipeline() as pipe:
            self._pipe = pipe
            try:
                yield
            finally:
                self._pipe = None

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """Rows as dicts keyed by column name."""
        with self._lock:
            cursor = self.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]

    def scalar(self, sql: str, params: Params = ()) -> Any:
        """The first column of the first row; None when there is no row."""
        with self._lock:
            row = self.execute(sql, params).fetchone()
        return None if row is None else row[0]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction: committed when the block ends, rolled back when it raises.

        SQLite takes the write lock at the start (``BEGIN IMMEDIATE``), so a writer in another
        process waits its turn (up to 10 s) instead of failing half-way.
        """
        with self._lock:
            if self._lite is not None:
                with self._translated():
                    self._lite.execute("BEGIN IMMEDIATE")
                try:
                    yield
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        self._lite.execute("ROLLBACK")
                    raise
                with self._translated():
                    self._lite.execute("COMMIT")
                return
            with self._translated(), self._connection().transaction():
                yield

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._lite is not None:
                self._lite.close()
            if self._pg is not None:
                self._pg.close()

    def _connection(self) -> psycopg.Connection[Any]:
        """The PostgreSQL connection, connected again when the last one was lost."""
        assert self._pg is not None
        if self._pg.closed or self._pg.broken:
            log.warning("%s: connection lost, connecting again", self.location.display)
            self._pg = _pg_connect(self.location)
        return self._pg

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except self._busy as exc:
            raise StoreUnavailable(f"{self.location.display}: {type(exc).__name__}: {exc}") from exc


def _pg_connect(location: Location) -> psycopg.Connection[Any]:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ConfigError(f"--db {location.display}: psycopg is not installed ({exc})") from exc
    try:
        return psycopg.connect(location.target, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"{location.display}: {str(exc).strip()}") from exc
    except psycopg.ProgrammingError as exc:  # a URL libpq cannot read
        raise ConfigError(f"--db {location.display}: {exc}") from exc
