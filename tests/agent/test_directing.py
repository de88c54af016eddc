"""Directing in the agent: the ``[director]`` config, the ``directed`` layout in a real recording, the override."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import av
import pytest

from agent.alarms import Alarms
from agent.commands.record import add_record_commands
from agent.commands.table import CommandTable
from agent.config.site import DirectorConfig, parse_config
from agent.errors import ConfigError
from agent.recording.service import RecordingService
from agent.store import AgentStore
from streaming.synthetic import SyntheticSource

BLUE, GREEN, RED = (200, 0, 0), (0, 200, 0), (0, 0, 200)  # BGR
SLIDES = ((255, 100, 100), (255, 60, 60), BLUE)
RULES = [
    {"when": "courseware active", "show": "courseware"},
    {"when": "students active", "show": "students"},
    {"when": "always", "show": "teacher"},
]


def site(tmp: Path, *, recording: dict[str, Any] | None = None, director: dict[str, Any] | None = None) -> Any:
    data: dict[str, Any] = {
        "agent_id": "room-9",
        "site": "s",
        "room": "9",
        "data_dir": str(tmp / "var"),
        "sources": {"courseware": "synthetic", "teacher": "synthetic", "students": "synthetic"},
    }
    if recording is not None:
        data["recording"] = {
            "dir": str(tmp / "recordings"), "layout": "directed", "sources": ["courseware", "teacher", "students"],
            "size": "160x96", "fps": 10, "fragment_s": 0.5, "disk_min_free_gb": 0, "planned_minutes": 1,
            **recording,
        }  # fmt: skip
    if director is not None:
        data["director"] = director
    return data


def test_director_config_is_read_with_its_rules_and_thresholds(tmp_path: Path) -> None:
    director = {"hold_s": 2, "thresholds": {"courseware": 0.05}, "rules": RULES}
    config = parse_config(site(tmp_path, recording={}, director=director))
    assert config.recording is not None
    assert config.recording.director == DirectorConfig(
        (("courseware active", "courseware"), ("students active", "students"), ("always", "teacher")),
        2.0,
        (("courseware", 0.05),),
    )


def test_every_director_problem_is_reported_at_once(tmp_path: Path) -> None:
    director = {
        "hold_s": -1,
        "colour": "blue",
        "thresholds": {"panorama": 0.1, "students": 2},
        "rules": [{"when": "sometimes", "show": "teacher"}, {"when": "panorama active", "show": "panorama"}, "x"],
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(site(tmp_path, recording={}, director=director))
    message = str(caught.value)
    for key in (
        "director.hold_s: got -1",
        "director.colour: unknown key",
        "director.thresholds.panorama: unknown source",
        "director.thresholds.students: got 2",
        "director.rules[0].when: got 'sometimes'",
        "director.rules[1].when: got 'panorama active'",
        "director.rules[1].show: got 'panorama'",
        "director.rules[2]: got 'x'",
    ):
        assert key in message
    assert "8 problem(s)" in message


def test_director_needs_recording_and_the_directed_layout_needs_a_director(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"director: expected \[recording\] too"):
        parse_config(site(tmp_path, director={"rules": RULES}))
    with pytest.raises(ConfigError, match=r"recording.layout: got 'directed', expected a \[director\]"):
        parse_config(site(tmp_path, recording={}))


def dominant(image: Any) -> str:
    """Which of the solid colours a pixel is (H.264 shifts the values a little)."""
    b, g, r = (int(c) for c in image)
    return "blue" if b > max(g, r) + 80 else "green" if g > max(b, r) + 80 else "red" if r > max(b, g) + 80 else "?"


async def test_a_directed_recording_follows_the_courseware_and_the_override(tmp_path: Path) -> None:
    director = {"hold_s": 1.0, "thresholds": {"courseware": 0.05}, "rules": RULES}
    config = parse_config(site(tmp_path, recording={}, director=director))
    colours = {"courseware": BLUE, "teacher": GREEN, "students": RED}
    sources = {name: SyntheticSource(name, (160, 96), 10, color=c) for name, c in colours.items()}
    store = AgentStore(config.db_path)
    table = CommandTable()
    service = RecordingService(config.recording, sources, store, Alarms(lambda event: None))
    add_record_commands(table, service)
    for source in sources.values():
        source.start()
    try:
        assert (await table.execute("record.start", {"lesson": "maths"})).status == "succeeded"
        await asyncio.sleep(1.5)  # the slide stays put: the teacher
        assert service.telemetry()["director"] == {"source": "teacher", "reason": "rule", "rule": "always"}
        for i in range(12):  # the teacher pages through slides (all blue, each a different grey)
            sources["courseware"].color = SLIDES[i % len(SLIDES)]
            await asyncio.sleep(0.15)
        bad = await table.execute("director.override", {"source": "panorama"})
        assert bad.status == "rejected" and "expected one of courseware, teacher, students" in bad.error
        assert (await table.execute("director.override", {"source": "students"})).status == "succeeded"
        assert service.telemetry()["director"] == {"source": "students", "reason": "override", "rule": ""}
        await asyncio.sleep(1.5)
        stopped = await table.execute("record.stop", {})
        assert stopped.status == "succeeded", stopped.error
    finally:
        for source in sources.values():
            source.stop()
        store.close()
    with av.open(stopped.result["file"]) as container:
        shown = [dominant(f.to_ndarray(format="bgr24")[48, 80]) for f in container.decode(video=0)]
    runs = [c for i, c in enumerate(shown) if i == 0 or c != shown[i - 1]]
    assert runs == ["green", "blue", "red"], shown
    assert service.override(None) == {"automatic": True, "source": ""}
