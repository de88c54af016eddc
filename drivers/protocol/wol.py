"""Wake-on-LAN, sans-IO: the MAC address forms we accept and the magic packet.

A magic packet is 6 bytes of 0xFF followed by the target network card's 6-byte MAC address
16 times (102 bytes), sent as one UDP datagram (port 9 by convention, 7 also seen) to a
broadcast address of the target's LAN.  A card armed for Wake-on-LAN powers its PC on when it
sees that pattern anywhere in a frame.
"""

from __future__ import annotations

import ipaddress
import re

from drivers.errors import ArgumentError

WOL_PORT = 9
PACKET_BYTES = 6 + 16 * 6
_FORMS = (
    re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}"),
    re.compile(r"[0-9a-f]{2}(?:-[0-9a-f]{2}){5}"),
    re.compile(r"[0-9a-f]{12}"),
)


def parse_mac(text: object) -> bytes:
    """The 6 bytes of ``aa:bb:cc:dd:ee:ff``, ``aa-bb-cc-dd-ee-ff`` or ``aabbccddeeff`` (any case).

    ArgumentError for anything else, and for addresses no network card has: all zeros, or a
    group (multicast/broadcast) address.
    """
    if not isinstance(text, str) or len(text) > 17 or not any(f.fullmatch(text.lower()) for f in _FORMS):
        forms = "aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabbccddeeff"
        raise ArgumentError(f"got {repr(text)[:40]}, expected a MAC address like {forms}")
    mac = bytes.fromhex(text.replace(":", "").replace("-", ""))
    if mac == bytes(6):
        raise ArgumentError(f"got {text!r}: all zeros is no network card's address")
    if mac[0] & 1:
        raise ArgumentError(f"got {text!r}: a group (multicast/broadcast) address, expected a network card's")
    return mac


def format_mac(mac: bytes) -> str:
    """``aa:bb:cc:dd:ee:ff``: the one form the contract and the logs use."""
    return mac.hex(":")


def normal_mac(text: object) -> str:
    """`text` as ``aa:bb:cc:dd:ee:ff``; ArgumentError when it is not a network card's MAC."""
    return format_mac(parse_mac(text))


def magic_packet(mac: bytes) -> bytes:
    """The 102-byte payload that wakes the card with this MAC."""
    if len(mac) != 6:
        raise ArgumentError(f"a MAC address has 6 bytes, got {len(mac)}")
    return b"\xff" * 6 + mac * 16


def parse_broadcast(text: object) -> str:
    """An IPv4 address to send a magic packet to (a directed broadcast, 255.255.255.255 or a host).

    ArgumentError for host names, IPv6, 0.0.0.0 and multicast addresses.
    """
    if not isinstance(text, str) or len(text) > 15:
        raise ArgumentError(f"got {repr(text)[:40]}, expected an IPv4 address such as 192.168.1.255")
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise ArgumentError(f"got {text!r}, expected an IPv4 address such as 192.168.1.255") from None
    if address.is_unspecified or address.is_multicast:
        raise ArgumentError(f"got {text!r}, expected a broadcast or host IPv4 address (not 0.0.0.0 or multicast)")
    return str(address)
