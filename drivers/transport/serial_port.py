"""Serial ports through pyserial: a reader thread per port, never blocking the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import serial

from drivers.errors import TransportError
from drivers.profile_model import SerialDefaults
from drivers.transport.base import READ_CHUNK, Transport

_PARITY = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}


class SerialTransport(Transport):
    """A serial port (RS-232/RS-485 adapter, or a pty in tests and the simulator)."""

    def __init__(self, path: str, settings: SerialDefaults) -> None:
        """`path` is the device (``/dev/ttyUSB0``, ``COM3``); settings come from the profile."""
        super().__init__(path)
        self.path = path
        self.settings = settings
        self._port: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Bytes the reader thread has read and the loop has not taken yet: bounded like the
        # buffer, with at most one hand-over queued on the loop however fast the line talks.
        self._inbox = bytearray()
        self._inbox_lock = threading.Lock()
        self._handover_queued = False
        self._inbox_dropped = 0

    async def open(self) -> None:
        """Open the port and start its reader thread."""
        await self.close()
        opening = asyncio.ensure_future(asyncio.to_thread(self._open_port))
        try:
            self._port = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # The thread still opens the port (exclusively): close it when it does.
            opening.add_done_callback(_close_opened)
            raise
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TransportError(f"{self.path}: cannot open: {exc}") from exc
        self._opened()
        with self._inbox_lock:
            self._inbox.clear()
        self._stop = threading.Event()
        loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._reader,
            args=(self._port, self._stop, loop),
            name=f"serial[{self.path}].reader",
            daemon=True,
        )
        self._thread.start()

    def _open_port(self) -> Any:
        s = self.settings
        return serial.Serial(
            self.path,
            baudrate=s.baud,
            bytesize=s.bytesize,
            parity=_PARITY[s.parity],
            stopbits=s.stopbits,
            timeout=0.05,
            write_timeout=2,
            exclusive=True,
        )

    def _reader(self, port: Any, stop: threading.Event, loop: asyncio.AbstractEventLoop) -> None:
        """Blocking reads in this thread, in bounded chunks; bytes cross to the loop via the inbox."""
        try:
            while not stop.is_set():
                data = port.read(min(READ_CHUNK, max(1, port.in_waiting)))
                if data:
                    self._to_inbox(data, loop)
        except (serial.SerialException, OSError, TypeError) as exc:
            # TypeError: pyserial's read on a port closed under it.
            if not stop.is_set():
                loop.call_soon_threadsafe(self._failed, exc)
        except RuntimeError:
            pass  # the event loop closed first; nobody is listening any more

    def _to_inbox(self, data: bytes, loop: asyncio.AbstractEventLoop) -> None:
        """(Reader thread) keep the newest `max_buffer` bytes; wake the loop unless a wake-up is queued."""
        with self._inbox_lock:
            self._inbox += data
            over = len(self._inbox) - self.max_buffer
            if over > 0:
                del self._inbox[:over]
                self._inbox_dropped += over
            if self._handover_queued:
                return
            self._handover_queued = True
        loop.call_soon_threadsafe(self._handover)

    def _handover(self) -> None:
        """(Event loop) move what the reader thread collected into the transport's buffer."""
        with self._inbox_lock:
            data = bytes(self._inbox)
            self._inbox.clear()
            self._handover_queued = False
            self.dropped_bytes += self._inbox_dropped
            self._inbox_dropped = 0
        if data:
            self._received(data)

    async def close(self) -> None:
        """Stop the reader and close the port."""
        self._stop.set()
        port, self._port = self._port, None
        thread, self._thread = self._thread, None
        self.is_open = False
        try:
            if thread is not None:
                await asyncio.to_thread(thread.join, 1.0)
        finally:
            if port is not None:
                with contextlib.suppress(serial.SerialException, OSError):
                    port.close()

    async def write(self, data: bytes) -> None:
        """Write in a worker thread: a port with flow control may block."""
        port = self._port
        if port is None or not self.is_open:
            self._raise_if_failed()
            raise TransportError(f"{self.path}: not open")
        try:
            await asyncio.to_thread(_write_all, port, data)
        except (serial.SerialException, OSError, TypeError) as exc:
            self._failed(exc)
            raise TransportError(f"{self.path}: write failed: {exc}") from exc


def _close_opened(opening: asyncio.Future[Any]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        with contextlib.suppress(serial.SerialException, OSError):
            opening.result().close()


def _write_all(port: Any, data: bytes) -> None:
    port.write(data)
    port.flush()
