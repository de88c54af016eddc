"""Serve a simulated device on a pty, a serial port, TCP or UDP, with injectable faults."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

from drivers.errors import ArgumentError, TransportError
from drivers.protocol import visca_ip
from drivers.protocol.engine import Framer
from drivers.protocol.pjlink import ServerLogin, check_password
from drivers.sim.faults import Faults
from drivers.sim.model import Simulator

__all__ = ["Faults", "SimServer"]

log = logging.getLogger(__name__)


Report = Callable[[str], None]
Send = Callable[[bytes], Awaitable[None]]


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _sender(write: Callable[[bytes], object]) -> Send:
    async def send(data: bytes) -> None:
        write(data)

    return send


class SimServer:
    """One simulated device listening at one ADDRESS (`pty`, a serial port, tcp://, udp://)."""

    def __init__(
        self,
        sim: Simulator,
        address: str,
        faults: Faults | None = None,
        report: Report | None = None,
        *,
        password: str | None = None,
        idle_close_s: float | None = None,
    ) -> None:
        """Nothing is opened until `start`.

        `password`: a profile with a login (PJLink) asks for it on each connection (None: no
        password).  `idle_close_s`: hang up on a controller silent that long (default: the
        profile's ``idle_close_s``; 0 never).
        """
        self.sim = sim
        self.address = address
        self.faults = faults or Faults()
        self.report = report or (lambda line: log.info("%s", line))
        login = sim.profile.transport.login
        if password is not None and not login:
            raise ArgumentError(f"{sim.profile.id} has no login: it takes no password")
        self.password = check_password(password) if password is not None else None
        self.idle_close_s = sim.profile.transport.idle_close_s if idle_close_s is None else idle_close_s
        self.idle_closed = 0  # connections hung up for silence
        self.hung_up = asyncio.Event()  # set at each hang-up for silence or a wrong digest
        self.logins = 0  # connections whose digest was right (a profile with a login and a password)
        self.device_path = ""
        self._closers: list[Callable[[], object]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_udp: dict[tuple[str, int], tuple[int, list[bytes]]] = {}
        self.flooded = 0  # noise bytes sent so far (Faults.flood_bytes)
        self.flood_done = asyncio.Event()  # set when one connection's flood has been sent in full
        self.answered = 0  # requests answered, on every connection
        self._answering = asyncio.Condition()

    async def start(self) -> str:
        """Open the address; returns where a controller should connect (the pty's path)."""
        parts = urlsplit(self.address)
        if self.sim.profile.transport.login and parts.scheme != "tcp":
            raise ArgumentError(f"{self.address}: {self.sim.profile.id} is served over tcp:// only (it logs in)")
        if self.address == "pty":
            self.device_path = self._start_pty()
        elif parts.scheme == "tcp":
            host = parts.hostname or "127.0.0.1"
            port = await self._start_tcp(host, self._port(parts.port, self.sim.profile.transport.tcp_port))
            self.device_path = f"tcp://{host}:{port}"
        elif parts.scheme == "udp":
            await self._start_udp(
                parts.hostname or "127.0.0.1", self._port(parts.port, self.sim.profile.transport.udp_port)
            )
            self.device_path = self.address
        else:
            await self._start_serial(self.address)
            self.device_path = self.address
        return self.device_path

    def _spawn(self, work: Coroutine[Any, Any, None], what: str) -> None:
        """Run `work` as a task this server owns: `close` cancels whatever is still running."""
        task = asyncio.get_running_loop().create_task(work, name=f"sim[{self.sim.profile.id}].{what}")
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("simulator %s: %s", self.sim.profile.id, task.exception())

    def _port(self, given: int | None, default: int) -> int:
        """The address's port; the profile's port when it names none (0 picks a free one)."""
        if given is None and not default:
            raise ArgumentError(f"{self.address}: give a port ({self.sim.profile.id} has no default)")
        return default if given is None else given

    async def close(self) -> None:
        """Stop serving (a pty vanishes, as an unplugged adapter does)."""
        for task in list(self._tasks):
            task.cancel()
        while self._closers:
            with contextlib.suppress(OSError):
                done = self._closers.pop()()
                if asyncio.iscoroutine(done):
                    await done

    async def __aenter__(self) -> SimServer:
        """Start on entry."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Close on exit."""
        await self.close()

    async def _answer(self, data: bytes, framer: Framer, send: Send) -> None:
        replies = self.sim.feed(data, framer)
        if replies:
            async with self._answering:
                self.answered += 1
                self._answering.notify_all()
        self.report(
            f"{self.sim.profile.id}: {data.hex(' ')} -> {' | '.join(r.hex(' ') for r in replies) or '(no reply)'}"
        )
        out = self.faults.apply(replies)
        if self.faults.delay_ms:
            await asyncio.sleep(self.faults.delay_ms / 1000)
        if out:
            await send(b"".join(out))

    def _flood_on(self, send: Send, chunk: int, what: str) -> None:
        """Start sending the configured noise on one connection, if any is configured."""
        if self.faults.flood_bytes:
            self._spawn(self._flood(send, chunk), what)

    async def _flood(self, send: Send, chunk: int) -> None:
        rule = self.sim.profile.reply_frame
        left = self.faults.flood_bytes
        async with self._answering:
            await self._answering.wait_for(lambda: self.answered >= self.faults.flood_after)
        try:
            while left > 0:
                data = self.faults.noise(min(chunk, left), rule.start + rule.end)
                await send(data)
                left -= len(data)
                self.flooded += len(data)
                await asyncio.sleep(0)  # the answers go on while the flood does
        except OSError:
            return  # the controller went away
        self.report(f"{self.sim.profile.id}: flood of {self.faults.flood_bytes} bytes sent")
        self.flood_done.set()

    def _start_pty(self) -> str:
        import tty

        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR/LF translation: the line carries bytes as they are
        os.set_blocking(master, False)
        loop = asyncio.get_running_loop()
        framer = self.sim.new_framer()

        # One writer at a time: answers and the flood both wait for the line to drain, and a second
        # add_writer on the same fd would replace the first one's callback, leaving it waiting forever.
        writing = asyncio.Lock()

        async def send(data: bytes) -> None:
            """Write all of `data`, waiting while the line's buffer is full (a flood fills it)."""
            async with writing:
                await write_all(memoryview(data))

        async def write_all(view: memoryview) -> None:
            while view:
                try:
                    view = view[os.write(master, view) :]
                except BlockingIOError:
                    writable: asyncio.Future[None] = loop.create_future()
                    loop.add_writer(master, _set_once, writable)
                    try:
                        await writable
                    finally:
                        loop.remove_writer(master)

        def readable() -> None:
            try:
                data = os.read(master, 4096)
            except BlockingIOError:
                return
            except OSError:
                return  # no controller has the slave open yet
            # Answers keep their order: each waits for the same delay.
            self._spawn(self._answer(data, framer, send), "pty.answer")

        loop.add_reader(master, readable)
        self._flood_on(send, 4096, "pty.flood")
        self._closers += [
            lambda: os.close(slave),
            lambda: os.close(master),
            lambda: loop.remove_reader(master),
        ]
        return os.ttyname(slave)

    async def _start_serial(self, path: str) -> None:
        from drivers.transport.serial_port import SerialTransport

        settings = self.sim.profile.transport.serial
        if settings is None:
            raise ArgumentError(f"{path}: {self.sim.profile.id} has no serial control; give tcp://HOST:PORT")
        port = SerialTransport(path, settings)
        try:
            await port.open()
        except TransportError as exc:
            raise ArgumentError(str(exc)) from exc
        framer = self.sim.new_framer()

        async def pump() -> None:
            while True:
                data = await port.read()
                await self._answer(data, framer, port.write)

        self._spawn(pump(), "serial.serve")
        self._flood_on(port.write, 4096, "serial.flood")
        self._closers.append(port.close)

    async def _start_tcp(self, host: str, port: int) -> int:
        writers: set[asyncio.StreamWriter] = set()

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            framer = self.sim.new_framer()
            writers.add(writer)
            login = self._login()
            if login is not None:
                writer.write(login.greeting)

            async def flood(data: bytes) -> None:
                writer.write(data)
                await writer.drain()

            self._flood_on(flood, 65536, "tcp.flood")
            try:
                while data := await self._receive(reader):
                    if login is not None:
                        done = login.done
                        data, answer, close = login.feed(data)
                        if close:
                            self.report(f"{self.sim.profile.id}: wrong digest: {answer!r}, hanging up")
                            writer.write(answer)
                            await writer.drain()
                            self.hung_up.set()
                            break
                        self.logins += login.done and not done
                    if data:
                        await self._answer(data, framer, _sender(writer.write))
            except (OSError, asyncio.CancelledError):
                pass  # the controller went away, or we are shutting down
            finally:
                writers.discard(writer)
                writer.close()

        def close_clients() -> None:
            for writer in list(writers):
                writer.close()

        try:
            server = await asyncio.start_server(client, host, port)
        except OSError as exc:
            raise ArgumentError(f"tcp://{host}:{port}: cannot listen: {exc}") from exc
        self._closers += [server.close, close_clients]
        return int(server.sockets[0].getsockname()[1])

    def _login(self) -> ServerLogin | None:
        """A new connection's login (a fresh random number each), for a profile that has one."""
        if self.sim.profile.transport.login != "pjlink":
            return None
        return ServerLogin(self.password, secrets.token_hex(4))

    async def _receive(self, reader: asyncio.StreamReader) -> bytes:
        """The controller's next bytes; b"" when it left or stayed silent past `idle_close_s`."""
        if not self.idle_close_s:
            return await reader.read(4096)
        try:
            async with asyncio.timeout(self.idle_close_s):
                return await reader.read(4096)
        except TimeoutError:
            self.idle_closed += 1
            self.hung_up.set()
            self.report(f"{self.sim.profile.id}: no command for {self.idle_close_s:g} s, hanging up")
            return b""

    async def _start_udp(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        server = self
        framers: dict[tuple[str, int], Framer] = {}

        class Datagrams(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.sock = transport

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                sock = self.sock
                send = _sender(lambda b: sock.sendto(b, addr))  # type: ignore[attr-defined]
                if addr not in framers:
                    server._flood_on(send, 1024, "udp.flood")
                framer = framers.setdefault(addr, server.sim.new_framer())
                server._spawn(server._udp(data, addr, framer, send), "udp.answer")

        try:
            sock, _ = await loop.create_datagram_endpoint(Datagrams, local_addr=(host, port))
        except OSError as exc:
            raise ArgumentError(f"udp://{host}:{port}: cannot bind: {exc}") from exc
        self._closers.append(sock.close)

    async def _udp(self, data: bytes, addr: tuple[str, int], framer: Framer, send: Send) -> None:
        if self.sim.profile.transport.udp_encapsulation != "visca-ip":
            await self._answer(data, framer, send)
            return
        try:
            msg = visca_ip.Datagram.parse(data)
        except ValueError:
            await send(bytes(visca_ip.Datagram(visca_ip.CONTROL_REPLY, 0, visca_ip.MESSAGE_ERROR)))
            return
        if msg.type == visca_ip.CONTROL:
            if msg.payload == visca_ip.RESET:
                self._last_udp.pop(addr, None)
                await send(bytes(visca_ip.Datagram(visca_ip.CONTROL_REPLY, msg.sequence, visca_ip.RESET)))
            return
        if msg.type not in (visca_ip.COMMAND, visca_ip.INQUIRY, visca_ip.SETTING):
            await send(bytes(visca_ip.Datagram(visca_ip.CONTROL_REPLY, msg.sequence, visca_ip.MESSAGE_ERROR)))
            return
        last = self._last_udp.get(addr)
        if last is not None and last[0] == msg.sequence:
            replies = last[1]  # a resend: answer again, do not act twice
            self.report(f"{self.sim.profile.id}: seq {msg.sequence} again: answered again, not run twice")
        else:
            # Inquiries sent as 0x0100 are answered too, as real cameras do.
            replies = self.sim.feed(msg.payload, framer)
            self._last_udp[addr] = (msg.sequence, replies)
            self.report(
                f"{self.sim.profile.id}: seq {msg.sequence} {msg.payload.hex(' ')} -> "
                f"{' | '.join(r.hex(' ') for r in replies) or '(no reply)'}"
            )
        if self.faults.delay_ms:
            await asyncio.sleep(self.faults.delay_ms / 1000)
        for reply in self.faults.apply(replies):
            await send(bytes(visca_ip.Datagram(visca_ip.REPLY, msg.sequence, reply)))
