"""Dashboard users: scrypt-hashed passwords and a role, in the ``users`` table of fleet.db.

Roles: ``viewer`` sees everything; ``technician`` and ``admin`` may also send commands and
acknowledge alarms.  User management is done from the command line (`main`), not the web.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import hmac
import os
import sys
from collections.abc import Sequence
from typing import IO, Any

from central.errors import CentralError
from central.schema import migrate
from central.store import Location, Store

ROLES = ("viewer", "technician", "admin")
COMMANDERS = frozenset({"technician", "admin"})
MIN_PASSWORD = 8

# scrypt cost: about 15 ms and 16 MiB per check here; the parameters travel with each hash,
# so raising them later leaves older hashes readable.
_N, _R, _P, _DKLEN = 2**14, 8, 1, 32
_TABLE = "users"


class UserError(CentralError):
    """A user operation that cannot be done: unknown or duplicate name, bad role, weak password."""


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$<salt hex>$<hash hex>`` with a fresh 16-byte salt."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored` (constant-time compare of the digests)."""
    try:
        scheme, n, r, p, salt_hex, digest_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
        digest = hashlib.scrypt(
            password.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(expected), maxmem=2**26
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest, expected)


# Checked against when the user does not exist, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = hash_password("not a password", salt=b"\0" * 16)


class Users:
    """The users of the dashboard, stored beside the fleet (the ``users`` table of its store)."""

    def __init__(self, location: str | os.PathLike[str] | Location) -> None:
        """Open the store (bringing its schema up to date if needed)."""
        # `check` runs in a worker thread (scrypt is slow on purpose); the store's lock serialises
        # its connection between that thread and the event loop.
        self._db = Store(location)
        try:
            migrate(self._db)
        except BaseException:
            self._db.close()
            raise
        self.location = self._db.location

    def _row(self, username: str) -> dict[str, Any] | None:
        rows = self._db.query(f"SELECT * FROM {_TABLE} WHERE username = ?", [username])
        return rows[0] if rows else None

    def _write(self, action: str, username: str, values: dict[str, str | int] | None = None) -> None:
        values = values or {}
        with self._db.transaction():
            if action == "insert":
                names = ", ".join(values)
                sql = f"INSERT INTO {_TABLE} (username, {names}) VALUES (?{', ?' * len(values)}) ON CONFLICT DO NOTHING"
                if not self._db.execute(sql, [username, *values.values()]).rowcount:
                    raise UserError(f"user {username!r} already exists")
            elif action == "update":
                # A new password or role ends every session the user has open (`session`).
                sets = "".join(f"{name} = ?, " for name in values)
                sql = f"UPDATE {_TABLE} SET {sets}generation = generation + 1 WHERE username = ?"
                self._db.execute(sql, [*values.values(), username])
            else:
                self._db.execute(f"DELETE FROM {_TABLE} WHERE username = ?", [username])

    def add(self, username: str, password: str, role: str = "viewer") -> None:
        """Create a user; UserError if the name is taken, the role unknown or the password short."""
        _check_name(username)
        _check_role(role)
        _check_password(password)
        if self._row(username) is not None:
            raise UserError(f"user {username!r} already exists")
        self._write("insert", username, {"hash": hash_password(password), "role": role, "generation": 0})

    def set_password(self, username: str, password: str) -> None:
        """Change a user's password; UserError if there is no such user."""
        _check_password(password)
        self._require(username)
        self._write("update", username, {"hash": hash_password(password)})

    def set_role(self, username: str, role: str) -> None:
        """Change a user's role; UserError if there is no such user or role."""
        _check_role(role)
        self._require(username)
        self._write("update", username, {"role": role})

    def remove(self, username: str) -> None:
        """Delete a user; UserError if there is no such user."""
        self._require(username)
        self._write("delete", username)

    def check(self, username: str, password: str) -> str | None:
        """The user's role when the password is right, None otherwise."""
        row = self._row(username)
        ok = verify_password(password, row["hash"] if row else _DUMMY_HASH)
        return str(row["role"]) if row is not None and ok else None

    def session(self, username: str) -> tuple[str, int] | None:
        """The user's role and session generation (sessions of another generation are over); None if gone."""
        row = self._row(username)
        return (str(row["role"]), int(row["generation"] or 0)) if row else None

    def end_sessions(self, username: str) -> None:
        """End every session the user has open (logout); nothing for an unknown user."""
        if self._row(username) is not None:
            self._write("update", username)

    def role(self, username: str) -> str | None:
        """The current role of a user, None if the user no longer exists."""
        row = self._row(username)
        return str(row["role"]) if row else None

    def list(self) -> list[dict[str, str]]:
        """Every user's name and role, sorted by name."""
        rows = self._db.query(f"SELECT username, role FROM {_TABLE} ORDER BY username")
        return [{"username": r["username"], "role": r["role"]} for r in rows]

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def _require(self, username: str) -> None:
        if self._row(username) is None:
            raise UserError(f"no user {username!r}")


def _check_name(username: str) -> None:
    if not username or len(username) > 64 or not username.isprintable() or username.strip() != username:
        raise UserError(f"user name {username!r}: 1 to 64 printable characters, no surrounding spaces")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"role {role!r}: expected one of {', '.join(ROLES)}")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password: at least {MIN_PASSWORD} characters")


def _read_password(stdin: IO[str], prompt: str) -> str:
    """Prompt on a terminal; read one line otherwise (so scripts can pipe the password in)."""
    if stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("again: ") != first:
            raise UserError("the two passwords differ")
        return first
    return stdin.readline().rstrip("\r\n")


def parser() -> argparse.ArgumentParser:
    """``users --db fleet.db add|passwd|role|remove|list``: the command-line door for admins."""
    p = argparse.ArgumentParser(prog="classroom-central users", description="Manage dashboard users.")
    p.add_argument("--db", default="fleet.db", help="the fleet store: a SQLite file (default: fleet.db) or postgresql://…")
    sub = p.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="add a user (password read from the terminal or stdin)")
    add.add_argument("username")
    add.add_argument("--role", choices=ROLES, default="viewer")
    sub.add_parser("passwd", help="set a user's password").add_argument("username")
    role = sub.add_parser("role", help="change a user's role")
    role.add_argument("username")
    role.add_argument("role", choices=ROLES)
    sub.add_parser("remove", help="delete a user").add_argument("username")
    sub.add_parser("list", help="list users and roles")
    return p


def main(argv: Sequence[str] | None = None, *, stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> int:
    """Run a ``users`` command; 0 on success, 1 with a message on stderr otherwise."""
    args = parser().parse_args(argv)
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    users = Users(args.db)
    try:
        if args.action == "add":
            users.add(args.username, _read_password(stdin, "password: "), args.role)
        elif args.action == "passwd":
            users.set_password(args.username, _read_password(stdin, "new password: "))
        elif args.action == "role":
            users.set_role(args.username, args.role)
        elif args.action == "remove":
            users.remove(args.username)
        else:
            for row in users.list():
                print(f"{row['username']}\t{row['role']}", file=stdout)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
