"""``classroom-agent profiles`` and ``simulate`` for the Chinese classroom panels, zoom and broadcast."""

from __future__ import annotations

import select
import subprocess
from collections.abc import Iterator

import pytest
from test_cli import AGENT, TIMEOUT, json_lines, run  # the CLI test helpers (tests/agent is on sys.path)


def show(pid: str) -> list[str]:
    result = run("profiles", "show", pid)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_show_says_which_vocabulary_commands_have_no_published_code() -> None:
    lines = show("hitevision-ifp")
    assert "  not sourced (no code published, so no command): get_power, get_volume, mute_on, mute_off" in lines
    assert any(line.startswith("  source: Shenzhen Hitevision Technology") for line in lines)
    assert any(line.startswith("  notes: Key codes and serial settings are primary") for line in lines)
    assert any("set_brightness level=0..100  -> no reply  # backlight 0-100; secondary source" in x for x in lines)


def test_show_marks_the_optional_zoom_speed() -> None:
    zoom = next(line for line in show("sony-visca") if line.strip().startswith("zoom_tele "))
    assert "[speed=0..7]" in zoom


def test_show_marks_which_samsung_commands_may_be_broadcast() -> None:
    lines = show("samsung-mdc")
    power = next(line for line in lines if line.strip().startswith("power_on "))
    get = next(line for line in lines if line.strip().startswith("get_power "))
    assert "0xFE=all" in power and "may be broadcast: then no reply" in power
    assert "0xFE" not in get


def test_list_has_the_new_panels_with_their_confidence() -> None:
    rows = {row.split()[0]: row.split()[2] for row in run("profiles", "list").stdout.splitlines()[1:]}
    assert rows["hitevision-ifp"] == "secondary"
    assert rows["hisense-wr"] == "primary"


@pytest.mark.parametrize(
    ("args", "out"),
    [
        (["sony-visca", "zoom_tele"], "81 01 04 07 02 FF"),
        (["sony-visca", "zoom_wide", "speed=6"], "81 01 04 07 36 FF"),
        (["samsung-mdc", "power_on", "address=0xFE"], "AA 11 FE 01 01 11"),
        (["hisense-wr", "set_volume", "level=30"], "DD FF 01 04 A1 07 00 1E BB CC"),
    ],
)
def test_encode(args: list[str], out: str) -> None:
    result = run("profiles", "encode", *args)
    assert (result.returncode, result.stdout) == (0, out + "\n"), result.stderr


def test_a_broadcast_get_exits_2_saying_why() -> None:
    result = run("profiles", "encode", "samsung-mdc", "get_power", "address=0xFE")
    assert result.returncode == 2
    assert "get_power: address=254 (0xFE) addresses every device at once and none answers" in result.stderr


@pytest.fixture
def hisense_pty() -> Iterator[str]:
    proc = subprocess.Popen(
        [*AGENT, "simulate", "hisense-wr", "--at", "pty"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
        assert ready, "simulator printed nothing"
        first = proc.stdout.readline()
        assert first.startswith("simulating hisense-wr"), first
        yield first.split(" at ")[-1].strip()
    finally:
        proc.kill()
        proc.communicate(timeout=TIMEOUT)


def test_a_technician_drives_the_simulated_hisense_panel(hisense_pty: str) -> None:
    result = run("device", "--profile", "hisense-wr", "--at", hisense_pty, "set_volume", "level=42")
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout) == [{"command": "set_volume", "kind": "value", "volume": 42}]
    result = run("device", "--profile", "hisense-wr", "--at", hisense_pty, "power_off")
    assert json_lines(result.stdout) == [{"command": "power_off", "kind": "value", "power": "off"}]
