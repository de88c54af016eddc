"""Before a program starts: can it keep its files where it was told to.

A folder it cannot create or write, or a database file it cannot open, is a configuration
problem with one line of explanation, found before any service starts (not a traceback from
deep inside SQLite). Under systemd the unit's ``ReadWritePaths=`` is the usual cause.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path

UNDER_SYSTEMD_HINT = " (the service may write only the folders its unit names: run install-service again)"


def folder_problem(folder: Path, files: Iterable[str] = (), *, create: bool = True) -> str | None:
    """Why the program cannot keep files in `folder` (and read and write those of `files` there), or None.

    A missing folder is created when `create` is true (with its parents), else it is the problem.
    """
    if not folder.is_dir():
        if not create:
            return f"the folder {folder} does not exist"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"cannot create {folder} ({exc.strerror}){_hint(exc.errno)}"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot write in {folder} (its owner or permissions){_hint(_errno_of(folder))}"
    for name in files:
        path = folder / name
        if path.exists() and not os.access(path, os.R_OK | os.W_OK):
            return f"cannot open {path} for writing (its owner or permissions){_hint(_errno_of(path))}"
    return None


def _errno_of(path: Path) -> int:
    """EROFS when `path` sits on a read-only mount (as ProtectSystem=strict makes most of them), else 0."""
    if not hasattr(os, "statvfs"):  # Windows: no such thing as a read-only mount to report
        return 0
    try:
        return errno.EROFS if os.statvfs(path).f_flag & os.ST_RDONLY else 0
    except OSError:
        return 0


def _hint(code: int | None) -> str:
    return UNDER_SYSTEMD_HINT if code == errno.EROFS and os.environ.get("INVOCATION_ID") else ""
