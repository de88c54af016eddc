"""The visible-text checker of the zh-CN browser tests (tests/visible_text.py) catches what a person would."""

from __future__ import annotations

from visible_text import english, problems


def test_chinese_ids_units_and_brands_pass() -> None:
    ids = {"panel", "room-remote", "teacher", "/dev/ttyUSB7"}
    for text in (
        "大屏 panel：正常",
        "村小 三年级 (room-remote)",
        "延迟 12 毫秒 · 丢包 0.0 %",
        "信号源 HDMI 2 · 电脑(OPS) · USB-C",
        "已录 00:01:02",
        "每秒 25fps，30 ms",
        "English",
        "端口 /dev/ttyUSB7",
    ):
        assert english(text, ids) == [], text


def test_english_words_and_raw_json_are_caught_with_where() -> None:
    assert english("摄像机没有响应: not started yet", {"camera"}) == ["not", "started", "yet"]
    assert english("level: 140 is out of range 0..100") == ["level", "is", "out", "of", "range"]
    assert english("hdmi1") == ["hdmi1"]  # an input code, not what people call it
    assert english("room-gone", {"room"}) == ["room-gone"]  # an id is allowed only whole
    found = problems(
        [
            {"text": "开始上课：完成", "where": "li.outcome"},
            {"text": '{"status": "failed", "error": "x"}', "where": "li.outcome"},
            {"text": "正在录制：{lesson}", "where": "p#recording"},
            {"text": "[object Object]", "where": "span"},
            {"text": "undefined", "where": "span.why"},
        ]
    )
    assert all("开始上课" not in p for p in found)
    for bad in ('{"status"', "{lesson}", "[object Object]", "undefined"):
        assert any(bad in p for p in found), bad
    assert any(p.startswith("raw JSON") and "{lesson}" in p and p.endswith("at p#recording") for p in found)
    assert any(p.startswith("raw JSON") and '{"status"' in p for p in found)
