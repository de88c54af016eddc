"""Live broadcasts (直播课堂) from a whole agent to a real nginx-rtmp on loopback, serving RTMP and HLS.

The agent records and broadcasts synthetic cameras; the checks are what a platform and its viewers
see: ffprobe reads the live stream back from nginx, ffmpeg plays the HLS playlist nginx writes,
the push comes back after nginx is killed and restarted, a wrong URL fails saying why, a recording
and a broadcast of the same picture run on one encoder, and the stream key appears in no log
line, reply, status, telemetry or event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest
from nginx_rtmp import LocalNginx, missing
from test_service import ROOT, SITE, command, listen, running  # the agent test helpers (tests/agent is on sys.path)

from agent.config.site import load_config
from agent.service import Agent
from central.mosquitto import LocalBroker, free_port

pytestmark = pytest.mark.skipif(bool(missing()) or shutil.which("ffprobe") is None, reason=missing() or "no ffprobe")

KEY = "s3cr3t-Stream-Key-7731"
SIZE, FPS = (640, 360), 15


def write_config(tmp: Path, broker_url: str, targets: dict[str, str], *, timetable: str = "", extra: str = "") -> Path:
    blocks = "\n".join(f'[broadcast.targets.{name}]\nurl = "{url}"' for name, url in targets.items())
    path = tmp / "site.toml"
    path.write_text(
        f"""
agent_id = "room-7"
site = "{SITE}"
room = "直播教室"
data_dir = "{tmp / "var"}"
[broker]
url = "{broker_url}"
[intervals]
telemetry_s = 0.5
[http]
port = {free_port()}
[sources]
teacher = "synthetic:teacher"
board = "synthetic:board"
[recording]
dir = "{tmp / "recordings"}"
layout = "pip"
sources = ["teacher", "board"]
size = "{SIZE[0]}x{SIZE[1]}"
fps = {FPS}
fragment_s = 1
bitrate_mbps = 1
planned_minutes = 5
disk_min_free_gb = 0
audio = "tone"
[broadcast]
bitrate_kbps = 800
profile = "main"
connect_s = 3
stall_s = 5
{extra}
{blocks}
{timetable}
"""
    )
    return path


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[LocalNginx]:
    with LocalNginx(tmp_path / "nginx") as running_nginx:
        yield running_nginx


def ffprobe(url: str) -> dict[str, dict[str, Any]]:
    """The live stream's streams by codec type, as ffprobe reads them from nginx."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-rw_timeout", "15000000", "-show_streams", "-of", "json", url],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return {s["codec_type"]: s for s in json.loads(out.stdout)["streams"]}


def playlist_seconds(path: Path) -> float:
    if not path.exists():
        return 0.0
    return sum(float(x) for x in re.findall(r"#EXTINF:([\d.]+)", path.read_text()))


def encoder_threads() -> list[str]:
    """The programme encoders running in this process (each is one thread named ``*.encode``)."""
    return [t.name for t in threading.enumerate() if t.name.endswith(".encode")]


def pushers() -> list[psutil.Process]:
    """Push processes still running under this test process."""
    return [p for p in psutil.Process().children(recursive=True) if "streaming.pusher" in " ".join(p.cmdline())]


async def until(check: Any, timeout: float = 30.0) -> Any:
    async with asyncio.timeout(timeout):
        while not (found := check()):
            await asyncio.sleep(0.1)
    return found


async def call(client: Any, inbox: Any, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """A command over MQTT, as the centre sends it; its reply."""
    payload = command(name, args)
    ident = json.loads(payload)["id"]
    await client.publish(f"{ROOT}/cmd/{name}", payload, qos=1)
    replies = await inbox.until(lambda: [r for r in inbox.on(f"{ROOT}/reply") if r["id"] == ident], timeout=90)
    return dict(replies[0])


def events(inbox: Any, kind: str, action: str) -> list[dict[str, Any]]:
    return [e for e in inbox.on(f"{ROOT}/event") if e["type"] == kind and e["action"] == action]


async def test_a_recorded_lesson_broadcast_to_nginx_is_encoded_once_and_plays_over_rtmp_and_hls(
    tmp_path: Path, broker: LocalBroker, nginx: LocalNginx, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = load_config(write_config(tmp_path, broker.url, {"platform": nginx.url(KEY)}))
    async with listen(broker) as (inbox, client), running(config) as agent:
        recording = await call(client, inbox, "record.start", {"lesson": "数学"})
        assert recording["status"] == "succeeded", recording
        started = await call(client, inbox, "broadcast.start", {"target": "platform"})
        assert started["status"] == "succeeded", started
        assert started["result"]["url"] == f"rtmp://127.0.0.1:{nginx.rtmp_port}/live/***"

        # One encoder for both: the broadcast joined the recording's programme.
        assert started["result"]["encoder"] == agent.recording.telemetry()["encoder"]
        assert started["result"]["shared"] == ["recording"]
        programmes = agent.status()["programmes"]
        assert [p["users"] for p in programmes] == [["broadcast", "recording"]], programmes
        assert len(encoder_threads()) == 1, encoder_threads()

        # A viewer of nginx's RTMP: H.264 + AAC at the configured size and rate.
        streams = await asyncio.to_thread(ffprobe, nginx.url(KEY))
        assert streams["video"]["codec_name"] == "h264" and streams["video"]["profile"] == "Main"
        assert (streams["video"]["width"], streams["video"]["height"]) == SIZE
        assert streams["video"]["r_frame_rate"] == f"{FPS}/1"
        assert streams["audio"]["codec_name"] == "aac"

        # Viewers at scale: the HLS nginx writes plays, 10 s decoded without an error.
        playlist = nginx.playlist(KEY)
        await until(lambda: playlist_seconds(playlist) >= 12, timeout=60)
        played = await asyncio.to_thread(
            subprocess.run, ["ffmpeg", "-v", "error", "-i", str(playlist), "-t", "10", "-f", "null", "-"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert played.returncode == 0 and played.stderr == "", played.stderr

        await inbox.until(lambda: [t for t in inbox.on(f"{ROOT}/telemetry") if t["broadcast"].get("state") == "live"])
        stopped = await call(client, inbox, "broadcast.stop", {})
        assert stopped["status"] == "succeeded" and stopped["result"]["target"] == "platform", stopped
        assert agent.status()["programmes"][0]["users"] == ["recording"]  # the recording carries on, same encoder
        finished = await call(client, inbox, "record.stop", {})
        assert finished["status"] == "succeeded", finished
        assert agent.status()["programmes"] == [] and encoder_threads() == []
        status = json.dumps(agent.status(), ensure_ascii=False)
    assert not pushers()
    seen = json.dumps(inbox.messages, ensure_ascii=False)
    for text in (caplog.text, seen, status):
        assert KEY not in text
    assert "/live/***" in caplog.text and "/live/***" in seen


async def test_nginx_killed_and_restarted_mid_lesson_the_push_comes_back_and_the_gap_is_reported(
    tmp_path: Path, broker: LocalBroker, nginx: LocalNginx, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = load_config(write_config(tmp_path, broker.url, {"platform": nginx.url(KEY)}))
    async with listen(broker) as (inbox, client), running(config) as agent:
        started = await call(client, inbox, "broadcast.start", {"target": "platform", "layout": "side_by_side"})
        assert started["status"] == "succeeded", started
        assert started["result"]["shared"] == []  # nothing is recorded: the broadcast's own encoder
        await until(lambda: playlist_seconds(nginx.playlist(KEY)) >= 2)

        nginx.kill()  # the platform goes away mid-lesson
        raised = await inbox.until(lambda: events(inbox, "broadcast_interrupted", "raise"))
        assert raised[0]["device"] == "platform" and "/live/***" in raised[0]["message"], raised
        assert agent.broadcast.telemetry()["state"] == "retrying"
        await asyncio.sleep(2)  # the lesson goes on meanwhile; attempts are refused, with backoff

        nginx.start()
        cleared = await inbox.until(lambda: events(inbox, "broadcast_interrupted", "clear"), timeout=60)
        assert "resumed" in cleared[0]["message"]
        now = agent.broadcast.telemetry()
        assert (now["state"], now["connections"], now["gaps"]) == ("live", 2, 1), now
        assert now["last_gap"]["to"] and now["last_gap"]["seconds"] >= 2, now
        streams = await asyncio.to_thread(ffprobe, nginx.url(KEY))  # the restarted nginx has the stream again
        assert {"video", "audio"} <= set(streams)
        assert (await call(client, inbox, "broadcast.stop", {}))["status"] == "succeeded"
    assert KEY not in caplog.text and KEY not in json.dumps(inbox.messages, ensure_ascii=False)


def silent_server() -> tuple[socket.socket, int]:
    """A TCP server that takes connections and never says a word (not an RTMP server, or a hung one)."""
    server = socket.create_server(("127.0.0.1", 0))
    return server, server.getsockname()[1]


async def test_a_wrong_url_fails_the_start_clearly_and_leaves_nothing_running(
    tmp_path: Path, broker: LocalBroker, nginx: LocalNginx, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server, silent = silent_server()
    targets = {
        "nowhere": f"rtmp://127.0.0.1:{free_port()}/live/{KEY}",  # nothing listens there
        "wrongapp": nginx.url(KEY, app="nosuchapp"),  # nginx refuses the publish
        "silent": f"rtmp://127.0.0.1:{silent}/live/{KEY}",  # answers nothing: the deadline
    }
    config = load_config(write_config(tmp_path, broker.url, targets))
    with server:
        async with running(config) as agent:
            outcomes = {name: await agent.table.execute("broadcast.start", {"target": name}) for name in targets}
            unknown = await agent.table.execute("broadcast.start", {"target": "youtube"})
            assert agent.broadcast.telemetry() == {"active": False, "target": ""}
            assert agent.status()["programmes"] == [] and encoder_threads() == [] and not pushers()
    for name, outcome in outcomes.items():
        assert outcome.status == "failed", (name, outcome)
        assert outcome.error.startswith(f"cannot broadcast to {name} (rtmp://127.0.0.1:"), outcome.error
        assert "/***)" in outcome.error and KEY not in outcome.error
    assert "Connection refused" in outcomes["nowhere"].error
    assert "application name and the stream key" in outcomes["wrongapp"].error
    assert "no answer" in outcomes["silent"].error and "within 3 s" in outcomes["silent"].error
    assert unknown.status == "rejected" and "expected one of nowhere, wrongapp, silent" in unknown.error
    assert KEY not in caplog.text


async def test_a_timetable_lesson_with_broadcast_goes_on_air_by_itself(
    tmp_path: Path, broker: LocalBroker, nginx: LocalNginx
) -> None:
    beijing = datetime.now(UTC) + timedelta(hours=8)
    start, end = beijing - timedelta(minutes=5), beijing + timedelta(minutes=40)
    if start.date() != end.date():  # a lesson cannot cross midnight: move it to fit the day
        start, end = beijing.replace(hour=0, minute=0), beijing.replace(hour=23, minute=59)
    timetable = f"""[timetable]
auto_power = false
[[timetable.lessons]]
dates = ["{beijing:%Y-%m-%d}"]
start = "{start:%H:%M}"
end = "{end:%H:%M}"
name = "语文"
record = true
broadcast = "platform"
"""
    config = load_config(write_config(tmp_path, broker.url, {"platform": nginx.url(KEY)}, timetable=timetable))
    async with running(config) as agent:
        await until(lambda: agent.broadcast.telemetry().get("state") == "live", timeout=60)
        assert agent.recording.telemetry()["lesson"] == "语文"
        assert [p["users"] for p in agent.status()["programmes"]] == [["broadcast", "recording"]]
        await until(lambda: playlist_seconds(nginx.playlist(KEY)) >= 2, timeout=60)


def test_broadcast_config_problems_are_all_reported_at_once_without_the_key(tmp_path: Path) -> None:
    from agent.errors import ConfigError

    bad = {
        "ftp": f"ftp://example.com/live/{KEY}",
        "nokey": "rtmp://127.0.0.1/live",
        "short": "rtmp://127.0.0.1/live/abc",
        "srtport": f"srt://127.0.0.1?streamid={KEY}",
    }
    extra = 'profile = "extreme"\nkeyframe_s = 0\nbogus = 1'
    path = write_config(tmp_path, "mqtt://127.0.0.1:1", bad, extra=extra)
    path.write_text(path.read_text().replace('profile = "main"\n', ""))
    path.write_text(path.read_text() + '\n[[timetable.lessons]]\nday = 1\nstart = "08:00"\nend = "08:45"\n'
                    'name = "语文"\nbroadcast = "youtube"\n')  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        Agent(load_config(path))
    text = str(caught.value)
    for where in (
        "broadcast.targets.ftp.url: scheme 'ftp'", "broadcast.targets.nokey.url", "broadcast.targets.short.url",
        "broadcast.targets.srtport.url: srt://127.0.0.1: expected a port", "broadcast.profile", "broadcast.keyframe_s",
        "broadcast.bogus: unknown key", "timetable.lessons[0].broadcast: got 'youtube'",
    ):  # fmt: skip
        assert where in text, (where, text)
    assert KEY not in text
