"""Recording as an agent service: sources, record.start/stop through the command table, agent.db, the disk guard.

Real encoders, a real agent.db, synthetic sources, a real Mosquitto where the MQTT door is used.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import av.error
import pytest
from rooms import site_toml
from test_service import command, listen, running  # the agent test helpers (tests/agent is on sys.path)

from agent.config.site import SiteConfig, load_config, parse_config
from agent.errors import ConfigError
from agent.service import Agent
from agent.store import AgentStore, RecordingRow, RecordingState
from central.mosquitto import LocalBroker, free_port
from contract import DeviceInfo, Info, SourceInfo
from streaming.segments import FINAL_NAME, INDEX_NAME, fragments

SITE, AGENT = "test-school", "room-9"
ROOT = f"classroom/v1/{SITE}/{AGENT}"
FRAGMENT_FRAMES = 5  # fragment_s x fps below


def write_config(
    tmp: Path,
    broker_url: str,
    *,
    sources: str = "",
    recording: str = "",
    min_free_gb: float = 0,
    planned_minutes: float = 10,
    extra: str = "",
) -> Path:
    return site_toml(
        tmp,
        broker_url,
        f"""[intervals]
telemetry_s = 0.5
[sources]
{sources or 'teacher = "synthetic:teacher"' + chr(10) + 'students = "synthetic:students"'}
[recording]
dir = "{tmp / "recordings"}"
layout = "pip"
sources = ["teacher", "students"]
size = "320x240"
fps = 10
fragment_s = 0.5
segment_s = 60
bitrate_mbps = 1
planned_minutes = {planned_minutes}
disk_min_free_gb = {min_free_gb}
{recording}
{extra}
""",
        agent_id=AGENT,
        site=SITE,
        room="录播教室 9",
    )


def config_for(tmp: Path, broker: LocalBroker, **kw: Any) -> SiteConfig:
    return load_config(write_config(tmp, broker.url, **kw))


async def until(check: Any, timeout: float = 30.0) -> Any:
    """Poll a condition (files on disk, rows) within a deadline."""
    async with asyncio.timeout(timeout):
        while not (found := check()):
            await asyncio.sleep(0.1)
    return found


def segment_fragments(directory: Path, name: str) -> int:
    path = directory / name
    return fragments(path) if path.exists() else 0


def decode_all(path: Path) -> tuple[int, int, bool, str]:
    """Decode every video packet: (frames, undecodable packets, audio present, video codec)."""
    frames = damaged = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            try:
                frames += len(packet.decode())
            except av.error.InvalidDataError:
                damaged += 1
        return frames, damaged, bool(container.streams.audio), stream.codec_context.name


async def test_record_start_and_stop_over_mqtt_index_a_playable_checksummed_mp4(
    tmp_path: Path, broker: LocalBroker
) -> None:
    config = config_for(tmp_path, broker)
    async with running(config) as agent, listen(broker, f"{ROOT}/#") as (inbox, client):

        async def ask(name: str, args: dict[str, Any]) -> dict[str, Any]:
            payload = command(name, args)
            ident = json.loads(payload)["id"]
            await client.publish(f"{ROOT}/cmd/{name}", payload, qos=1)
            return await inbox.until(lambda: next((p for p in inbox.on(f"{ROOT}/reply") if p["id"] == ident), None))

        started = await ask("record.start", {"lesson": "物理 第3课", "teacher": "王老师"})
        assert started["status"] == "succeeded", started
        directory = Path(started["result"]["path"])
        assert directory.parent == tmp_path / "recordings"
        await until(lambda: segment_fragments(directory, "segment-0001.mp4") >= 2)

        again = await ask("record.start", {"lesson": "another"})
        assert again["status"] == "rejected"
        assert "already recording '物理 第3课'" in again["error"]

        busy = await inbox.until(
            lambda: [t for t in inbox.on(f"{ROOT}/telemetry") if t["recording"]["active"] and t["recording"]["frames"]]
        )
        assert busy[-1]["recording"]["lesson"] == "物理 第3课"
        row = agent.store.recordings()[0]
        assert row["state"] == "recording" and row["sources"] == ["teacher", "students"] and row["layout"] == "pip"

        stopped = await ask("record.stop", {})
        assert stopped["status"] == "succeeded", stopped
        final = directory / FINAL_NAME
        assert stopped["result"]["file"] == str(final)

        (row,) = agent.store.recordings()
        assert (row["state"], row["lesson"], row["teacher"]) == ("finished", "物理 第3课", "王老师")
        assert row["started"] <= row["ended"]
        assert row["size"] == final.stat().st_size
        assert row["sha256"] == hashlib.sha256(final.read_bytes()).hexdigest()
        frames, damaged, has_audio, codec = await asyncio.to_thread(decode_all, final)
        assert frames == stopped["result"]["frames"] > 0 and damaged == 0
        assert has_audio and codec == "h264"
        assert json.loads((directory / INDEX_NAME).read_text())["state"] == "finished"

        not_recording = await ask("record.stop", {})
        assert (not_recording["status"], not_recording["error"]) == ("rejected", "not recording")
        await inbox.until(lambda: [t for t in inbox.on(f"{ROOT}/telemetry") if not t["recording"]["active"]])


async def test_disk_guard_refuses_to_start_with_the_numbers_and_writes_nothing(
    tmp_path: Path, broker: LocalBroker
) -> None:
    async with running(config_for(tmp_path, broker, min_free_gb=10**9)) as agent:
        outcome = await agent.table.execute("record.start", {"lesson": "英语"}, by="test", door="local")
        assert outcome.status == "failed"
        assert "not enough disk space to record" in outcome.error
        assert "GiB free on" in outcome.error and "1000000000.0 GiB needed" in outcome.error
        assert not (tmp_path / "recordings").exists()
        assert agent.store.recordings() == []
        alarm = agent.alarms.open[("disk_low", "recording")]
        assert alarm.severity == "critical" and "GiB needed" in alarm.message
        assert agent.recording.telemetry()["active"] is False


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML file at `path`, parsed."""
    import tomllib

    return tomllib.loads(path.read_text())


async def test_source_health_in_telemetry_info_redacts_and_an_unserved_rtsp_camera_raises_source_offline(
    tmp_path: Path, broker: LocalBroker
) -> None:
    camera = f"rtsp://admin:s3cret@127.0.0.1:{free_port()}/live"
    sources = f'teacher = "synthetic:teacher"\nstudents = "{camera}"'
    config = config_for(tmp_path, broker, sources=sources)
    async with listen(broker, f"{ROOT}/#") as (inbox, _), running(config):  # events are not retained
        raised = await inbox.until(
            lambda: [e for e in inbox.on(f"{ROOT}/event") if e["type"] == "source_offline" and e["action"] == "raise"]
        )
        assert raised[0]["device"] == "students" and "s3cret" not in raised[0]["message"]
        assert not [e for e in inbox.on(f"{ROOT}/event") if e["type"] == "source_offline" and e["device"] == "teacher"]

        healthy = await inbox.until(
            lambda: [t for t in inbox.on(f"{ROOT}/telemetry") if t["sources"]["teacher"]["fps"] > 0]
        )
        sources_now = healthy[-1]["sources"]
        assert sources_now["teacher"]["connected"] is True
        assert sources_now["teacher"]["last_frame_age_s"] is not None
        assert sources_now["students"]["connected"] is False
        assert sources_now["students"]["last_frame_age_s"] is None
        assert sources_now["students"]["kind"] == "rtsp" and "outages" in sources_now["students"]

        info = (await inbox.until(lambda: inbox.on(f"{ROOT}/info")))[-1]
        assert {s["id"]: s["kind"] for s in info["sources"]} == {"teacher": "synthetic", "students": "rtsp"}
        cam = next(s for s in info["sources"] if s["id"] == "students")
        assert "s3cret" not in cam["url"] and "admin:***@127.0.0.1" in cam["url"]


def test_source_and_recording_problems_are_all_reported_at_once(tmp_path: Path) -> None:
    data = read_toml(write_config(tmp_path, "mqtt://127.0.0.1:1883"))
    data["sources"] = {"teacher": "ftp://cam/1", "students": "rtsp:nohost", "screen": 5, "board": "synthetic"}
    data["recording"] = {
        "layout": "pip",
        "sources": ["board", "ghost"],
        "size": "641x480",
        "audio": "loud",
        "fragment_s": 10,
        "segment_s": 5,
        "colour": "yes",
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(data, base=tmp_path)
    message = str(caught.value)
    for expected in [
        "sources.teacher: got 'ftp://cam/1', expected rtsp://",
        "sources.students: got 'rtsp:nohost'",
        "sources.screen: got 5, expected a URL string",
        "recording.sources[1]: got 'ghost', expected a source declared in [sources]",
        "recording.size: got '641x480'",
        "recording.audio: got 'loud'",
        "recording.fragment_s: got 10, expected at most segment_s (5)",
        "recording.colour: unknown key",
    ]:
        assert expected in message, message

    data["sources"] = {"board": "synthetic"}
    data["recording"] = {"layout": "side_by_side", "sources": ["board"]}
    with pytest.raises(ConfigError, match=r"recording.layout: layout 'side_by_side': got 1 sources, expected 2"):
        parse_config(data, base=tmp_path)


def test_recording_audio_names_the_mic_or_an_rtsp_camera(tmp_path: Path) -> None:
    data = read_toml(write_config(tmp_path, "mqtt://127.0.0.1:1883"))
    data["sources"] = {"board": "synthetic", "cam": "rtsp://127.0.0.1:8554/cam"}
    for audio in ("cam", "mic", "mic:hw:1", "tone", "none"):
        data["recording"] = {"layout": "single", "sources": ["board"], "audio": audio}
        assert parse_config(data, base=tmp_path).recording.audio == audio  # type: ignore[union-attr]
    data["recording"] = {"layout": "single", "sources": ["board"], "audio": "board"}
    with pytest.raises(ConfigError, match=r"recording.audio: got 'board', expected an rtsp source"):
        parse_config(data, base=tmp_path)


def test_an_agent_without_sources_does_not_load_the_media_stack(tmp_path: Path) -> None:
    path = write_config(tmp_path, "mqtt://127.0.0.1:1")
    data = read_toml(path)
    del data["sources"], data["recording"]
    code = (
        "import json, sys; from pathlib import Path; from agent.config.site import parse_config; "
        "from agent.service import Agent; "
        f"a = Agent(parse_config(json.loads({json.dumps(json.dumps(data))}))); "
        "print(sorted({'av', 'cv2'} & set(sys.modules)), a.recording.telemetry()['active'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["[]", "False"], out.stderr


async def test_record_start_without_a_recording_section_is_rejected_with_the_reason(
    tmp_path: Path, broker: LocalBroker
) -> None:
    data = read_toml(write_config(tmp_path, broker.url))
    del data["recording"]
    async with running(parse_config(data, base=tmp_path)) as agent:
        outcome = await agent.table.execute("record.start", {})
        assert outcome.status == "rejected" and "[recording]" in outcome.error


async def test_retention_deletes_only_uploaded_recordings_older_than_retention_days(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "mqtt://127.0.0.1:1", recording="retention_days = 7"))
    agent = Agent(config)
    root = tmp_path / "recordings"
    rows = {
        "old-uploaded": ("uploaded", "2020-01-01T08:00:00Z"),
        "new-uploaded": ("uploaded", "2999-01-01T08:00:00Z"),
        "old-finished": ("finished", "2020-01-01T08:00:00Z"),
    }
    for name, (state, ended) in rows.items():
        (root / name).mkdir(parents=True)
        (root / name / FINAL_NAME).write_bytes(b"x")
        agent.store.recording_put(
            {"id": name, "lesson": name, "started": ended, "ended": ended, "path": str(root / name), "state": state}
        )
    try:
        assert await agent.recording.apply_retention() == 1
        assert sorted(r["id"] for r in agent.store.recordings()) == ["new-uploaded", "old-finished"]
        assert sorted(p.name for p in root.iterdir()) == ["new-uploaded", "old-finished"]
    finally:
        agent.store.close()


def test_recordings_left_recording_by_a_crash_are_marked_interrupted_at_startup(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "mqtt://127.0.0.1:1"))
    store = AgentStore(config.db_path)
    store.recording_put({"id": "r1", "lesson": "l", "started": "2026-01-01T08:00:00Z", "state": "recording"})
    store.recording_put({"id": "r2", "lesson": "l", "started": "2026-01-01T09:00:00Z", "state": "finished"})
    store.close()
    agent = Agent(config)
    try:
        assert {r["id"]: r["state"] for r in agent.store.recordings()} == {"r1": "interrupted", "r2": "finished"}
    finally:
        agent.store.close()


def test_recording_rows_are_typed_and_store_the_same_state_strings_as_before(tmp_path: Path) -> None:
    store = AgentStore(tmp_path / "agent.db")
    try:
        # as an older agent wrote it: plain strings, and columns never written (NULL)
        store.conn.execute("INSERT INTO recordings(id, state, sources) VALUES ('old', 'finishing', '[\"teacher\"]')")
        row = RecordingRow("r1", "物理", started="2026-01-01T08:00:00Z", sources=("teacher", "students"))
        store.recording_put(row)
        assert store.recording("r1") == row and RecordingRow.from_dict(row.to_dict()) == row
        assert store.recording("old") == RecordingRow("old", sources=("teacher",), state=RecordingState.FINISHING)
        store.mark("r1", RecordingState.UPLOADED, ended="2026-01-01T09:00:00Z")
        assert store.conn.execute("SELECT state FROM recordings WHERE id = 'r1'").fetchone() == ("uploaded",)
        assert [r.id for r in store.recordings_in(RecordingState.UPLOADED, RecordingState.FINISHING)] == ["r1", "old"]
        assert [r.id for r in store.uploaded_before("2026-01-02T00:00:00Z")] == ["r1"]
        assert store.uploaded_before("2026-01-01T00:00:00Z") == [] and store.recording("gone") is None
        assert {str(s) for s in RecordingState} == {
            "recording", "interrupted", "finishing", "finished", "uploaded", "failed"
        }  # fmt: skip
    finally:
        store.close()


def test_info_with_sources_round_trips() -> None:
    info = Info(
        "room", "pc", "1.0", (DeviceInfo("panel", "display", "lg"),), 5.0,
        (SourceInfo("teacher", "rtsp", "rtsp://admin:***@10.0.0.5/main"),),
    )  # fmt: skip
    assert Info.from_dict(json.loads(json.dumps(info.to_dict()))) == info
    assert Info.from_dict({"room": "r", "devices": []}).sources == ()
