"""A projector's input list on the classroom page holds the inputs it says it has, not all 45 PJLink names.

The PJLink profile can name 45 class 1 inputs (rgb1-9 … network1-9); a projector has a handful and
says which (INST).  A real agent process polls our PJLink simulator (which reports ``11 21 31 32 51``)
and real headless Chromium shows the list; a panel whose profile names a fixed list keeps it.
"""

from __future__ import annotations

from pathlib import Path

from browser import chromium_page
from rooms import skip_without_chromium
from test_page_browser import AGENT_CONFIG, agent_process
from visible_text import assert_plain_chinese

from agent.config.site import parse_config
from agent.timetable.model import Timetable
from agent.web.view import input_codes, live_view, reported_inputs, room_layout
from central.mosquitto import LocalBroker

PROJECTOR = """
[[devices]]
id = "beamer"
profile = "pjlink"
address = "sim"
poll_s = 0.5
"""
REPORTED = ["rgb1", "video1", "digital1", "digital2", "network1"]  # the simulator's INST: 11 21 31 32 51


def test_the_layout_waits_for_the_projector_and_the_view_brings_what_it_reports(tmp_path: Path) -> None:
    config = parse_config(
        {
            "agent_id": "r1",
            "site": "s",
            "room": "r",
            "data_dir": str(tmp_path),
            "devices": [
                {"id": "beamer", "profile": "pjlink", "address": "sim"},
                {"id": "panel", "profile": "samsung-mdc", "address": "sim"},
            ],
        }
    )
    beamer, panel = room_layout(config.devices, ())["panels"]
    assert beamer["inputs"] == [] and beamer["reports_inputs"] is True
    assert "hdmi2" in panel["inputs"] and panel["reports_inputs"] is False
    codes = {d.id: c for d in config.devices if (c := input_codes(d))}
    assert set(codes) == {"beamer"} and len(codes["beamer"]) == 45
    status = {"devices": [{"device": "beamer", "online": True, "state": {"inputs": "11 21 31 32 51 3A 99"}}]}
    [view] = live_view(status, {"beamer": "projector"}, Timetable(), __import__("datetime").datetime.now(), {}, codes)[
        "devices"
    ]
    assert view["inputs"] == REPORTED  # a class 2 letter code and an unknown one left out
    assert reported_inputs({"inputs": 31}, codes["beamer"]) == []  # not text: nothing


async def test_a_projectors_list_shows_only_its_own_inputs_in_chromium(broker: LocalBroker, tmp_path: Path) -> None:
    skip_without_chromium()
    from playwright.async_api import expect

    text = AGENT_CONFIG.replace("[sources]", PROJECTOR.replace("{", "{{") + "[sources]", 1)
    async with (
        agent_process(broker, tmp_path, text) as (base, _),
        chromium_page(viewport={"width": 1280, "height": 900}) as page,
    ):
        await page.goto(base + "/")
        card = page.locator('.card.panel[data-device="beamer"]')
        options = card.locator("select.input option:not([disabled])")
        await expect(options).to_have_count(len(REPORTED), timeout=30_000)
        assert [await o.get_attribute("value") for o in await options.all()] == REPORTED
        await expect(options).to_have_text(["RGB 1", "视频 1", "数字 1", "数字 2", "网络 1"])
        await page.select_option('.card.panel[data-device="beamer"] select.input', "digital2")
        await expect(page.locator("#outcomes li").first).to_have_text("切换信号源：完成", timeout=30_000)
        await expect(card.locator(".panel-state")).to_contain_text("信号源 数字 2", timeout=30_000)
        panel = page.locator('.card.panel[data-device="panel"] select.input option[value="hdmi2"]')
        await expect(panel).to_have_count(1)  # a fixed list from the profile stays
        await assert_plain_chinese(page, ("panel", "camera", "board", "side", "teacher", "students", "beamer"))
