"""The classroom page words a refusal or failure by its code and params, not by its English text.

Every code the agent's commands send (docs/codes.md) has the teacher's words in both languages; a
reply without a code still gets words from its English; and in real Chromium against a real agent
process, a recording refused for want of disk space says how much there is and how much it needs
(only the code's params carry the numbers: the English rules could not).
"""

from __future__ import annotations

import re
from pathlib import Path

from browser import chromium_page
from rooms import skip_without_chromium
from test_page_browser import AGENT_CONFIG, IDS, agent_process
from visible_text import assert_plain_chinese, problems

from agent.web.plain import CODE_WORDS, plain_error
from central.mosquitto import LocalBroker

REPO = Path(__file__).resolve().parents[2]
# Codes only the centre sends (it could not send a command, wake a PC, a viewer's account): not the page's.
CENTRE_ONLY = {
    "command_too_large",
    "not_sent",
    "unknown_agent",
    "no_mac",
    "no_neighbour",
    "neighbours_failed",
    "forbidden",
}
# What each code's params look like in a reply (the command table's and the device layer's).
PARAMS = {
    "arg_range": {"arg": "level", "value": 140, "min": 0, "max": 100},
    "arg_choice": {"arg": "source", "value": "hdmi9", "choices": ["hdmi1"]},
    "arg_missing": {"arg": "preset", "command": "camera.preset.recall"},
    "disk_low": {"free_gb": 3.5, "needed_gb": 12.0},
    "command_timeout": {"seconds": 30},
    "device_refused": {"device": "beamer", "reason": "unavailable_time"},
}


def documented_codes() -> set[str]:
    """The codes of docs/codes.md's refusals-and-failures table (first column) and why a device is offline."""
    text = (REPO / "docs" / "codes.md").read_text()
    refusals, rest = text.split("## Refusals and failures", 1)[1].split("## Why a device is offline", 1)
    offline = rest.split("## Alarms", 1)[0]
    firsts = [line.split("|")[1] for line in refusals.splitlines() if line.startswith("| `")]
    codes = {c for cell in firsts for c in re.findall(r"`([a-z][a-z0-9_]*[a-z0-9])`", re.sub(r"\([^)]*\)", "", cell))}
    codes |= set(re.findall(r"`(device_[a-z_]*[a-z])`", offline))
    return codes - CENTRE_ONLY - {"device_offline"}  # the alarm that carries the code, not a code


def test_every_code_the_agent_sends_has_the_teachers_words_in_both_languages() -> None:
    codes = documented_codes()
    assert {"arg_range", "device_no_reply", "device_refused", "disk_low", "lesson_none", "busy"} <= codes
    for code in sorted(codes):
        assert code in CODE_WORDS, f"{code}: no words on the classroom page"
        params = PARAMS.get(code, {"arg": "level", "value": 1, "device": "panel"})
        zh = plain_error("an English text no rule knows", "display", "zh", "serial", code, params)
        en = plain_error("an English text no rule knows", "display", "en", "serial", code, params)
        assert not problems([{"text": zh}]) and "{" not in zh, (code, zh)
        assert en.isascii() and "{" not in en, (code, en)
        if code != "result_too_large":  # nothing a teacher can do but try again
            assert zh != "操作没有成功", code


def test_the_code_wins_over_the_english_and_its_params_fill_the_words() -> None:
    # English that the rules would call busy, coded as a recording already running.
    assert plain_error("busy: something", "", "zh", code="recording_already") == "已经在录制了"
    assert plain_error("x", "", "zh", code="arg_range", params=PARAMS["arg_range"]) == "音量只能在 0 到 100 之间"
    assert plain_error("x", "", "zh", code="arg_missing", params={"arg": "remotes"}) == "请至少选择一个要连线的教室"
    assert plain_error("x", "", "zh", code="arg_choice", params={"arg": "device"}) == "本教室没有这台设备"
    warming = plain_error("x", "projector", "zh", "network", "device_refused", PARAMS["device_refused"])
    assert warming == "投影机正在预热或散热，请稍后再试"
    unplugged = plain_error("x", "display", "zh", "serial", "device_unreachable", {"device": "side"})
    assert unplugged == "连接大屏的串口打不开，请检查串口线是否插好，或联系管理员"
    assert plain_error("x", "camera", "zh", "network", "device_unreachable") == "摄像机没有响应，请检查电源和网线"
    hostile = {"free_gb": "<b>{needed_gb}</b>", "needed_gb": 1}  # not numbers: the words without them
    assert plain_error("x", "", "zh", code="disk_low", params=hostile) == "磁盘空间不够，不能开始录制，请联系管理员"


def test_a_reply_without_a_code_or_with_an_unknown_one_falls_back_to_its_english() -> None:
    assert plain_error("level: 140 is out of range 0..100", "", "zh") == "音量只能在 0 到 100 之间"
    assert plain_error("not recording", "", "zh", code="from_a_newer_agent") == "现在没有在录制"
    assert plain_error("something odd", "", "zh", code="from_a_newer_agent") == "操作没有成功"


async def test_a_recording_refused_for_disk_space_says_how_much_in_chromium(
    broker: LocalBroker, tmp_path: Path
) -> None:
    skip_without_chromium()
    from playwright.async_api import expect

    full = AGENT_CONFIG.replace("disk_min_free_gb = 0", "disk_min_free_gb = 1000000")
    assert full != AGENT_CONFIG
    async with (
        agent_process(broker, tmp_path, full) as (base, _),
        chromium_page(viewport={"width": 1280, "height": 900}) as page,
    ):
        await page.goto(base + "/")
        await expect(page.locator("#live.on")).to_have_count(1)
        await page.click('button[data-action="record"]')
        failed = page.locator("#outcomes li").first
        await expect(failed).to_have_attribute("data-status", "failed", timeout=30_000)
        words = re.compile(r"开始录制：没有成功 — 磁盘空间不够：剩余 [\d.]+ GB，需要 \d{7}(\.\d)? GB，")
        await expect(failed).to_contain_text(words)
        await expect(failed.locator("details.detail")).to_contain_text("not enough disk space")
        await assert_plain_chinese(page, IDS)
