"""The ``classroom-agent`` console script, run as a technician would run it."""

from __future__ import annotations

import asyncio
import json
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_SCRIPT = Path(sys.executable).with_name("classroom-agent")
AGENT = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "agent.cli"]
TIMEOUT = 30


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AGENT, *args], capture_output=True, text=True, timeout=TIMEOUT, check=False)


def json_lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


# ---- profiles -----------------------------------------------------------------------


def test_profiles_list_shows_sony_visca_with_confidence() -> None:
    result = run("profiles", "list")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0][:3] == ["ID", "KIND", "CONFIDENCE"]
    visca = next(row for row in rows if row[0] == "sony-visca")
    assert visca[1:3] == ["camera", "primary"]


def test_profiles_show_lists_goto_parameters_with_ranges() -> None:
    result = run("profiles", "show", "sony-visca")
    assert result.returncode == 0, result.stderr
    goto = next(line for line in result.stdout.splitlines() if line.strip().startswith("goto "))
    assert "pan=-2448..2448" in goto
    assert "tilt=-400..1200" in goto
    assert "pan_speed=1..24 (default 8)" in goto


def test_profiles_encode_goto() -> None:
    # VISCA absolute position: 8x 01 06 02 VV WW 0Y 0Y 0Y 0Y 0Z 0Z 0Z 0Z FF, speeds default 8;
    # pan -100 = 0xFF9C -> 0F 0F 09 0C, tilt 20 = 0x0014 -> 00 00 01 04.
    result = run("profiles", "encode", "sony-visca", "goto", "pan=-100", "tilt=20")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "81 01 06 02 08 08 0F 0F 09 0C 00 00 01 04 FF\n"


def test_profiles_decode_position_prints_one_json_object() -> None:
    result = run("profiles", "decode", "sony-visca", "get_position", "90 50 0F 0F 09 0C 00 00 01 04 FF")
    assert result.returncode == 0, result.stderr
    [reply] = json_lines(result.stdout)
    assert reply["kind"] == "value"
    assert (reply["pan"], reply["tilt"]) == (-100, 20)


def test_profiles_decode_ack_and_completion_prints_one_object() -> None:
    # One JSON object: the final reply, with every frame that came before it under "replies".
    result = run("profiles", "decode", "sony-visca", "goto", "90 41 FF 90 51 FF")
    assert result.returncode == 0, result.stderr
    [reply] = json_lines(result.stdout)
    assert (reply["kind"], reply["socket"]) == ("completion", 1)
    assert [(r["kind"], r["socket"]) for r in reply["replies"]] == [("ack", 1), ("completion", 1)]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["profiles", "show", "no-such-camera"], "'no-such-camera'"),
        (["profiles", "encode", "no-such-camera", "goto"], "'no-such-camera'"),
        (["profiles", "encode", "sony-visca", "jump"], "'jump'"),
        (["profiles", "encode", "sony-visca", "goto", "pan=5000", "tilt=0"], "pan=5000: out of range -2448..2448"),
        (["profiles", "decode", "sony-visca", "get_power", "90 5G FF"], "malformed hex"),
        (["profiles", "encode", "sony-visca", "goto", "pan", "tilt=0"], "'pan': expected NAME=VALUE"),
        (["profiles", "decode", "sony-visca", "get_power", "90 41 FF"], "90 41 FF is not a reply"),
        (["profiles", "decode", "sony-visca", "get_power", "90 50"], "not a complete reply"),
        (["device", "--profile", "sony-visca", "--at", "/nonexistent/tty", "get_power", "volume=3"], "'volume'"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_problem(args: list[str], names: str) -> None:
    result = run(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("classroom-agent: error: ")
    assert names in lines[0]


def test_device_on_missing_port_exits_1_naming_the_port() -> None:
    result = run("device", "--profile", "sony-visca", "--at", "/nonexistent/tty", "get_power")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "/nonexistent/tty" in result.stderr
    assert len(result.stderr.splitlines()) == 1


# ---- a simulated camera on a pty, driven by the CLI --------------------------------------


@pytest.fixture
def simulator() -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(
        [*AGENT, "simulate", "sony-visca", "--at", "pty"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
        assert ready, "simulator printed nothing"
        first = proc.stdout.readline()
        assert first.startswith("simulating sony-visca"), first
        path = first.split(" at ")[-1].strip()
        assert path.startswith("/dev/pts/"), first
        yield proc, path
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=TIMEOUT)


def device(path: str, *args: str) -> dict[str, object]:
    result = run("device", "--profile", "sony-visca", "--at", path, *args)
    assert result.returncode == 0, result.stderr
    [reply] = json_lines(result.stdout)
    return reply


def test_device_reads_power_from_simulated_camera(simulator: tuple[subprocess.Popen[str], str]) -> None:
    _, path = simulator
    assert device(path, "get_power") == {"command": "get_power", "kind": "value", "power": "on"}


def test_device_goto_moves_the_simulated_camera(simulator: tuple[subprocess.Popen[str], str]) -> None:
    _, path = simulator
    assert device(path, "goto", "pan=300", "tilt=-50")["kind"] == "completion"
    position = device(path, "get_position")
    assert (position["kind"], position["pan"], position["tilt"]) == ("value", 300, -50)


def test_simulator_exits_0_on_sigterm(simulator: tuple[subprocess.Popen[str], str]) -> None:
    proc, path = simulator
    assert device(path, "get_power")["power"] == "on"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0


# ---- record --layout directed ---------------------------------------------------------


def test_record_directed_follows_the_rules_given_on_the_command_line(tmp_path: Path) -> None:
    result = run(
        "record", "synthetic:teacher", "synthetic:slides", "--layout", "directed", "--seconds", "2",
        "--size", "320x180", "--fps", "10", "--out", str(tmp_path), "--hold", "0",
        "--director", "slides active=slides; always=teacher",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "recording.mp4") in result.stdout and "teacher: no gaps" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--layout directed needs --director RULES"),
        (["--director", "always"], "--director: got 'always', expected WHEN=SHOW"),
        (["--director", "always=ghost"], "--director: 'ghost' is not a source; the sources are teacher, slides"),
        (["--director", "sometimes=teacher"], "--director: got 'sometimes', expected \"always\" or"),
    ],
)
def test_record_directed_rejects_bad_rules_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    argv = ["record", "synthetic:teacher", "synthetic:slides", "--layout", "directed", "--seconds", "1"]
    result = run(*argv, "--out", str(tmp_path / "x"), *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "x").exists()


def test_record_audio_takes_what_the_recording_section_takes_and_names_the_choices(tmp_path: Path) -> None:
    argv = ["record", "synthetic:teacher", "--seconds", "1", "--out", str(tmp_path / "x"), "--audio", "teacher"]
    result = run(*argv)
    expected = "--audio: got 'teacher', expected silence, tone, none, mic, mic:DEVICE (only RTSP cameras carry sound)"
    assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "x").exists()


def test_demo_with_a_bad_broker_url_exits_2_naming_it(tmp_path: Path) -> None:
    result = run("demo", "--pause", "0", "--broker", "mqtt://", "--data", str(tmp_path), "--duration", "1")
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[-1] == "classroom-agent: error: broker URL 'mqtt://': no host"
    assert "Traceback" not in result.stderr


# ---- call -------------------------------------------------------------------------------


def _site_toml(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "site.toml"
    config.write_text(
        f'agent_id = "room-3"\nsite = "no1"\nroom = "r"\ndata_dir = "{tmp_path}"\n[http]\nport = {port}\n'
        '[[devices]]\nid = "panel"\nprofile = "samsung-mdc"\naddress = "sim"\n'
    )
    return config


async def _call(config: Path, *words: str) -> tuple[int | None, bytes, bytes]:
    process = await asyncio.create_subprocess_exec(
        *AGENT, "call", "--config", str(config), *words, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    return process.returncode, out, err


async def test_call_arguments_over_the_body_limit_are_rejected_by_name(tmp_path: Path) -> None:
    """The local API answers a 413 as a JSON rejection, so `call` prints it like any other reply."""
    from test_page import app_for, site

    from agent.web.api import serve
    from central.mosquitto import free_port

    port = free_port()
    runner = await serve(app_for(site(tmp_path)), "127.0.0.1", port)
    try:
        code, out, err = await _call(_site_toml(tmp_path, port), "agent.ping", "blob=" + "x" * 70_000)
        assert code == 2 and b"Traceback" not in err, err
        reply = json.loads(out)
        assert reply["status"] == "rejected" and "request body size 65536" in reply["error"]
        code, out, err = await _call(_site_toml(tmp_path, port), "agent.ping")
        assert code == 0 and json.loads(out)["status"] == "succeeded", (out, err)
    finally:
        await runner.cleanup()


async def test_call_says_what_answered_when_the_answer_is_not_json(tmp_path: Path) -> None:
    """Something else on the agent's address (a proxy, another program) answering an HTTP error in text."""
    from aiohttp import web

    from agent.web.api import serve
    from central.mosquitto import free_port

    async def gateway(request: web.Request) -> web.Response:
        return web.Response(status=502, text="upstream agent down\n<html>...</html>")

    app = web.Application()
    app.router.add_post("/api/commands", gateway)
    port = free_port()
    runner = await serve(app, "127.0.0.1", port)
    try:
        code, out, err = await _call(_site_toml(tmp_path, port), "agent.ping")
        assert code == 1 and out == b"" and b"Traceback" not in err, err
        assert len(err.splitlines()) == 1 and b"HTTP 502" in err and b"upstream agent down" in err, err
    finally:
        await runner.cleanup()
