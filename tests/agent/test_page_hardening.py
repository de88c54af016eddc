"""The classroom page against hostile visitors: redirects elsewhere, PIN guessing, malformed JSON.

Real aiohttp server over the room's real command table (as in test_page.py)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from test_page import PIN, app_for, site

from agent.web.auth import PinGate


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


# --- PIN guessing ---------------------------------------------------------------------------------


async def pin_try(server: TestServer, source: str, pin: str) -> int:
    """One PIN attempt from the loopback address `source` (each a different client, as phones on a LAN)."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        form = {"pin": pin, "next": "/"}
        async with session.post(server.make_url("/page/login"), data=form, allow_redirects=False) as response:
            return response.status


async def test_one_client_guessing_pins_does_not_lock_out_the_teacher(tmp_path: Path) -> None:
    async with TestServer(app_for(site(tmp_path), pin=PIN, local=False), host="127.0.0.1") as server:
        guesses = [await pin_try(server, "127.0.0.2", "0000") for _ in range(6)]
        assert guesses[:4] == [401] * 4 and guesses[4:] == [429, 429]  # the guesser is locked out ...
        assert await pin_try(server, "127.0.0.3", PIN) == 303  # ... the teacher's phone is not
        assert await pin_try(server, "127.0.0.2", PIN) == 429  # and the guesser gains nothing from the right PIN


def test_a_client_that_keeps_guessing_waits_longer_each_time() -> None:
    clock = [0.0]
    gate = PinGate(PIN, clock=lambda: clock[0])
    assert [gate.attempt("0000", client="10.0.0.9").left for _ in range(4)] == [4, 3, 2, 1]
    assert gate.attempt("0000", client="10.0.0.9").wait_s == 30
    clock[0] += 30
    assert gate.attempt("0000", client="10.0.0.9").wait_s == 60  # one more wrong one: twice as long
    clock[0] += 60
    assert gate.attempt("0000", client="10.0.0.9").wait_s == 120
    assert gate.attempt(PIN, client="10.0.0.10").ok  # another device was never held up
