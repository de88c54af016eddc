"""``install-service``: write a program's systemd unit, make its folders, say how to start it.

Both programs' ``install-service`` commands build a `ServiceUnit` from their own options and
hand it here. `--dry-run` prints the unit and touches nothing.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, TextIO

from hosting.errors import InstallError
from hosting.unit import ServiceUnit

if TYPE_CHECKING:
    import pwd  # Unix only, like systemd: imported where used, so that the CLIs still load on Windows

UNIT_DIR = Path("/etc/systemd/system")
DEFAULT_USER = "classroom"


def add_install_options(parser: argparse.ArgumentParser) -> None:
    """The options both ``install-service`` commands share: the user, where the unit goes, --dry-run."""
    parser.add_argument(
        "--user", default=DEFAULT_USER, metavar="NAME", help=f"run the service as this user (default: {DEFAULT_USER})"
    )
    parser.add_argument(
        "--unit-dir", type=Path, default=UNIT_DIR, metavar="DIR", help=f"write the unit here (default: {UNIT_DIR})"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the unit and write nothing")


def entry_point(script: str, module: str, package: str) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The command that starts this program, with absolute paths, and the environment it needs.

    The console script installed beside the running interpreter (the virtualenv's) when there is
    one; else the interpreter runs `module`, with ``PYTHONPATH`` pointing at the source tree that
    `package` (a package's ``__file__``) was imported from.
    """
    python = Path(os.path.abspath(sys.executable))  # not resolved: a virtualenv's python is a symlink out of it
    installed = python.with_name(script)
    if installed.is_file() and os.access(installed, os.X_OK):
        return (str(installed),), ()
    source_root = Path(package).resolve().parent.parent
    return (str(python), "-m", module), (("PYTHONPATH", str(source_root)),)


def absolute(path: str | os.PathLike[str]) -> PurePosixPath:
    """`path` made absolute against the current folder, ``..`` folded (systemd wants it plain)."""
    return PurePosixPath(os.path.normpath(os.path.abspath(path)))


def install(
    unit: ServiceUnit,
    name: str,
    args: argparse.Namespace,
    *,
    reads: Sequence[Path] = (),
    secrets: Sequence[Path] = (),
    out: TextIO | None = None,
    euid: int | None = None,
) -> int:
    """Print (`--dry-run`) or write ``NAME.service`` into `--unit-dir`; returns the exit status.

    `reads` are files the service must be able to read (its config, a password file); `secrets`
    those of them that hold a password: each is checked and a warning says how to fix it.
    `euid` is who we run as (default: the process's effective user).
    """
    out = sys.stdout if out is None else out
    if not hasattr(os, "geteuid"):
        raise InstallError("install-service writes a systemd unit: it runs on Linux only")
    euid = os.geteuid() if euid is None else euid
    text = unit.render()  # every problem of the unit, before anything is touched
    if args.dry_run:
        out.write(text)
        return 0
    target = Path(args.unit_dir) / f"{name}.service"
    if euid != 0 and Path(os.path.abspath(args.unit_dir)).is_relative_to("/etc"):
        raise InstallError(
            f"writing {target} needs root: run it with sudo"
            " (--dry-run prints the unit, --unit-dir DIR writes it elsewhere)"
        )
    account = _account(unit.user, name)
    for line in [*_unreadable(reads, account, unit.groups), *_shown_to_all(secrets)]:
        print(f"warning: {line}", file=sys.stderr)
    for folder in unit.writable:
        _prepare(Path(folder), account, euid)
    _write(target, text)
    print(f"wrote {target} (runs as {unit.user}; writes only to {', '.join(map(str, unit.writable))})", file=out)
    print(f"start it now and at every boot:\n  systemctl daemon-reload && systemctl enable --now {name}", file=out)
    print(f"its log: journalctl -u {name}", file=out)
    return 0


def _account(user: str, name: str) -> pwd.struct_passwd:
    import pwd

    try:
        return pwd.getpwnam(user)
    except KeyError:
        raise InstallError(
            f"--user {user}: no such user; create it first: useradd --system --user-group"
            f" --home-dir /var/lib/{user} --shell /usr/sbin/nologin {user}"
        ) from None


def _prepare(folder: Path, account: pwd.struct_passwd, euid: int) -> None:
    """Make the folder (ReadWritePaths= must exist when the service starts) and, as root, give it to the user."""
    try:
        folder.mkdir(mode=0o750, parents=True, exist_ok=True)
        if euid == 0:
            for path in _tree(folder):
                os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)
    except OSError as exc:
        raise InstallError(f"{folder}: cannot prepare it for the service ({exc.strerror})") from None


def _tree(folder: Path) -> Iterable[str]:
    """The folder and everything under it (a reinstall may find files an earlier root run created)."""
    yield str(folder)
    for parent, dirs, files in os.walk(folder):
        for entry in (*dirs, *files):
            yield os.path.join(parent, entry)


def _write(target: Path, text: str) -> None:
    """Write the unit whole or not at all (a half-written unit would fail `systemctl daemon-reload`)."""
    partial = target.with_name(target.name + ".partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(text, encoding="utf-8")
        partial.chmod(0o644)
        partial.replace(target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise InstallError(f"cannot write {target}: {exc.strerror}") from None


def _unreadable(paths: Sequence[Path], account: pwd.struct_passwd, extra_groups: Sequence[str]) -> list[str]:
    """A line for each file the user cannot read, with the commands that let it."""
    import grp

    if account.pw_uid == 0:
        return []
    groups = {account.pw_gid, *(g.gr_gid for g in grp.getgrall() if account.pw_name in g.gr_mem)}
    groups |= {g.gr_gid for g in grp.getgrall() if g.gr_name in extra_groups}
    group = grp.getgrgid(account.pw_gid).gr_name
    return [
        f"{account.pw_name} cannot read {path}, which the service needs:"
        f" chgrp {group} {path} && chmod g+r {path} (and let it into the folders above)"
        for path in paths
        if not _readable(Path(path), account.pw_uid, groups)
    ]


def _readable(path: Path, uid: int, gids: set[int]) -> bool:
    """Whether a process of that user and those groups may read `path` (and look up every folder above it)."""
    try:
        chain = [(p, os.stat(p)) for p in [*reversed(Path(os.path.abspath(path)).parents), path]]
    except OSError:
        return False
    for place, info in chain:
        want = stat.S_IXUSR if stat.S_ISDIR(info.st_mode) and place != path else stat.S_IRUSR
        shift = 0 if info.st_uid == uid else 3 if info.st_gid in gids else 6
        if not info.st_mode & (want >> shift):
            return False
    return True


def _shown_to_all(paths: Sequence[Path]) -> list[str]:
    """A line for each file holding a password that every user of the machine may read."""
    found = []
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            continue
        if mode & stat.S_IROTH:
            found.append(f"{path} holds a password and every user of this machine can read it: chmod o-r {path}")
    return found
