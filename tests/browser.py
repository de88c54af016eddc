"""Headless Chromium for the browser tests: launched once per use, closed on the way out; the dashboard's login.

Importable from every test package (tests/ is on sys.path). Playwright is imported only when a browser starts,
so collecting the tests stays fast.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from rooms import CHROMIUM, CHROMIUM_ARGS, skip_without_chromium

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

# WebRTC in a loopback-only namespace: without the last two Chromium offers no usable candidate (shared/TRAPS.md).
RTC_ARGS = [
    *CHROMIUM_ARGS,
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
# A synthetic camera and microphone, granted without asking, for pages that publish (WHIP).
MEDIA_ARGS = [*RTC_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@asynccontextmanager
async def chromium(args: Sequence[str] = CHROMIUM_ARGS) -> AsyncIterator[Browser]:
    """Debian's headless Chromium through Playwright; the test is skipped, saying why, where it is absent."""
    skip_without_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=list(args))
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def chromium_page(args: Sequence[str] = CHROMIUM_ARGS, **options: Any) -> AsyncIterator[Page]:
    """One page (`options` as for ``Browser.new_page``: viewport, locale...) in a Chromium of its own."""
    async with chromium(args) as browser:
        yield await browser.new_page(**options)


def script_errors(page: Page) -> list[str]:
    """The list the page's uncaught script errors go into from now on."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


async def log_in(page: Page, username: str, password: str) -> None:
    """Fill in the dashboard's login form (the page must show it) and send it."""
    await page.fill('input[name="username"]', username)
    await page.fill('input[name="password"]', password)
    await page.click('button[type="submit"]')
