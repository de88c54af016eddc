"""The one module that imports aiomqtt: broker addresses, clients, and error translation.

An aiomqtt upgrade touches this file only.  Everything else builds clients with `make_client`
and catches `BrokerError`.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path
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
    "Batches",
    "BrokerAddress",
    "Client",
    "Message",
    "MqttError",
    "Will",
    "acknowledge",
    "make_client",
    "BrokerError",
]


class Batches:
    """A client's incoming messages a batch at a time: one wait per batch instead of one per message.

    aiomqtt's ``client.messages`` creates a task and an ``asyncio.wait`` for every message, even
    when messages are already queued: the collector's ceiling (docs/benchmarks.md).  aiomqtt takes
    the class of its incoming queue as a documented constructor argument (``queue_type``); this
    object supplies one that keeps a handle on the queue, waits for the first message of a batch
    through ``client.messages`` (which also notices a disconnect) and takes the rest that are
    already queued without waiting.  Pass it to `make_client` (``batches=``).
    """

    def __init__(self, limit: int = 1000) -> None:
        """`limit`: the most messages one batch takes."""
        self._limit = limit
        self._queue: asyncio.Queue[Message] | None = None

    def queue_type(self) -> type[asyncio.Queue[Message]]:
        """The queue class to give aiomqtt: each instance made is the one this object reads."""
        owner = self

        class Inbox(asyncio.Queue[Message]):
            def __init__(self, maxsize: int = 0) -> None:
                super().__init__(maxsize)
                owner._queue = self

        return Inbox

    async def next(self, client: Client) -> list[Message]:
        """The next messages: at least one (waiting for it), at most `limit`; MqttError on a disconnect."""
        first = await anext(aiter(client.messages))
        batch, queue = [first], self._queue
        while queue is not None and len(batch) < self._limit and not queue.empty():
            batch.append(queue.get_nowait())
        return batch


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
    batches: Batches | None = None,
) -> Client:
    """An aiomqtt client for `address` (not yet connected: use ``async with``).

    `clean_session=False` keeps the subscriber's session (and its QoS 1 messages) at the broker
    while it is away.  `manual_ack=True`: a QoS 1 message is acknowledged only by `acknowledge`,
    so the broker delivers it again (to the same persistent session) if the client dies first.
    `batches`: read the incoming messages through it (`Batches.next`) rather than one by one.
    """
    client = Client(
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
        queue_type=batches.queue_type() if batches is not None else None,
    )
    if manual_ack:
        _paho(client).manual_ack_set(True)
    return client


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
