"""The transport base class: bytes in, bytes out, nothing else."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod

from drivers.errors import TransportError

#: Received bytes kept while nobody reads (between polls); beyond it the oldest are dropped.
MAX_BUFFER = 64 * 1024
#: The most one `read` returns, so that parsing what it returns takes the event loop a moment only.
READ_CHUNK = 4096


class Transport(ABC):
    """A byte pipe to one device: a serial port, a TCP connection or a UDP peer.

    Received bytes collect in a buffer of at most `max_buffer` bytes (a device that talks
    too much loses its oldest bytes, counted in `dropped_bytes`); `read` waits for some and
    returns them in chunks, `drain` takes what is there without waiting.  A transport that
    fails raises TransportError from every call until it is opened again.
    """

    #: `resend` repeats the request itself (same sequence number), so the device answers
    #: again without acting twice: safe to resend after a partial answer too.
    resend_is_same_request = False
    #: A connection that can look open while the far end is gone (TCP): reopen when silent.
    reconnect_when_silent = False

    def __init__(self, name: str, max_buffer: int = MAX_BUFFER) -> None:
        """`name` is what error messages call the port (``/dev/ttyUSB0``, ``tcp://h:p``)."""
        self.name = name
        self.max_buffer = max_buffer
        self.dropped_bytes = 0
        self._buffer = bytearray()
        self._ready = asyncio.Event()
        self._error: BaseException | None = None
        self.is_open = False

    @abstractmethod
    async def open(self) -> None:
        """Open the port or connection; TransportError if it cannot be opened."""

    @abstractmethod
    async def close(self) -> None:
        """Close it; safe to call twice."""

    @abstractmethod
    async def write(self, data: bytes) -> None:
        """Send bytes; TransportError when the port is gone."""

    async def resend(self, data: bytes) -> None:
        """Send a request again after a lost reply (VISCA over IP keeps the sequence number)."""
        await self.write(data)

    @property
    def buffered(self) -> int:
        """How many received bytes wait to be read."""
        return len(self._buffer)

    async def read(self, limit: int = READ_CHUNK) -> bytes:
        """Wait for received bytes and return up to `limit` of them (cancel it to stop waiting).

        It always lets other tasks run first: a device that never stops talking cannot keep
        its reader from yielding the event loop.
        """
        await asyncio.sleep(0)
        while not self._buffer:
            self._raise_if_failed()
            self._ready.clear()
            await self._ready.wait()
        data = bytes(self._buffer[:limit])
        del self._buffer[:limit]
        return data

    def drain(self) -> bytes:
        """Take whatever has been received (at most `max_buffer` bytes), without waiting."""
        self._raise_if_failed()
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def _received(self, data: bytes) -> None:
        """Called (on the event loop) by subclasses when bytes arrive; keeps the newest `max_buffer`."""
        self._buffer += data
        over = len(self._buffer) - self.max_buffer
        if over > 0:
            del self._buffer[:over]
            self.dropped_bytes += over
        self._ready.set()

    def _failed(self, exc: BaseException) -> None:
        """Called (on the event loop) by subclasses when the port dies under us."""
        self._error = exc
        self.is_open = False
        self._ready.set()

    def _opened(self) -> None:
        self._error = None
        self._buffer.clear()
        self.is_open = True

    def _raise_if_failed(self) -> None:
        if self._error is not None and not self._buffer:
            if isinstance(self._error, TransportError):
                raise self._error.with_traceback(None)  # ours already says what happened (a refused login)
            raise TransportError(f"{self.name}: port gone: {self._error}") from self._error
        if not self.is_open and not self._buffer:
            raise TransportError(f"{self.name}: not open")
