"""What ``info`` says about waking the PC: its network cards (MAC, IPv4, directed broadcast) and wake times.

A sleeping PC cannot wake itself, so another agent of its site sends the Wake-on-LAN packet; the
centre needs the sleeping PC's MAC addresses and LAN broadcast for that, and the instants its
timetable wants it awake (``wake``), all of which stay retained in ``info`` while the PC is off.
Both lists are bounded; a card with a MAC no card can have, or an address that is not IPv4,
breaks the contract (PayloadError naming the key).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contract.errors import PayloadError
from contract.timestamps import parse_iso
from contract.wire import get
from drivers.errors import ArgumentError
from drivers.protocol.wol import normal_mac, parse_broadcast

MAX_NICS = 8
MAX_WAKES = 16
NAME_CHARS = 128


@dataclass(frozen=True, slots=True)
class Nic:
    """One network card of the agent's PC: its name, MAC, IPv4 address and that LAN's broadcast ("" if unknown)."""

    name: str
    mac: str
    address: str = ""
    broadcast: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Payload fields."""
        return {"name": self.name, "mac": self.mac, "address": self.address, "broadcast": self.broadcast}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Nic:
        """Parse; PayloadError names the bad key.  The MAC comes back as ``aa:bb:cc:dd:ee:ff``."""
        name = get(data, "name", str, "")
        if len(name) > NAME_CHARS:
            raise PayloadError(f"name: {len(name)} characters, expected at most {NAME_CHARS}")
        address, broadcast = (_ipv4(data, key) for key in ("address", "broadcast"))
        try:
            mac = normal_mac(get(data, "mac", str))
        except ArgumentError as exc:
            raise PayloadError(f"mac: {exc}") from None
        return cls(name, mac, address, broadcast)


def _ipv4(data: Mapping[str, Any], key: str) -> str:
    value = get(data, key, str, "")
    if not value:
        return ""
    try:
        return parse_broadcast(value)
    except ArgumentError as exc:
        raise PayloadError(f"{key}: {exc}") from None


def nics_from(data: Mapping[str, Any]) -> tuple[Nic, ...]:
    """``info.nics``: at most MAX_NICS cards."""
    items = get(data, "nics", list, [])
    if len(items) > MAX_NICS:
        raise PayloadError(f"nics: {len(items)} cards, expected at most {MAX_NICS}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise PayloadError(f"nics[{i}]: expected an object")
        try:
            out.append(Nic.from_dict(item))
        except PayloadError as exc:
            raise PayloadError(f"nics[{i}].{exc}") from None
    return tuple(out)


def wakes_from(data: Mapping[str, Any]) -> tuple[str, ...]:
    """``info.wake``: at most MAX_WAKES contract timestamps, when the PC should be woken."""
    items = get(data, "wake", list, [])
    if len(items) > MAX_WAKES:
        raise PayloadError(f"wake: {len(items)} times, expected at most {MAX_WAKES}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise PayloadError(f"wake[{i}]: got {str(item)[:40]}, expected a timestamp such as 2026-11-22T08:00:00Z")
        try:
            parse_iso(item)
        except PayloadError as exc:
            raise PayloadError(f"wake[{i}]: {exc}") from None
        out.append(item)
    return tuple(out)
