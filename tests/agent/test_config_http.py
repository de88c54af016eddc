"""``[http] pin``, ``[http] allowed_origins`` and camera preset names: what the site config accepts and refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.config.site import load_config, parse_config
from agent.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def site(tmp: Path, http: dict[str, Any] | None = None, presets: Any = None) -> dict[str, Any]:
    camera: dict[str, Any] = {"id": "camera", "profile": "sony-visca", "address": "sim"}
    if presets is not None:
        camera["presets"] = presets
    return {
        "agent_id": "room-3",
        "site": "no1",
        "room": "高一(3)班",
        "data_dir": str(tmp),
        "http": http or {},
        "devices": [{"id": "panel", "profile": "samsung-mdc", "address": "sim"}, camera],
    }


def problems(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return str(caught.value)


def test_pin_and_origins_are_read(tmp_path: Path) -> None:
    config = parse_config(site(tmp_path, {"pin": "0246", "allowed_origins": ["https://Central.example:8443"]}))
    assert config.http_pin == "0246"  # the leading 0 stays
    assert config.http_allowed_origins == ("https://central.example:8443",)
    plain = parse_config(site(tmp_path))
    assert (plain.http_pin, plain.http_allowed_origins) == ("", ())


def test_every_bad_pin_origin_and_preset_is_reported_at_once(tmp_path: Path) -> None:
    data = site(
        tmp_path,
        {"pin": "12a4", "allowed_origins": ["central.example", "https://c.example/path", 7]},
        {"1": "讲台", "256": "太大", "x": "黑板", "3": "  ", "4": 5},
    )
    text = problems(data)
    assert "8 problem(s)" in text
    assert "http.pin: got 4 characters, expected 4 to 12 digits" in text
    assert "http.allowed_origins[0]: got 'central.example', expected an origin like https://" in text
    assert "http.allowed_origins[1]: got 'https://c.example/path'" in text
    assert "http.allowed_origins[2]: got 7" in text
    assert "devices[1].presets.256: got preset number '256', expected a number 0..255" in text
    assert "devices[1].presets.x: got preset number 'x'" in text
    assert "devices[1].presets.3: got '  ', expected the preset's name" in text
    assert "devices[1].presets.4: got 5" in text


def test_pin_lengths_and_numbers(tmp_path: Path) -> None:
    assert "http.pin: got 3 characters" in problems(site(tmp_path, {"pin": "123"}))
    assert "http.pin: got 13 characters" in problems(site(tmp_path, {"pin": "1" * 13}))
    assert "expected the PIN in quotes" in problems(site(tmp_path, {"pin": 2468}))
    assert parse_config(site(tmp_path, {"pin": "1" * 12})).http_pin == "1" * 12


def test_presets_belong_to_cameras_only(tmp_path: Path) -> None:
    data = site(tmp_path)
    data["devices"][0]["presets"] = {"1": "讲台"}
    assert "devices[0].presets: got presets on a display, expected them only on a camera" in problems(data)
    assert "devices[1].presets: got '讲台', expected dict" in problems(site(tmp_path, presets="讲台"))


def test_presets_are_kept_in_number_order(tmp_path: Path) -> None:
    config = parse_config(site(tmp_path, presets={"3": "学生全景", "1": "讲台", "0": "初始"}))
    camera = config.device("camera")
    assert camera is not None and list(camera.presets.items()) == [(0, "初始"), (1, "讲台"), (3, "学生全景")]


@pytest.mark.parametrize("name", ["site.toml", "lesson-main.toml", "lesson-remote.toml"])
def test_examples_name_their_camera_presets(name: str) -> None:
    camera = load_config(EXAMPLES / name).device("camera")
    assert camera is not None and camera.presets and all(camera.presets.values())
