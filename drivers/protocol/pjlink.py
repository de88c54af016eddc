"""PJLink's connection-level login, sans-IO: the greeting, the MD5 digest, the ERRA answer.

PJLink (JBMIA, class 1 v1.04 and class 2 v2.00) frames commands as ASCII lines, which the
profile engine speaks; what is not a frame is the start of each TCP connection.  The projector
greets with ``PJLINK 0`` (no password) or ``PJLINK 1 <random>``; the controller then puts the
32 lowercase hex digits of MD5(random + password) in front of its first command only.  A wrong
digest is answered ``PJLINK ERRA`` and the projector closes the connection.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from drivers.errors import ArgumentError, DriverError

NO_AUTH = b"PJLINK 0\r"
AUTH_ERROR = b"PJLINK ERRA\r"
DIGEST_CHARS = 32
#: The spec's longest password (32 bytes); the random number is 8 characters.
MAX_PASSWORD = 32
#: A greeting is one short line; anything longer before a CR is not PJLink.
MAX_GREETING = 64


class LoginError(DriverError, ValueError):
    """The far end's greeting or answer says the login cannot go on (why, in words)."""


def check_password(password: str) -> str:
    """A password the spec allows (1..32 printable ASCII characters); ArgumentError otherwise.

    The message never repeats the password itself.
    """
    if not password or len(password) > MAX_PASSWORD or not all("!" <= c <= "~" for c in password):
        raise ArgumentError(
            f"PJLink password: expected 1 to {MAX_PASSWORD} printable ASCII characters without spaces "
            f"(got {len(password)} characters)"
        )
    return password


def digest(random: str, password: str) -> str:
    """MD5(random + password) as 32 lowercase hex digits."""
    return hashlib.md5((random + password).encode("ascii"), usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class Greeting:
    """What a projector said on connecting: whether it wants a password, and its random number."""

    auth: bool
    random: str = ""

    @classmethod
    def parse(cls, line: bytes) -> Greeting:
        """Read one greeting line (CR included or not); LoginError says why it is not one."""
        text = line.rstrip(b"\r").decode("ascii", errors="replace")
        parts = text.split(" ")
        if len(parts) >= 2 and parts[0].upper() == "PJLINK":
            if parts[1] == "0" and len(parts) == 2:
                return cls(False)
            if parts[1] == "1" and len(parts) == 3 and 0 < len(parts[2]) <= MAX_PASSWORD and parts[2].isalnum():
                return cls(True, parts[2])
            if parts[1].upper() == "ERRA":
                raise LoginError("the projector refused the connection (PJLINK ERRA)")
        raise LoginError(f"not a PJLink greeting: {text[:MAX_GREETING]!r}")


def login_prefix(line: bytes, password: str | None) -> bytes:
    """What goes in front of the first command after greeting `line`: the digest, or nothing."""
    greeting = Greeting.parse(line)
    if not greeting.auth:
        return b""
    if password is None:
        raise LoginError("the projector asks for a password: give it as tcp://HOST:4352?password=...")
    return digest(greeting.random, password).encode("ascii")


class ServerLogin:
    """The projector's side of the login, for one connection (the simulator's).

    `greeting` is what to send on connecting.  `feed` takes the controller's bytes and returns
    ``(request bytes, answer, close)``: the bytes past the digest go to the device, `answer` (ERRA)
    goes back, and `close` says the connection ends there.
    """

    def __init__(self, password: str | None, random: str) -> None:
        """`password` None: no authentication (``PJLINK 0``)."""
        self.password = password
        self.random = random
        self._pending = bytearray()
        self.done = password is None

    @property
    def greeting(self) -> bytes:
        """The first line the projector sends."""
        return NO_AUTH if self.password is None else f"PJLINK 1 {self.random}\r".encode("ascii")

    def feed(self, data: bytes) -> tuple[bytes, bytes, bool]:
        """The controller's bytes in; what the device reads, what to answer, whether to close."""
        if self.done:
            return data, b"", False
        self._pending += data
        if len(self._pending) < DIGEST_CHARS and b"\r" not in self._pending:
            return b"", b"", False
        assert self.password is not None
        given = bytes(self._pending[:DIGEST_CHARS])
        rest = bytes(self._pending[DIGEST_CHARS:])
        self._pending.clear()
        wanted = digest(self.random, self.password).encode("ascii")
        if b"\r" in given or not hmac.compare_digest(given, wanted):
            return b"", AUTH_ERROR, True
        self.done = True
        return rest, b"", False
