"""Run a local Mosquitto broker: the demo's embedded broker, and the tests' own broker.

It writes its own configuration (loopback listener, persistence, optional password file,
ACL and TLS) into a folder, so it never touches the system broker's settings.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from central.errors import MosquittoError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def mosquitto_binary() -> str:
    """The mosquitto executable (Debian installs it in /usr/sbin)."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise MosquittoError("mosquitto is not installed (Debian: apt-get install mosquitto mosquitto-clients)")
    return found


@dataclass(frozen=True)
class TlsFiles:
    """A listener's certificate, key and the CA that signed it."""

    cafile: Path
    certfile: Path
    keyfile: Path


class LocalBroker:
    """One Mosquitto process on a loopback port, configured from Python."""

    def __init__(
        self,
        folder: Path,
        port: int | None = None,
        *,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        tls: TlsFiles | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        """Nothing runs until `start`."""
        self.folder = Path(folder)
        self.host = host
        self.port = port or free_port(host)
        self.password_file = password_file
        self.acl_file = acl_file
        self.tls = tls
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``mqtt://`` or ``mqtts://`` URL of the listener."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def log_file(self) -> Path:
        """Where the broker logs."""
        return self.folder / "mosquitto.log"

    def config(self) -> str:
        """The configuration file's text."""
        lines = [
            f"listener {self.port} {self.host}",
            "persistence true",
            f"persistence_location {self.folder}/",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "max_queued_messages 100000",
            f"allow_anonymous {'false' if self.password_file else 'true'}",
        ]
        if getattr(os, "geteuid", lambda: -1)() == 0:
            # Started as root, mosquitto would switch to user `mosquitto`, who cannot write here.
            lines.append("user root")
        if self.password_file:
            lines.append(f"password_file {self.password_file}")
        if self.acl_file:
            lines.append(f"acl_file {self.acl_file}")
        if self.tls:
            lines += [f"cafile {self.tls.cafile}", f"certfile {self.tls.certfile}", f"keyfile {self.tls.keyfile}"]
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 10.0) -> None:
        """Start and wait until the port accepts connections."""
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "mosquitto.conf"
        conf.write_text(self.config())
        # A process group of its own: Ctrl-C at a terminal reaches the whole foreground group, and the
        # broker must outlive its clients' clean stop; its owner stops it (`stop`), last.
        self.process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, process_group=0
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                log = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
                raise MosquittoError(f"mosquitto exited at start: {err.strip()} {log.strip()[-500:]}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise MosquittoError(f"mosquitto did not listen on {self.host}:{self.port} within {timeout} s")

    def stop(self) -> None:
        """Stop cleanly (SIGTERM); persistence is written."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash or power cut does."""
        self._end(signal.SIGKILL)

    def restart(self) -> None:
        """Stop and start again on the same port, with the same data."""
        self.stop()
        self.start()

    def _end(self, sig: signal.Signals) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stderr:
            proc.stderr.close()

    def __enter__(self) -> LocalBroker:
        """Start on entry."""
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop on exit."""
        self.stop()
