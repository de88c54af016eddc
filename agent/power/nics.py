"""The classroom PC's network cards as the centre needs them to wake it: MAC, IPv4 address and LAN broadcast.

Only cards that are up, have a MAC and an IPv4 address are listed; on Linux only physical ones
(``/sys/class/net/<name>/device`` exists), so bridges, VPNs and containers' virtual cards stay out.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

from contract.power import MAX_NICS, NAME_CHARS, Nic
from drivers.errors import ArgumentError
from drivers.protocol.wol import normal_mac

log = logging.getLogger(__name__)

SYS_NET = Path("/sys/class/net")


def physical(name: str, sys_net: Path = SYS_NET) -> bool:
    """Whether a card is hardware: on Linux it has a ``device`` link in sysfs; elsewhere every card counts."""
    if not sys_net.is_dir():
        return True
    return (sys_net / name / "device").exists()


def detect_nics() -> tuple[Nic, ...]:
    """The PC's network cards now (psutil); none, logged, when the OS will not say."""
    try:
        up = {name: stats.isup for name, stats in psutil.net_if_stats().items()}
        return cards(psutil.net_if_addrs(), up, physical)
    except (OSError, RuntimeError) as exc:  # info must still go out: it only lacks the cards
        log.warning("cannot list the network cards: %s", exc)
        return ()


def cards(
    addrs: Mapping[str, Sequence[Any]], up: Mapping[str, bool], is_physical: Callable[[str], bool]
) -> tuple[Nic, ...]:
    """The cards among psutil's `addrs` (name -> addresses with family, address, netmask, broadcast)."""
    out: list[Nic] = []
    for name in sorted(addrs):
        if not up.get(name, False) or not is_physical(name):
            continue
        mac = next((m for m in (_mac(a) for a in addrs[name] if a.family == psutil.AF_LINK) if m), "")
        ipv4 = next((a for a in addrs[name] if a.family == _AF_INET and _lan(a.address)), None)
        if mac and ipv4 is not None:
            out.append(Nic(name[:NAME_CHARS], mac, ipv4.address, _broadcast(ipv4)))
    return tuple(out[:MAX_NICS])


_AF_INET = 2  # socket.AF_INET on every platform psutil supports


def _mac(addr: Any) -> str:
    try:
        return normal_mac(str(addr.address).lower())
    except ArgumentError:  # all zeros (a tunnel), or a form we do not know
        return ""


def _lan(text: str) -> bool:
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return not (address.is_loopback or address.is_link_local or address.is_unspecified)


def _broadcast(addr: Any) -> str:
    """The card's directed broadcast: as the OS reports it, else from the netmask ("" when neither is known)."""
    if addr.broadcast:
        with contextlib.suppress(ValueError):
            return str(ipaddress.IPv4Address(addr.broadcast))
    if not addr.netmask:
        return ""
    try:
        return str(ipaddress.IPv4Network(f"{addr.address}/{addr.netmask}", strict=False).broadcast_address)
    except ValueError:
        return ""
