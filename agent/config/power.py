"""The site config's ``[power]``: how this PC is shut down and restarted, and how it is woken.

``shutdown_command`` / ``reboot_command`` are argument lists run without a shell; ``{delay_s}``
in an argument becomes the requested delay in seconds and ``{delay_min}`` the same rounded up to
whole minutes (Linux's ``shutdown`` counts minutes).  ``wake_before_min`` asks the centre to wake
the PC that many minutes before each day's first lesson; ``mac`` / ``broadcast`` replace the
network cards the agent finds by itself in what it reports for waking.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.timetable.model import MAX_POWER_MIN
from drivers.checks import Checks, at, join, shown
from drivers.errors import ArgumentError
from drivers.protocol.wol import normal_mac, parse_broadcast

MAX_MACS = 8
DELAY_S = "{delay_s}"
DELAY_MIN = "{delay_min}"


def default_commands(platform: str = sys.platform) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The OS's own shutdown and reboot commands: Windows ``shutdown /s /t N``, elsewhere ``shutdown -h +MIN``."""
    if platform.startswith("win"):
        return ("shutdown", "/s", "/t", DELAY_S), ("shutdown", "/r", "/t", DELAY_S)
    return ("shutdown", "-h", f"+{DELAY_MIN}"), ("shutdown", "-r", f"+{DELAY_MIN}")


@dataclass(frozen=True, slots=True)
class PowerConfig:
    """``[power]``: the OS commands that power the PC off or restart it, and what the centre needs to wake it."""

    shutdown_command: tuple[str, ...] = field(default_factory=lambda: default_commands()[0])
    reboot_command: tuple[str, ...] = field(default_factory=lambda: default_commands()[1])
    command_timeout_s: float = 30.0
    wake_before_min: int | None = None  # None: the centre is not asked to wake this PC
    macs: tuple[str, ...] = ()  # reported instead of the detected cards (normalised aa:bb:cc:dd:ee:ff)
    broadcast: str = ""  # reported with `macs`: their LAN's broadcast address


_KEYS = {"shutdown_command", "reboot_command", "command_timeout_s", "wake_before_min", "mac", "broadcast"}


def parse_power(check: Checks, data: Mapping[str, Any]) -> PowerConfig:
    """``[power]`` (every key optional); problems join the others."""
    section = check.section(data, "power")
    check.known(section, "power", _KEYS)
    shutdown, reboot = default_commands()
    wake = None
    if "wake_before_min" in section:
        expected = f"minutes 0..{MAX_POWER_MIN}"
        wake = check.integer(section, "wake_before_min", "power", 0, low=0, high=MAX_POWER_MIN, expected=expected)
    macs = _macs(check, section)
    broadcast = ""
    if "broadcast" in section:
        broadcast = _broadcast(check, section)
        if not macs and "mac" not in section:
            check.add("power.broadcast", "only with mac (the broadcast address of that card's LAN)")
    return PowerConfig(
        shutdown_command=_command(check, section, "shutdown_command", shutdown),
        reboot_command=_command(check, section, "reboot_command", reboot),
        command_timeout_s=check.positive(section, "command_timeout_s", "power", 30.0),
        wake_before_min=wake,
        macs=macs,
        broadcast=broadcast,
    )


def _command(check: Checks, section: Mapping[str, Any], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if key not in section:
        return default
    value = section[key]
    if not isinstance(value, list) or not value or not all(isinstance(a, str) for a in value) or not value[0]:
        expected = 'a list of the program and its arguments, e.g. ["shutdown", "-h", "+{delay_min}"]'
        check.add(join("power", key), f"got {shown(value)}, expected {expected}")
        return default
    return tuple(value)


def _macs(check: Checks, section: Mapping[str, Any]) -> tuple[str, ...]:
    value = section.get("mac", [])
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or len(items) > MAX_MACS:
        check.add("power.mac", f"got {shown(value)}, expected a MAC address or a list of at most {MAX_MACS}")
        return ()
    out: list[str] = []
    for i, item in enumerate(items):
        try:
            mac = normal_mac(item)
        except ArgumentError as exc:
            check.add(at("power.mac", i) if isinstance(value, list) else "power.mac", str(exc))
            continue
        if mac not in out:
            out.append(mac)
    return tuple(out)


def _broadcast(check: Checks, section: Mapping[str, Any]) -> str:
    try:
        return parse_broadcast(section["broadcast"])
    except ArgumentError as exc:
        check.add("power.broadcast", str(exc))
        return ""


def render(command: tuple[str, ...], delay_s: int) -> list[str]:
    """The argument list with ``{delay_s}`` and ``{delay_min}`` (rounded up) filled in."""
    minutes = str(-(-delay_s // 60))
    return [a.replace(DELAY_S, str(delay_s)).replace(DELAY_MIN, minutes) for a in command]
