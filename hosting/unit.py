"""A systemd service unit for one of our programs, as text (sans-IO: nothing here touches the disk).

The unit runs the program as an unprivileged user with the whole file system read-only except
the folders it keeps its data in (``ProtectSystem=strict`` + ``ReadWritePaths=``), without any
way to gain privileges (``NoNewPrivileges=yes``: no sudo, no setuid helper), logging to the
journal, restarted when it fails, but not when it exits with status 2: that status means the
configuration or the command line is wrong, and restarting cannot fix it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from hosting.errors import InstallError

CONFIG_ERROR_STATUS = 2  # both programs exit with it when the config or command line is wrong
USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")  # what Debian's useradd accepts without --badname
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NEEDS_QUOTES = re.compile(r"[\s\"'\\;]")
# Folders that must never become writable: ReadWritePaths= on one of them undoes ProtectSystem=strict.
SYSTEM_FOLDERS = frozenset(
    PurePosixPath(p)
    for p in (
        "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt", "/proc", "/root", "/run",
        "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/local", "/var", "/var/lib", "/var/log",
    )
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ServiceUnit:
    """What a unit says: the command, the user, the folders it may write, and a few switches."""

    description: str
    exec_start: tuple[str, ...]  # absolute program path first
    user: str
    writable: tuple[PurePosixPath, ...]  # the only folders the service may write
    groups: tuple[str, ...] = ()  # supplementary groups (dialout: serial ports)
    environment: tuple[tuple[str, str], ...] = ()
    private_tmp: bool = True  # False keeps /tmp shared (read-only): X11's socket lives in /tmp/.X11-unix
    low_port: bool = False  # it listens on a port below 1024: grant CAP_NET_BIND_SERVICE and nothing else
    stop_timeout_s: int = 30
    documentation: str = ""  # a URL or file:// path

    def problems(self) -> list[str]:
        """Every reason this unit cannot be written, as ``field: got X, expected Y``."""
        found = []
        texts = [self.description, self.user, self.documentation, *self.exec_start, *self.groups]
        texts += [str(p) for p in self.writable] + [f"{k}={v}" for k, v in self.environment]
        if any(_CONTROL.search(text) for text in texts):
            found.append("a value contains a control character (a line break?), which a unit file cannot carry")
        if not USER_NAME.fullmatch(self.user):
            found.append(f"user: got {self.user!r}, expected a user name (lower-case letters, digits, _ and -)")
        found += [f"group: got {g!r}, expected a group name" for g in self.groups if not USER_NAME.fullmatch(g)]
        if not self.exec_start or not PurePosixPath(self.exec_start[0]).is_absolute():
            found.append(f"program: got {self.exec_start[:1]!r}, expected an absolute path")
        for path in self.writable:
            if not path.is_absolute():
                found.append(f"writable folder: got {str(path)!r}, expected an absolute path")
            elif path in SYSTEM_FOLDERS:
                found.append(f"writable folder: got {str(path)!r}, a system folder (give the service its own)")
        found += [f"environment: got {k!r}, expected a variable name" for k, _ in self.environment if not _is_name(k)]
        return found

    def render(self) -> str:
        """The unit file's text; InstallError naming every problem when it cannot be written."""
        if found := self.problems():
            raise InstallError("; ".join(found))
        lines = [
            "[Unit]",
            f"Description={_specifiers(self.description)}",
            *([f"Documentation={_specifiers(self.documentation)}"] if self.documentation else []),
            "Wants=network-online.target",
            "After=network-online.target",
            "",
            "[Service]",
            "Type=simple",
            f"ExecStart={command_line(self.exec_start)}",
            f"User={self.user}",
            *([f"SupplementaryGroups={' '.join(self.groups)}"] if self.groups else []),
            *(f"Environment={_word(f'{k}={v}')}" for k, v in self.environment),
            "Restart=on-failure",
            "RestartSec=5",
            f"RestartPreventExitStatus={CONFIG_ERROR_STATUS}",
            f"TimeoutStopSec={self.stop_timeout_s}",
            "StandardOutput=journal",
            "StandardError=journal",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            f"ReadWritePaths={' '.join(_word(str(p)) for p in _outermost(self.writable))}",
            *(["PrivateTmp=yes"] if self.private_tmp else []),
            "ProtectKernelTunables=yes",
            "ProtectKernelModules=yes",
            "ProtectControlGroups=yes",
            "RestrictSUIDSGID=yes",
            *(["AmbientCapabilities=CAP_NET_BIND_SERVICE"] if self.low_port else []),
            "",
            "[Install]",
            "WantedBy=multi-user.target",
        ]
        return "\n".join(lines) + "\n"


def command_line(words: Iterable[str]) -> str:
    """``ExecStart=``'s value: each word quoted as systemd splits it, ``%`` and ``$`` kept literal.

    systemd substitutes ``$VAR`` in the arguments only, not in the program's own path.
    """
    program, *arguments = words
    return " ".join([_word(program), *(_word(w.replace("$", "$$")) for w in arguments)])


def _word(text: str) -> str:
    """One word of a unit setting, quoted when systemd would otherwise split or unescape it."""
    text = _specifiers(text)
    if text and not _NEEDS_QUOTES.search(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _specifiers(text: str) -> str:
    """`text` with ``%`` doubled: systemd would read ``%h`` as the home folder."""
    return text.replace("%", "%%")


def _outermost(paths: Iterable[PurePosixPath]) -> list[PurePosixPath]:
    """The folders, without those inside another one of them, in the order given."""
    unique = list(dict.fromkeys(paths))
    return [p for p in unique if not any(o != p and p.is_relative_to(o) for o in unique)]


def _is_name(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text))
