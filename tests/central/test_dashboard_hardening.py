"""The dashboard against hostile visitors: redirects elsewhere, revoked sessions, password guessing,
malformed JSON bodies.  Real aiohttp server, real SQLite fleet.db and users table."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from test_dashboard import PASSWORD, SECRET, RecordingSender, changes, fleet, sender, users

from central.fleetdb import FleetDB
from central.live import Changes
from central.users import Users
from central.web import create_app

__all__ = ["changes", "fleet", "sender", "users"]  # fixtures shared with test_dashboard


@pytest.fixture
async def client(fleet: FleetDB, users: Users, changes: Changes, sender: RecordingSender) -> AsyncIterator[TestClient]:
    app = create_app(fleet, changes, sender, users=users, secret=SECRET)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


# --- open redirect ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/%09/evil.example/", "/%0a/evil.example/", "%09//evil.example/"])
async def test_the_language_switch_never_sends_a_browser_to_another_site(client: TestClient, target: str) -> None:
    response = await client.get(f"/lang/en?next={target}", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/"


async def test_a_login_never_sends_a_browser_to_another_site(client: TestClient) -> None:
    form = {"username": "li", "password": PASSWORD, "next": "/\t/evil.example/"}
    response = await client.post("/login", data=form, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/"
    assert (await client.get("/login?next=/%09/evil.example/")).status == 200
    page = await (await client.get("/login?next=/%09/evil.example/")).text()
    assert 'name="next" value="/"' in page
