"""Delivering a recording to an FTP or FTPS drop folder (the only ftplib importer).

ftplib blocks, so each delivery is one FTP conversation in a thread of its own, every socket
operation bounded by the target's ``timeout_s``; cancelling the delivery (the agent stopping, or
the service's watchdog seeing no progress) shuts the sockets, which ends the thread at once.

The server's own ``SIZE`` of the partial file is the truth: a transfer cut off (the server went
down, the agent restarted) continues from there with ``REST`` + ``STOR``, or ``APPE`` where the
server refuses ``REST``.  The recording is written as ``NAME.mp4.part``, then the ``.sha256`` and
``.json`` sidecars, and it is renamed to ``NAME.mp4`` last: a platform watching the folder never
takes a half file.  ``ftps://`` is explicit TLS (``AUTH TLS``) on the control and the data
connections, the certificate checked against the system's CAs or ``ca_file``, and each data
connection resumes the control connection's TLS session (vsftpd and FileZilla Server insist).
"""

from __future__ import annotations

import contextlib
import ftplib
import io
import logging
import socket
import ssl
import struct
import threading
from typing import BinaryIO

from agent.config.delivery import DeliveryTarget
from agent.recording.sidecar import Job
from agent.recording.transfer import DeliveryError, Progress, in_own_thread, server_text

log = logging.getLogger(__name__)

BLOCK = 64 * 1024
REST_REFUSED = ("500", "501", "502", "504", "554")  # REST unknown or not at that position: APPE instead


class _TlsFtp(ftplib.FTP_TLS):
    """FTPS whose data connections resume the control connection's TLS session."""

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int | None]:
        """Open a data connection (TLS, reusing the session, once ``PROT P`` is on)."""
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if getattr(self, "_prot_p", False):
            session = self.sock.session if isinstance(self.sock, ssl.SSLSocket) else None
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
        return conn, size


class FtpTransport:
    """Delivers jobs to one ``ftp://`` or ``ftps://`` target."""

    def __init__(self, target: DeliveryTarget) -> None:
        """Nothing is opened until `deliver`."""
        self.target = target

    def where(self, job: Job) -> str:
        """``ftp://host:port/folder/NAME.mp4``."""
        return f"{self.target.scheme}://{self.target.host}:{self.target.port}/{'/'.join(self.target.folder)}/{job.name}"

    async def deliver(self, job: Job, progress: Progress) -> None:
        """One conversation: log in, continue the file, send the sidecars, rename; DeliveryError if not."""
        session = _Session(self.target, job, progress)
        try:
            await in_own_thread(session.run, f"delivery[{self.target.name}].ftp")
        finally:
            session.abort()  # done already, or cancelled: its sockets are shut, so its thread ends now


class _Session:
    """One blocking FTP conversation, run in its thread; `abort` (from any thread) shuts its sockets."""

    def __init__(self, target: DeliveryTarget, job: Job, progress: Progress) -> None:
        self.target = target
        self.job = job
        self.progress = progress
        self.step = "connect"
        self.stopped = threading.Event()
        self.ftp: ftplib.FTP | None = None
        self.data: socket.socket | None = None

    def abort(self) -> None:
        self.stopped.set()
        if self.data is not None:  # closed with a reset: what the kernel still holds is dropped, the cut is plain
            with contextlib.suppress(OSError):
                socket.socket.setsockopt(self.data, socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        for sock in (self.data, self.ftp.sock if self.ftp is not None else None):
            if sock is not None:
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket: TLS state stays untouched

    def run(self) -> None:
        """The whole conversation; every failure becomes a DeliveryError naming the step."""
        try:
            self._converse()
        except DeliveryError:
            raise
        except ssl.SSLCertVerificationError as exc:
            hint = "set ca_file to the CA (or the self-signed certificate) the server's certificate comes from"
            raise self._error(f"TLS certificate not trusted ({exc.verify_message}): {hint}") from exc
        except ftplib.error_perm as exc:
            hint = "; check username and password (or password_file)" if self.step == "login" else ""
            raise self._error(f"refused: {server_text(str(exc), self.target)}{hint}") from exc
        except ftplib.Error as exc:  # error_temp, error_reply, error_proto
            raise self._error(f"{type(exc).__name__}: {server_text(str(exc), self.target)}") from exc
        except (OSError, EOFError) as exc:  # connection refused or dropped, timeouts, TLS failures
            why = "stopped" if self.stopped.is_set() else f"{type(exc).__name__}: {server_text(str(exc), self.target)}"
            raise self._error(why or type(exc).__name__) from exc

    def _error(self, why: str) -> DeliveryError:
        return DeliveryError(f"{self.target.scheme}://{self.target.host}:{self.target.port}: {self.step}: {why}")

    def _converse(self) -> None:
        ftp = self._login()
        try:
            self.step = "folder"
            ftp.voidcmd("TYPE I")  # binary: SIZE and REST count bytes
            for folder in self.target.folder:
                try:
                    ftp.cwd(folder)
                except ftplib.error_perm:
                    ftp.mkd(folder)
                    ftp.cwd(folder)
            self._recording(ftp)
            self.step = "sidecars"
            for name, content in self.job.sidecars():
                self._store(ftp, f"STOR {name}", io.BytesIO(content), None, counted=False)
            if self.target.temp_suffix:
                self._rename(ftp)
            with contextlib.suppress(ftplib.Error, OSError, EOFError):
                ftp.quit()
        finally:
            ftp.close()

    def _login(self) -> ftplib.FTP:
        target = self.target
        if target.scheme == "ftps":
            context = ssl.create_default_context(cafile=str(target.ca_file) if target.ca_file else None)
            ftp: ftplib.FTP = _TlsFtp(context=context, timeout=target.timeout_s, encoding=target.encoding)
        else:
            ftp = ftplib.FTP(timeout=target.timeout_s, encoding=target.encoding)
        self.ftp = ftp
        if self.stopped.is_set():
            raise DeliveryError("stopped")
        ftp.connect(target.host, target.port)
        self.progress.moved()
        if isinstance(ftp, _TlsFtp):
            self.step = "tls"
            ftp.auth()
        self.step = "login"
        ftp.login(target.username or "anonymous", target.password)
        if isinstance(ftp, _TlsFtp):
            ftp.prot_p()
        ftp.set_pasv(True)
        self.progress.moved()
        return ftp

    def _recording(self, ftp: ftplib.FTP) -> None:
        """Send what the server lacks of the recording (as NAME.mp4.part), checked by SIZE afterwards."""
        job, self.step = self.job, "size"
        if self._size(ftp, job.name) == job.size:  # renamed by an earlier attempt: only sidecars may be missing
            self.progress.moved(job.size)
            return
        part = job.name + self.target.temp_suffix
        have = self._size(ftp, part) or 0
        if have > job.size:  # not ours, or the file changed: start it over
            ftp.delete(part)
            have = 0
        self.progress.moved(have)
        self.step = "upload"
        if have < job.size:
            with job.path.open("rb") as f:
                f.seek(have)
                if have == 0:
                    self._store(ftp, f"STOR {part}", f, None)
                else:
                    self._resume(ftp, part, f, have)
        self.step = "check"
        got = self._size(ftp, part)
        if got is not None and got != job.size:
            raise self._error(f"{part} has {got} bytes after the transfer, expected {job.size}: sending it again")

    def _resume(self, ftp: ftplib.FTP, part: str, f: BinaryIO, have: int) -> None:
        """Continue at `have`: REST + STOR, or APPE when the server refuses REST."""
        log.info("%s: %s resumes at %d of %d bytes", self.target.name, part, have, self.job.size)
        try:
            self._store(ftp, f"STOR {part}", f, have)
        except ftplib.error_perm as exc:
            if not str(exc).startswith(REST_REFUSED) or self.progress.offset != have:
                raise
            log.info("%s: REST refused (%s): appending with APPE", self.target.name, server_text(str(exc), self.target))
            f.seek(have)
            self._store(ftp, f"APPE {part}", f, None)

    def _store(self, ftp: ftplib.FTP, command: str, f: BinaryIO, rest: int | None, *, counted: bool = True) -> None:
        """One upload on a passive data connection; `counted` ones move the progress block by block."""
        conn, _ = ftp.ntransfercmd(command, rest)
        self.data = conn
        try:
            offset = rest or self.progress.offset
            while block := f.read(BLOCK):
                if self.stopped.is_set():
                    raise DeliveryError("stopped")
                conn.sendall(block)
                offset += len(block)
                self.progress.moved(offset if counted else None)
            if isinstance(conn, ssl.SSLSocket):
                # TLS's goodbye: some servers close without answering it; their 226 (below) is what counts.
                with contextlib.suppress(ssl.SSLError, OSError):
                    conn.unwrap()
        finally:
            self.data = None
            conn.close()
        ftp.voidresp()
        self.progress.moved()

    def _rename(self, ftp: ftplib.FTP) -> None:
        self.step = "rename"
        part = self.job.name + self.target.temp_suffix
        if self._size(ftp, self.job.name) == self.job.size and self._size(ftp, part) is None:
            return  # renamed already
        with contextlib.suppress(ftplib.error_perm):
            ftp.delete(self.job.name)  # some servers refuse to rename over a file
        ftp.rename(part, self.job.name)

    def _size(self, ftp: ftplib.FTP, name: str) -> int | None:
        """The server's size of a file; None when it has none (or does not say)."""
        try:
            return ftp.size(name)
        except ftplib.error_perm:
            return None
