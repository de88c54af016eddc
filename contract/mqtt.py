"""The one module that imports aiomqtt: broker addresses, clients, and error translation.

An aiomqtt upgrade touches this file only.  Everything else builds clients with `make_client`
and catches `BrokerError`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

from contract.errors import AddressError, BrokerError

MqttError = aiomqtt.MqttError
Message = aiomqtt.Message
Will = aiomqtt.Will
Client = aiomqtt.Client

__all__ = [
    "BrokerAddress", "Client", "Message", "MqttError", "Will", "acknowledge", "make_client", "BrokerError",
    "stop_if_stopping", "stop_requests",
]  # fmt: skip


def _not_a_late_ack(record: logging.LogRecord) -> bool:
    """False for aiomqtt's report of a SUBACK/UNSUBACK whose call was cancelled (a stop while subscribing).

    aiomqtt logs it as an error with a traceback; after a stop it is expected, and says nothing.
    """
    return not str(record.msg).startswith("Unexpected message ID")


log = logging.getLogger(__name__)  # the clients' own log (aiomqtt's goes to "mqtt" otherwise)
log.addFilter(_not_a_late_ack)


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where and how to reach the broker: ``mqtt://`` or ``mqtts://`` (TLS)."""

    host: str
    port: int
    tls: bool = False
    username: str = ""
    password: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    @classmethod
    def parse(
        cls,
        url: str,
        *,
        username: str = "",
        password: str = "",
        ca_file: str = "",
        cert_file: str = "",
        key_file: str = "",
    ) -> BrokerAddress:
        """Read ``mqtt[s]://[user[:password]@]host[:port]``; AddressError names the problem."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise AddressError(f"broker URL {url!r}: expected mqtt://HOST:PORT or mqtts://HOST:PORT")
        if not parts.hostname:
            raise AddressError(f"broker URL {url!r}: no host")
        try:
            port = parts.port
        except ValueError:
            raise AddressError(f"broker URL {url!r}: bad port") from None
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=port or (8883 if tls else 1883),
            tls=tls,
            username=username or unquote(parts.username or ""),
            password=password or unquote(parts.password or ""),
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
        )

    @property
    def url(self) -> str:
        """The URL without credentials (safe to log)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext | None:
        """A client TLS context verifying the broker (with the given CA, if any)."""
        if not self.tls:
            return None
        for name in (self.ca_file, self.cert_file, self.key_file):
            if name and not Path(name).is_file():
                raise AddressError(f"TLS file {name!r} does not exist")
        context = ssl.create_default_context(cafile=self.ca_file or None)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file or None)
        return context


def make_client(
    address: BrokerAddress,
    identifier: str,
    *,
    will: Will | None = None,
    keepalive: int = 30,
    timeout: float = 10.0,
    max_queued_incoming: int = 0,
    clean_session: bool = True,
    manual_ack: bool = False,
) -> Client:
    """An aiomqtt client for `address` (not yet connected: use ``async with``).

    `clean_session=False` keeps the subscriber's session (and its QoS 1 messages) at the broker
    while it is away.  `manual_ack=True`: a QoS 1 message is acknowledged only by `acknowledge`,
    so the broker delivers it again (to the same persistent session) if the client dies first.
    """
    client = _StoppableClient(
        address.host,
        address.port,
        identifier=identifier,
        username=address.username or None,
        password=address.password or None,
        will=will,
        keepalive=keepalive,
        timeout=timeout,
        tls_context=address.tls_context(),
        max_queued_incoming_messages=max_queued_incoming or None,
        clean_session=clean_session,
        logger=log,
    )
    if manual_ack:
        _paho(client).manual_ack_set(True)
    return client


class _StoppableClient(aiomqtt.Client):
    """aiomqtt's client, safe to stop while it connects (a service stopped just as it starts).

    aiomqtt 2.5 leaves two traps when ``async with client`` is cancelled half-way: its disconnect
    callback reads the `_connected` future the cancellation cancelled (asyncio logs "Exception in
    callback ... CancelledError"), and a connection that completes after all reports its end in a
    `_disconnected` future nobody awaits ("Future exception was never retrieved").  Both private
    names are checked by tests/contract/test_mqtt_cancel.py, which fails if an upgrade moves them.
    And on Python 3.11 its wait_for swallows a stop that lands as a connect, publish or subscribe
    completes: the service would carry on (a TaskGroup cancels its tasks only once); here it is
    raised again.
    """

    async def __aenter__(self) -> _StoppableClient:
        """Connect; when stopped meanwhile, leave nothing behind that reports an error later."""
        before = stop_requests()
        try:
            await super().__aenter__()
        except asyncio.CancelledError:
            self._abandon()
            raise
        if stop_requests() > before:  # connected just as the stop came, which wait_for swallowed
            self._abandon()
            raise asyncio.CancelledError
        return self

    async def publish(self, *args: Any, **kwargs: Any) -> None:
        """Publish (aiomqtt's); a stop that landed as it completed is raised, not lost."""
        before = stop_requests()
        await super().publish(*args, **kwargs)
        stop_if_stopping(before)

    async def subscribe(self, *args: Any, **kwargs: Any) -> Any:
        """Subscribe (aiomqtt's); a stop that landed as it completed is raised, not lost."""
        before = stop_requests()
        granted = await super().subscribe(*args, **kwargs)
        stop_if_stopping(before)
        return granted

    def _abandon(self) -> None:
        """A connection given up on: its callbacks, which may still fire, must not log errors."""
        if self._connected.cancelled():
            self._connected = asyncio.get_running_loop().create_future()
        self._disconnected.add_done_callback(_read_outcome)


def stop_requests() -> int:
    """How many stops (cancellations) the current task has been asked for and not taken back."""
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


def stop_if_stopping(before: int = 0) -> None:
    """Raise the CancelledError that Python 3.11's asyncio.wait_for (inside aiomqtt) may have lost.

    A stop that lands just as a connect, subscribe or publish completes is swallowed there, yet
    the task still counts it: call this after such calls, before a loop that would otherwise go
    on for ever. `before` is `stop_requests()` from before the calls: Python 3.11's TaskGroup
    leaves one request counted after a task of its failed, without any stop.
    """
    if stop_requests() > before:
        raise asyncio.CancelledError


def _read_outcome(future: asyncio.Future[None]) -> None:
    """Mark a future's outcome as read (an abandoned connection's end concerns nobody)."""
    if not future.cancelled():
        future.exception()


def acknowledge(client: Client, message: Message) -> None:
    """Send the PUBACK of `message` (a client made with ``manual_ack=True``); BrokerError if it cannot go."""
    if message.qos == 0:
        return
    try:
        code = _paho(client).ack(message.mid, message.qos)
    except (OSError, ValueError) as exc:  # the socket went away under paho
        raise BrokerError(f"acknowledging message {message.mid}: {exc}") from exc
    if code != MQTTErrorCode.MQTT_ERR_SUCCESS:
        raise BrokerError(f"acknowledging message {message.mid}: {paho.error_string(code)}")


def _paho(client: Client) -> paho.Client:
    """The paho client under aiomqtt's: aiomqtt 2.5 exposes neither `manual_ack` nor `ack`.

    A private attribute (`_client`), read here only; tests/contract/test_manual_ack.py fails loudly
    when an aiomqtt upgrade moves it.
    """
    inner = getattr(client, "_client", None)
    if not isinstance(inner, paho.Client):
        raise BrokerError(
            f"aiomqtt {_version()} no longer keeps its paho client in `_client`: manual acks need updating"
        )
    return inner


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aiomqtt")
    except PackageNotFoundError:
        return "?"
