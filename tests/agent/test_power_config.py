"""``[power]`` in the site config, the wake times a timetable gives, the cards a PC reports, and re-publishing."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import psutil
import pytest

from agent.config.power import PowerConfig, default_commands, render
from agent.config.site import parse_config
from agent.errors import ConfigError
from agent.power.nics import cards
from agent.power.service import PowerService
from agent.power.wake import wake_times
from agent.timetable.parse import parse_timetable
from contract import Nic

CST = timezone(timedelta(hours=8))


def site(tmp: Path, power: dict[str, Any]) -> dict[str, Any]:
    return {"agent_id": "room-3", "site": "no1", "room": "高一(3)班", "data_dir": str(tmp), "power": power}


def test_power_keys_are_read_and_macs_normalised(tmp_path: Path) -> None:
    power = {
        "shutdown_command": ["/usr/local/bin/off", "{delay_s}"],
        "reboot_command": ["systemctl", "reboot"],
        "command_timeout_s": 12,
        "wake_before_min": 25,
        "mac": ["00-1B-21-A4-C3-F0", "001b21a4c3f0", "00:1b:21:a4:c3:f1"],
        "broadcast": "192.168.10.255",
    }
    config = parse_config(site(tmp_path, power)).power
    assert config == PowerConfig(
        ("/usr/local/bin/off", "{delay_s}"), ("systemctl", "reboot"), 12.0, 25,
        ("00:1b:21:a4:c3:f0", "00:1b:21:a4:c3:f1"), "192.168.10.255",
    )  # fmt: skip
    assert parse_config(site(tmp_path, {"mac": "00:1b:21:a4:c3:f0"})).power.macs == ("00:1b:21:a4:c3:f0",)
    plain = parse_config({k: v for k, v in site(tmp_path, {}).items() if k != "power"}).power
    assert plain.wake_before_min is None and plain.macs == () and plain.command_timeout_s == 30.0
    assert (plain.shutdown_command, plain.reboot_command) == default_commands()


def test_the_os_commands_by_default() -> None:
    assert default_commands("linux") == (("shutdown", "-h", "+{delay_min}"), ("shutdown", "-r", "+{delay_min}"))
    assert default_commands("win32") == (("shutdown", "/s", "/t", "{delay_s}"), ("shutdown", "/r", "/t", "{delay_s}"))
    assert [render(("shutdown", "-h", "+{delay_min}"), s)[2] for s in (0, 1, 60, 61, 3600)] == [
        "+0", "+1", "+1", "+2", "+60",
    ]  # fmt: skip
    assert render(("shutdown", "/s", "/t", "{delay_s}"), 45) == ["shutdown", "/s", "/t", "45"]


def test_every_power_problem_is_reported_at_once(tmp_path: Path) -> None:
    power = {
        "shutdown_command": "shutdown -h now",
        "reboot_command": [],
        "command_timeout_s": 0,
        "wake_before_min": 721,
        "mac": ["00:1b:21:a4:c3:f0", "01:00:5e:00:00:01", "nope"],
        "broadcast": "example.com",
        "sleep": True,
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(site(tmp_path, power))
    text = str(caught.value)
    for expected in (
        "power.shutdown_command: got 'shutdown -h now', expected a list of the program and its arguments",
        "power.reboot_command: got []",
        "power.command_timeout_s: got 0, expected a positive number",
        "power.wake_before_min: got 721, expected minutes 0..720",
        "power.mac[1]: got '01:00:5e:00:00:01': a group (multicast/broadcast) address",
        "power.mac[2]: got 'nope', expected a MAC address like aa:bb:cc:dd:ee:ff",
        "power.broadcast: got 'example.com', expected an IPv4 address",
        "power.sleep: unknown key",
    ):
        assert expected in text, text
    assert "8 problem(s)" in text
    alone = pytest.raises(ConfigError, match=r"power.broadcast: only with mac")
    with alone:
        parse_config(site(tmp_path, {"broadcast": "192.168.1.255"}))


def test_wake_times_are_before_each_school_days_first_lesson() -> None:
    timetable = parse_timetable(
        {
            "timezone": "+08:00",
            "skip_dates": ["2026-03-04"],
            "makeup_days": {"2026-03-08": 2},  # a Sunday that follows Tuesday's lessons (调休)
            "lessons": [
                {"day": [1, 2, 3, 4, 5], "start": "08:00", "end": "08:45", "name": "语文"},
                {"day": 2, "start": "07:30", "end": "07:50", "name": "早读"},
                {"dates": ["2026-03-07"], "start": "09:00", "end": "09:45", "name": "补课"},
            ],
        }
    )
    now = datetime(2026, 3, 2, 7, 50, tzinfo=CST)  # Monday, just after Monday's wake time
    times = wake_times(timetable, now, 20, horizon_days=7)
    assert [t.astimezone(CST).strftime("%a %d %H:%M") for t in times] == [
        "Tue 03 07:10", "Thu 05 07:40", "Fri 06 07:40", "Sat 07 08:40", "Sun 08 07:10", "Mon 09 07:40",
    ]  # fmt: skip
    assert wake_times(timetable, now.astimezone(UTC), 20, horizon_days=7) == times
    assert wake_times(timetable, datetime(2026, 3, 2, 7, 39, tzinfo=CST), 20, horizon_days=0)[0].hour == 7


class Addr(NamedTuple):
    family: int
    address: str
    netmask: str | None = None
    broadcast: str | None = None


def test_only_physical_cards_that_are_up_with_a_mac_and_a_lan_address_are_reported() -> None:
    link = psutil.AF_LINK
    addrs = {
        "lo": [Addr(link, "00:00:00:00:00:00"), Addr(socket.AF_INET, "127.0.0.1", "255.0.0.0")],
        "eth0": [
            Addr(link, "00:1B:21:A4:C3:F0"),
            Addr(socket.AF_INET, "192.168.10.23", "255.255.255.0", "192.168.10.255"),
        ],
        "以太网 2": [Addr(link, "00-1B-21-A4-C3-F1"), Addr(socket.AF_INET, "10.8.3.4", "255.255.0.0")],
        "wlan0": [Addr(link, "02:11:22:33:44:55"), Addr(socket.AF_INET, "10.9.0.4", "255.255.255.0")],  # down
        "docker0": [Addr(link, "02:42:ac:11:00:01"), Addr(socket.AF_INET, "172.17.0.1", "255.255.0.0")],
        "eth1": [Addr(link, "00:1b:21:a4:c3:f2"), Addr(socket.AF_INET, "169.254.7.7", "255.255.0.0")],
        "eth2": [Addr(link, "00:1b:21:a4:c3:f3")],  # no IPv4 address
    }
    up = dict.fromkeys(addrs, True) | {"wlan0": False}
    found = cards(addrs, up, lambda name: name != "docker0")
    assert found == (
        Nic("eth0", "00:1b:21:a4:c3:f0", "192.168.10.23", "192.168.10.255"),
        Nic("以太网 2", "00:1b:21:a4:c3:f1", "10.8.3.4", "10.8.255.255"),  # computed from the netmask
    )


async def test_info_is_re_published_when_wake_times_or_cards_change() -> None:
    lesson = {"day": [1, 2, 3, 4, 5], "start": "08:00", "end": "08:45", "name": "语文"}
    timetable = parse_timetable({"lessons": [lesson]})
    now = [datetime(2026, 3, 2, 7, 0, tzinfo=CST)]
    nics = [(Nic("eth0", "00:1b:21:a4:c3:f0", "192.168.10.23", "192.168.10.255"),)]
    published: list[tuple[tuple[Nic, ...], tuple[str, ...]]] = []
    connected = [True]

    async def publish() -> None:  # the link: builds info, which reports the cards and wake times
        published.append(service.report())

    config = PowerConfig(wake_before_min=15)
    service = PowerService(
        config, lambda: timetable, publish, lambda: connected[0], clock=lambda: now[0], detect=lambda: nics[0]
    )
    assert await service.refresh() is True and published[-1][1][0] == "2026-03-01T23:45:00Z"
    assert await service.refresh() is False  # nothing changed: nothing sent
    now[0] = datetime(2026, 3, 2, 7, 46, tzinfo=CST)  # Monday's wake time has passed
    assert await service.refresh() is True and published[-1][1][0] == "2026-03-02T23:45:00Z"
    nics[0] = (Nic("eth0", "00:1b:21:a4:c3:f0", "192.168.11.9", "192.168.11.255"),)
    connected[0] = False
    assert await service.refresh() is False and len(published) == 2  # offline: the next connect carries it
    connected[0] = True
    assert await service.refresh() is True and published[-1][0][0].address == "192.168.11.9"
    assert service.broadcasts() == ["192.168.11.255"]
    nics[0] = ()
    assert service.broadcasts() == ["255.255.255.255"]
    without = PowerService(PowerConfig(), lambda: timetable, publish, lambda: True, detect=lambda: ())
    assert without.wake() == ()  # no [power] wake_before_min: the centre is not asked to wake this PC
