"""The page another device sees when the room has no PIN: words for a teacher, the config key for the technician.

A teacher opening the page on a phone learns whom to ask; ``[http] pin`` (what the technician sets)
stays behind the closed 技术信息 toggle.  Real headless Chromium against the page's real server.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestServer
from browser import chromium_page
from rooms import skip_without_chromium
from test_page import app_for, site
from visible_text import assert_plain_chinese


async def test_without_a_pin_a_phone_is_told_whom_to_ask_and_the_key_is_folded_away(tmp_path: Path) -> None:
    skip_without_chromium()
    from playwright.async_api import expect

    server = TestServer(app_for(site(tmp_path), local=False))  # every request another device's, no PIN set
    await server.start_server()
    try:
        async with chromium_page(viewport={"width": 390, "height": 844}) as page:
            response = await page.goto(str(server.make_url("/")))
            assert response is not None and response.status == 403
            await expect(page.locator("#pin-error")).to_contain_text("请联系学校的电教管理员开通")
            await expect(page.locator('input[name="pin"]')).to_have_count(0)  # no form: there is no PIN
            await assert_plain_chinese(page)  # no "[http] pin" in sight
            detail = page.locator("#pin-detail")
            await expect(detail.locator("summary")).to_have_text("技术信息")
            await detail.locator("summary").click()
            await expect(detail).to_contain_text("站点配置 [http] 中没有设置 pin")
    finally:
        await server.close()
