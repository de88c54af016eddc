"""SRT out through libsrt itself (ctypes), inside the push process: the only module that talks to libsrt.

Why not the ``ffmpeg`` program: Debian 12's ffmpeg 5.1 takes its output address only on its
command line, and an SRT URL carries the ``streamid`` and ``passphrase``, which every user of
the PC could then read in the process list (``/proc/PID/cmdline``); reading an option from a
file came in ffmpeg 7.  PyAV's bundled FFmpeg has no SRT protocol.  So the push process muxes
MPEG-TS with PyAV into `SrtSender`, a file-like object that hands it to libsrt as a caller in
live mode, in 1316-byte messages (7 TS packets, libsrt's default payload for live), and the
secrets never leave the process's memory.

Debian's library is ``libsrt1.5-gnutls`` (``libsrt-gnutls.so.1.5``, installed with ffmpeg);
the OpenSSL flavour and an upstream build are tried after it, and ``CLASSROOM_SRT_LIBRARY``
names another file.  The option and error numbers are libsrt's (``srt.h``, stable since 1.4).
Linux only: the socket address is built in Linux's ``sockaddr`` layout.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import struct

from streaming.errors import StreamingError
from streaming.target import SrtParams

__all__ = ["CONNECT_MS", "LIBRARY_ENV", "MESSAGE", "SrtError", "SrtSender", "open_sender", "refusal"]

LIBRARY_ENV = "CLASSROOM_SRT_LIBRARY"
LIBRARIES = ("libsrt-gnutls.so.1.5", "libsrt-openssl.so.1.5", "libsrt.so.1.5")
MESSAGE = 7 * 188  # MPEG-TS packets per SRT message: SRT_LIVE_DEF_PLSIZE
CONNECT_MS = 5000  # the handshake's deadline (libsrt's default is 3 s); the agent's connect_s is longer
LOG_CRIT = 2  # libsrt logs to stderr, which is the agent's pipe: only its critical lines

# SRT_SOCKOPT
SRTO_LATENCY = 23
SRTO_PASSPHRASE = 26
SRTO_PBKEYLEN = 27
SRTO_CONNTIMEO = 36
SRTO_STREAMID = 46
# SRT_ERRNO
SRT_ENOSERVER = 1001
SRT_ECONNREJ = 1002
SRT_ECONNLOST = 2001
SRT_ENOCONN = 2002
# SRT_REJECT_REASON
SRT_REJ_BADSECRET = 10
SRT_REJ_UNSECURE = 11
SRT_REJ_TIMEOUT = 16
SRT_REJC_PREDEFINED = 1000  # from here on: the listening application's own codes (HTTP's, plus 1000)
PLATFORM_CODES = {
    1400: "a malformed streamid", 1401: "not authorised", 1403: "forbidden", 1404: "no such stream",
    1409: "the stream is already being published", 1503: "the platform is unavailable",
}  # fmt: skip


class SrtError(StreamingError):
    """SRT failed: no library, no answer, a refusal, a lost connection; the message says which (never a secret)."""


def refusal(where: str, code: int, reject: int, detail: str) -> str:
    """What a failed SRT connect means, in words a technician acts on (pure: libsrt's codes in, text out)."""
    if code == SRT_ENOSERVER or (code == SRT_ECONNREJ and reject == SRT_REJ_TIMEOUT):
        seconds = f"{CONNECT_MS / 1000:g} s"
        return f"no answer from {where} within {seconds} (is the host or port wrong, the server down, or UDP blocked?)"
    if code != SRT_ECONNREJ:
        return f"cannot connect to {where}: {detail}"
    if reject == SRT_REJ_BADSECRET:
        return f"{where} refused the connection: wrong passphrase (check the URL's passphrase)"
    if reject == SRT_REJ_UNSECURE:
        mismatch = "one side has a passphrase and the other none"
        return f"{where} refused the connection: {mismatch} (check the URL's passphrase)"
    if reject >= SRT_REJC_PREDEFINED:
        meaning = PLATFORM_CODES.get(reject, "refused by the platform")
        return f"{where} refused the stream (code {reject}: {meaning}): check the URL's streamid"
    return f"{where} refused the connection ({detail})"


class _Library:
    """libsrt loaded and started for this process; `close` cleans it up."""

    def __init__(self) -> None:
        self.lib = self._load()
        lib, c_int = self.lib, ctypes.c_int
        for name, restype, argtypes in (
            ("srt_startup", c_int, []),
            ("srt_cleanup", c_int, []),
            ("srt_setloglevel", None, [c_int]),
            ("srt_create_socket", c_int, []),
            ("srt_setsockflag", c_int, [c_int, c_int, ctypes.c_void_p, c_int]),
            ("srt_connect", c_int, [c_int, ctypes.c_char_p, c_int]),
            ("srt_sendmsg2", c_int, [c_int, ctypes.c_char_p, c_int, ctypes.c_void_p]),
            ("srt_close", c_int, [c_int]),
            ("srt_getlasterror", c_int, [ctypes.c_void_p]),
            ("srt_getlasterror_str", ctypes.c_char_p, []),
            ("srt_getrejectreason", c_int, [c_int]),
            ("srt_rejectreason_str", ctypes.c_char_p, [c_int]),
        ):
            function = getattr(lib, name)
            function.restype, function.argtypes = restype, argtypes
        if lib.srt_startup() < 0:
            raise SrtError(f"libsrt did not start: {self.last_error()[1]}")
        lib.srt_setloglevel(LOG_CRIT)

    @staticmethod
    def _load() -> ctypes.CDLL:
        named = os.environ.get(LIBRARY_ENV)
        failures = []
        for name in (named,) if named else LIBRARIES:
            try:
                return ctypes.CDLL(name)
            except OSError as exc:
                failures.append(str(exc))
        raise SrtError(
            f"SRT needs libsrt (Debian: apt-get install libsrt1.5-gnutls, or {LIBRARY_ENV}=/path/to/libsrt.so): "
            + "; ".join(failures)
        )

    def last_error(self) -> tuple[int, str]:
        """The last error libsrt saw on this thread: its code and its words."""
        code = int(self.lib.srt_getlasterror(None))
        text = self.lib.srt_getlasterror_str() or b""
        return code, text.decode("utf-8", "replace")

    def close(self) -> None:
        """Stop libsrt's threads."""
        self.lib.srt_cleanup()


def _sockaddr(family: int, address: tuple[object, ...]) -> bytes:
    """A Linux ``sockaddr_in`` / ``sockaddr_in6`` for an IP address from `getaddrinfo`."""
    host, port = str(address[0]), struct.pack("!H", int(str(address[1])))
    if family == socket.AF_INET:
        return struct.pack("=H", family) + port + socket.inet_pton(family, host) + bytes(8)
    scope = int(str(address[3])) if len(address) == 4 else 0
    return struct.pack("=H", family) + port + bytes(4) + socket.inet_pton(family, host) + struct.pack("=I", scope)


class SrtSender:
    """A connected SRT caller taking an MPEG-TS byte stream (file-like `write`, for PyAV), sent as whole messages."""

    def __init__(self, library: _Library, sock: int, where: str) -> None:
        self._library, self._sock, self.where = library, sock, where
        self._pending = bytearray()
        self.bytes_sent = 0
        self.failure: SrtError | None = None  # why a write failed: PyAV reports only "Error in PyAV callback"

    def write(self, data: bytes) -> int:
        """Queue `data` and send every whole message; SrtError once the connection is gone."""
        self._pending += data
        while len(self._pending) >= MESSAGE:
            self._send(bytes(self._pending[:MESSAGE]))
            del self._pending[:MESSAGE]
        return len(data)

    def flush(self) -> None:
        """Nothing to do: a message goes out as soon as it is whole (a partial one would split a TS packet)."""

    def close(self) -> None:
        """Send what is left (the stream's last packets), close the socket and stop libsrt."""
        try:
            if self._pending and self._sock >= 0:
                with contextlib.suppress(SrtError):  # the end of a stream the platform no longer takes
                    self._send(bytes(self._pending))
            self._pending.clear()
        finally:
            if self._sock >= 0:
                self._library.lib.srt_close(self._sock)
                self._sock = -1
                self._library.close()

    def _send(self, message: bytes) -> None:
        if self._library.lib.srt_sendmsg2(self._sock, message, len(message), None) < 0:
            code, detail = self._library.last_error()
            if code in (SRT_ECONNLOST, SRT_ENOCONN):
                self.failure = SrtError(f"{self.where} closed the connection or stopped answering ({detail})")
            else:
                self.failure = SrtError(f"sending to {self.where} failed: {detail}")
            raise self.failure
        self.bytes_sent += len(message)


def open_sender(params: SrtParams) -> SrtSender:
    """Connect to the platform as an SRT caller with the URL's settings; SrtError saying why not."""
    where = f"srt://{params.host}:{params.port}" if ":" not in params.host else f"srt://[{params.host}]:{params.port}"
    try:
        addresses = socket.getaddrinfo(params.host, params.port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise SrtError(f"cannot resolve {params.host}: {exc}") from None
    library = _Library()
    why = f"no address for {params.host}"
    for family, _, _, _, address in addresses:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        sock, why, refused = _connect(library, params, _sockaddr(family, address), where)
        if sock >= 0:
            return SrtSender(library, sock, where)
        if refused:
            break  # the platform answered: another of its addresses would say the same
    library.close()
    raise SrtError(why)


def _connect(library: _Library, params: SrtParams, sockaddr: bytes, where: str) -> tuple[int, str, bool]:
    """(the connected socket or -1, why not, whether the platform answered with a refusal)."""
    lib = library.lib
    sock = int(lib.srt_create_socket())
    if sock < 0:
        return -1, f"cannot create an SRT socket: {library.last_error()[1]}", False
    options: list[tuple[int, bytes]] = [(SRTO_CONNTIMEO, struct.pack("=i", CONNECT_MS))]
    if params.latency_ms is not None:
        options.append((SRTO_LATENCY, struct.pack("=i", params.latency_ms)))
    if params.streamid:
        options.append((SRTO_STREAMID, params.streamid.encode()))
    if params.passphrase:
        options.append((SRTO_PASSPHRASE, params.passphrase.encode()))
    if params.pbkeylen:
        options.append((SRTO_PBKEYLEN, struct.pack("=i", params.pbkeylen)))
    for option, value in options:
        if lib.srt_setsockflag(sock, option, value, len(value)) < 0:
            detail = library.last_error()[1]
            lib.srt_close(sock)
            return -1, f"{where}: libsrt refused option {option}: {detail}", True
    if lib.srt_connect(sock, sockaddr, len(sockaddr)) >= 0:
        return sock, "", False
    code, detail = library.last_error()
    reject = int(lib.srt_getrejectreason(sock))
    lib.srt_close(sock)
    return -1, refusal(where, code, reject, detail), code == SRT_ECONNREJ and reject != SRT_REJ_TIMEOUT
