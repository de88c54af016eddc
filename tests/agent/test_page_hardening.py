"""The classroom page against hostile visitors: redirects elsewhere, PIN guessing, malformed JSON.

Real aiohttp server over the room's real command table (as in test_page.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from test_page import PIN, app_for, site


@pytest.mark.parametrize("target", ["/%09/evil.example/", "/%0d%0a/evil.example/"])
async def test_the_language_switch_never_sends_a_browser_to_another_site(tmp_path: Path, target: str) -> None:
    async with TestClient(TestServer(app_for(site(tmp_path), pin=PIN, local=False))) as client:
        response = await client.get(f"/page/lang/en?next={target}", allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/"
        form = {"pin": PIN, "next": "/\t/evil.example/"}
        login = await client.post("/page/login", data=form, allow_redirects=False)
        assert login.status == 303 and login.headers["Location"] == "/"
