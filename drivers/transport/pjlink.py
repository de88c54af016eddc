"""A TCP connection that logs in the PJLink way before the first frame (port 4352)."""

from __future__ import annotations

import asyncio

from drivers.errors import AuthenticationFailed, TransportError
from drivers.protocol import pjlink
from drivers.transport.tcp import TcpTransport


class PjlinkTransport(TcpTransport):
    """TCP to a PJLink projector: reads its greeting on `open`, signs the first command.

    The password stays in this object: never in `name`, a message or a log line.  A wrong one
    is answered ``PJLINK ERRA`` (the projector then hangs up): every later read raises
    AuthenticationFailed until the connection is opened again.
    """

    def __init__(self, host: str, port: int, password: str | None = None, connect_timeout: float = 3.0) -> None:
        """`password` None: the projector must not ask for one."""
        super().__init__(host, port, connect_timeout)
        self._password = password
        self._prefix = b""
        self._answer = bytearray()  # the first bytes after a signed command, until they are not ERRA
        self._checking = False

    async def open(self) -> None:
        """Connect and read the greeting within the connect deadline."""
        await super().open()
        self._prefix, self._checking = b"", False
        self._answer.clear()
        try:
            async with asyncio.timeout(self.connect_timeout):
                line = await self._greeting()
            self._prefix = pjlink.login_prefix(line, self._password)
        except TimeoutError:
            await self.close()
            raise TransportError(f"{self.name}: no PJLink greeting within {self.connect_timeout:g} s") from None
        except pjlink.LoginError as exc:
            await self.close()
            raise AuthenticationFailed(f"{self.name}: {exc}") from None
        except TransportError:
            await self.close()
            raise

    async def _greeting(self) -> bytes:
        line = bytearray()
        while b"\r" not in line:
            if len(line) > pjlink.MAX_GREETING:
                raise pjlink.LoginError(f"not a PJLink greeting: {bytes(line[:32])!r}...")
            line += await self.read()
        end = line.index(b"\r") + 1
        self._buffer[:0] = line[end:]  # a projector that answers fast: keep what came after
        return bytes(line[:end])

    async def write(self, data: bytes) -> None:
        """Send; the first command after a ``PJLINK 1`` greeting carries the digest."""
        prefix, self._prefix = self._prefix, b""
        if prefix:
            self._checking = True
        await super().write(prefix + data)

    def _received(self, data: bytes) -> None:
        if not self._checking:
            super()._received(data)
            return
        self._answer += data
        if pjlink.AUTH_ERROR.startswith(bytes(self._answer)):
            if len(self._answer) == len(pjlink.AUTH_ERROR):
                self._checking = False
                self._failed(
                    AuthenticationFailed(
                        f"{self.name}: PJLink authentication failed (PJLINK ERRA): "
                        "check the password in the device's address"
                    )
                )
            return  # maybe ERRA: wait for the rest
        self._checking = False
        answer = bytes(self._answer)
        self._answer.clear()
        super()._received(answer)
