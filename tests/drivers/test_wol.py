"""Wake-on-LAN: the MAC forms accepted, the magic packet byte for byte, and a real datagram on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from drivers.errors import ArgumentError, TransportError
from drivers.protocol.wol import PACKET_BYTES, format_mac, magic_packet, normal_mac, parse_broadcast, parse_mac
from drivers.transport.datagram import send_datagram

MAC = bytes.fromhex("001b21a4c3f0")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A real UDP socket on loopback: what a sleeping card would see on its LAN."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock
    sock.close()


def test_the_magic_packet_is_six_ff_then_the_mac_sixteen_times() -> None:
    packet = magic_packet(MAC)
    assert len(packet) == PACKET_BYTES == 102
    assert packet[:6] == b"\xff\xff\xff\xff\xff\xff"
    assert [packet[6 + 6 * i : 12 + 6 * i] for i in range(16)] == [b"\x00\x1b\x21\xa4\xc3\xf0"] * 16
    with pytest.raises(ArgumentError):
        magic_packet(b"\x00\x1b\x21")


@pytest.mark.parametrize("text", ["00:1b:21:a4:c3:f0", "00-1B-21-A4-C3-F0", "001b21a4c3f0", "001B21A4C3F0"])
def test_the_three_written_forms_of_a_mac_in_any_case(text: str) -> None:
    assert parse_mac(text) == MAC
    assert normal_mac(text) == format_mac(MAC) == "00:1b:21:a4:c3:f0"


@pytest.mark.parametrize(
    "text",
    [
        "", "00:1b:21:a4:c3", "00:1b:21:a4:c3:f0:01", "00:1b-21:a4:c3:f0", "001b.21a4.c3f0", "00:1b:21:a4:c3:fg",
        " 00:1b:21:a4:c3:f0", "00:1b:21:a4:c3:f0\n", "0:1b:21:a4:c3:f0", "001b21a4c3f", "001b21a4c3f0" * 1000,
        "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:fb", "００:1b:21:a4:c3:f0",
        None, 42, ["00:1b:21:a4:c3:f0"],
    ],
)  # fmt: skip
def test_anything_else_is_refused_saying_what_is_expected(text: object) -> None:
    with pytest.raises(ArgumentError, match=r"MAC|network card"):
        parse_mac(text)


def test_broadcast_must_be_an_ipv4_address_to_send_to() -> None:
    for good in ("192.168.1.255", "255.255.255.255", "10.20.255.255", "127.0.0.1"):
        assert parse_broadcast(good) == good
    bad_ones = ("::1", "ff02::1", "example.com", "0.0.0.0", "224.0.0.1", "192.168.1.256", "192.168.1", " 1.2.3.4", 7)
    for bad in bad_ones:
        with pytest.raises(ArgumentError, match="IPv4"):
            parse_broadcast(bad)


async def test_a_datagram_arrives_byte_for_byte(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    await send_datagram(magic_packet(MAC), "127.0.0.1", port)
    data, sender = await asyncio.to_thread(listener.recvfrom, 2048)
    assert data == b"\xff" * 6 + MAC * 16 and sender[0] == "127.0.0.1"


async def test_a_send_the_os_refuses_is_a_clear_error_naming_where() -> None:
    with pytest.raises(TransportError, match=r"udp://127\.0\.0\.1:0: cannot send"):
        await send_datagram(magic_packet(MAC), "127.0.0.1", 0)
