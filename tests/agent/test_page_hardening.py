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


DEEP = "[" * 30_000 + "]" * 30_000  # under the local API's 64 KiB body limit
HOSTILE_BODIES = [
    (DEEP, "nested deeper"),
    ('{"name": "agent.ping", "args": ' + "[" * 100 + "]" * 100 + "}", "nested deeper"),
    ('{"name": "agent.ping", "args": {"x": Infinity}}', "Infinity"),
    ("\xff\xfe", "not UTF-8"),
    ('{"name": ', "not JSON"),
    ("[]", "expected a JSON object"),
]


@pytest.mark.parametrize("path", ["/api/commands", "/page/command"])
@pytest.mark.parametrize(("body", "named"), HOSTILE_BODIES)
async def test_a_hostile_command_body_gets_a_400_naming_it(tmp_path: Path, path: str, body: str, named: str) -> None:
    async with TestClient(TestServer(app_for(site(tmp_path)))) as client:
        headers = {"Content-Type": "application/json"}
        response = await client.post(path, data=body.encode("latin-1"), headers=headers)
        assert response.status == 400, await response.text()
        answer = await response.json()
        assert answer["status"] == "rejected" and named in answer["error"]
        ping = await client.post(path, json={"name": "agent.ping", "args": {}})
        assert (await ping.json())["status"] == "succeeded"  # and the agent goes on
