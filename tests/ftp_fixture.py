"""A real FTP / FTPS server for tests: pyftpdlib in a process of its own, which a test kills and starts again.

Run as a script by `FtpServer`; the options make it misbehave the way real drops do:
``--cut-after N`` ends the whole server process (os._exit, as a crash) once N bytes of uploads
arrived, ``--rate B`` throttles uploads to B bytes/s, ``--no-rest`` answers REST with 502.
Every command but PASS's argument is written to ``--log`` (one line each) for the test to read.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made by the openssl CLI."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "ftp-cert.pem", folder / "ftp-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


class FtpServer:
    """The server process on a fixed loopback port; `start` again after `kill` serves the same folder."""

    def __init__(self, root: Path, *, user: str = "drop", password: str = "drop-pass-1") -> None:
        from central.mosquitto import free_port

        self.root = root / "ftp-root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.log_file = root / "ftp-commands.log"
        self.port = free_port()
        self.user, self.password = user, password
        self.process: subprocess.Popen[bytes] | None = None

    def start(
        self, *, tls: tuple[Path, Path] | None = None, cut_after: int = 0, rate: int = 0, no_rest: bool = False
    ) -> None:
        args = [sys.executable, str(HERE), "--root", str(self.root), "--port", str(self.port), "--user", self.user]
        args += ["--password", self.password, "--log", str(self.log_file)]
        if tls:
            args += ["--cert", str(tls[0]), "--key", str(tls[1])]
        args += ["--cut-after", str(cut_after), "--rate", str(rate)] + (["--no-rest"] if no_rest else [])
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.process.stdout is not None
        deadline = time.monotonic() + 20
        line = self.process.stdout.readline()  # "ready" once it listens (or "" when it died)
        if line.strip() != b"ready" or time.monotonic() > deadline:
            self.kill()
            raise RuntimeError(f"the FTP server did not start: {line!r}")

    def kill(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(timeout=10)
            if self.process.stdout:
                self.process.stdout.close()
            self.process = None

    def wait_exit(self, timeout: float = 30) -> int:
        """The exit status of a server that ends by itself (``--cut-after``)."""
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def commands(self) -> list[str]:
        return self.log_file.read_text(encoding="utf-8").splitlines() if self.log_file.exists() else []

    def __enter__(self) -> FtpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def main() -> None:
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import DTPHandler, FTPHandler, ThrottledDTPHandler
    from pyftpdlib.servers import FTPServer

    parser = argparse.ArgumentParser()
    for name in ("--root", "--user", "--password", "--log", "--cert", "--key"):
        parser.add_argument(name, default="")
    for name in ("--port", "--cut-after", "--rate"):
        parser.add_argument(name, type=int, default=0)
    parser.add_argument("--no-rest", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    log = open(args.log, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - open for the process's life
    received = [0]

    authorizer = DummyAuthorizer()
    authorizer.add_user(args.user, args.password, args.root, perm="elradfmwMT")
    base: Any = FTPHandler
    dtp_base: Any = ThrottledDTPHandler if args.rate else DTPHandler
    if args.cert:
        from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler

        base, dtp_base = TLS_FTPHandler, TLS_DTPHandler

    class Dtp(dtp_base):  # type: ignore[misc, valid-type]
        read_limit = args.rate or 0

        def handle_read(self) -> None:
            before = self.tot_bytes_received
            super().handle_read()
            received[0] += self.tot_bytes_received - before
            if args.cut_after and received[0] >= args.cut_after:
                self.file_obj.flush()
                os._exit(3)  # the server dies mid-transfer, what it wrote so far stays on its disk

        handle_read_event = handle_read  # pyftpdlib's loop calls this name

    class Handler(base):  # type: ignore[misc, valid-type]
        dtp_handler = Dtp

        def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
            log.write(f"{cmd} {'***' if cmd == 'PASS' else arg}".rstrip() + "\n")
            super().pre_process_command(line, cmd, arg)

        if args.no_rest:

            def ftp_REST(self, line: str) -> None:  # noqa: N802 - pyftpdlib's naming
                self.respond("502 REST not implemented here.")

    Handler.authorizer = authorizer
    if args.cert:
        Handler.certfile, Handler.keyfile = args.cert, args.key
        Handler.tls_control_required = Handler.tls_data_required = True
    server = FTPServer(("127.0.0.1", args.port), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
