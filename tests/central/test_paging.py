"""The room page's alarms and command log, a page at a time: the HTTP API, and the "more" control in Chromium."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from browser import chromium_page, log_in, script_errors
from fleet_stores import fleet_at
from rooms import skip_without_chromium
from test_dashboard import PASSWORD, SECRET, RecordingSender, boot, login

from central.fleet_rows import CommandSent, Dropped, Row, Seen
from central.fleetdb import FleetDB
from central.live import Changes
from central.users import Users
from central.web import create_app
from central.web_paging import PAGE
from contract import Command, Event, Status, to_iso

SITE = "east"
ALARMS, COMMANDS = 45, 50  # more than two pages of each
START = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)


def at(minutes: int) -> str:
    return to_iso(START + timedelta(minutes=minutes))


def _fill(db: FleetDB) -> None:
    rows: list[Row] = [Seen(SITE, "a1", Status("online", 1, at(0), "1.0"), at(0))]
    for i in range(ALARMS):  # each its own alarm: a different device every time
        rows.append(Seen(SITE, "a1", Event("device_offline", "warning", "raise", at(i), f"alarm {i}", f"d{i}"), at(i)))
    for i in range(COMMANDS):
        rows.append(CommandSent(SITE, "a1", Command(f"c{i:02d}", "agent.ping", {}, at(i + 60), "li"), at(i)))
    rows += [Seen(SITE, "b1", Event("disk_low", "warning", "raise", at(1), "b1's"), at(1))]
    rows.append(CommandSent(SITE, "b1", Command("b1-c", "agent.ping", {}, at(60), "li"), at(1)))
    db.write_batch(rows)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[FleetDB]:
    db = FleetDB(fleet_at(tmp_path))
    _fill(db)
    users = Users(db.location)
    users.add("wang", PASSWORD, "viewer")
    users.add("li", PASSWORD, "technician")
    yield db
    db.close()


@pytest.fixture
async def client(fleet: FleetDB) -> AsyncIterator[TestClient]:
    app = create_app(fleet, Changes(), RecordingSender(), secret=SECRET)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _get(client: TestClient, url: str, status: int = 200) -> Any:
    response = await client.get(url)
    assert response.status == status, await response.text()
    return await response.json()


async def _walk(client: TestClient, kind: str, first: list[dict[str, Any]], more: bool) -> list[Any]:
    """Every row of `kind`, following the `before` cursor page after page."""
    rows = list(first)
    while more:
        page = await _get(client, f"/api/agents/a1/{kind}?before={rows[-1]['id']}&limit={PAGE}")
        assert 0 < len(page[kind]) <= PAGE
        rows += page[kind]
        more = page["more"]
    return [r["id"] for r in rows]


async def test_the_room_comes_with_first_pages_and_the_api_walks_the_rest(client: TestClient) -> None:
    assert await login(client, "wang") == 303
    room = boot(await (await client.get("/room/a1")).text())["data"]
    assert (len(room["alarms"]), room["alarms_more"]) == (PAGE, True)
    assert (len(room["commands"]), room["commands_more"]) == (PAGE, True)
    alarm_ids = await _walk(client, "alarms", room["alarms"], room["alarms_more"])
    command_ids = await _walk(client, "commands", room["commands"], room["commands_more"])
    every_alarm = [a["id"] for a in sorted(await _all_alarms(client), key=lambda a: -a["id"])]
    assert alarm_ids == every_alarm and len(alarm_ids) == ALARMS
    assert command_ids == [f"c{i:02d}" for i in reversed(range(COMMANDS))]
    api = await _get(client, "/api/agents/a1")
    assert [a["id"] for a in api["alarms"]] == alarm_ids[:PAGE] and api["commands_more"] is True


async def _all_alarms(client: TestClient) -> list[dict[str, Any]]:
    page = await _get(client, "/api/agents/a1/alarms?limit=500")
    assert page["more"] is False
    return list(page["alarms"])


@pytest.mark.parametrize(
    ("url", "status", "named"),
    [
        ("/api/agents/a1/alarms?limit=0", 400, "limit: got '0'"),
        ("/api/agents/a1/alarms?limit=501", 400, "limit: got '501'"),
        ("/api/agents/a1/commands?limit=ten", 400, "limit: got 'ten'"),
        ("/api/agents/a1/alarms?before=-3", 400, "before: got '-3'"),
        ("/api/agents/a1/commands?before=nope", 400, "before: got 'nope'"),
        ("/api/agents/a1/commands?before=b1-c", 400, "sent to a1"),  # another agent's command is no cursor
        ("/api/agents/nobody/alarms", 404, "unknown agent"),
    ],
)
async def test_bad_paging_parameters_are_named(client: TestClient, url: str, status: int, named: str) -> None:
    assert await login(client, "wang") == 303
    body = await _get(client, url, status)
    assert named in body["error"]


async def test_ack_reads_that_alarm_only_and_an_old_one_can_be_acked(client: TestClient, fleet: FleetDB) -> None:
    oldest = min(a["id"] for a in fleet.alarms(agent_id="a1"))
    assert fleet.alarm(oldest) is not None and fleet.alarm(oldest)["message"] == "alarm 0"  # type: ignore[index]
    assert fleet.alarm(10_000) is None
    assert await login(client, "li") == 303
    response = await client.post(f"/api/alarms/{oldest}/ack", json={})
    assert response.status == 200 and (await response.json())["acked_by"] == "li"
    assert fleet.alarm(oldest)["acked_by"] == "li"  # type: ignore[index]
    assert (await client.post("/api/alarms/10000/ack", json={})).status == 404


async def test_the_room_page_shows_older_rows_with_more_in_chromium(client: TestClient) -> None:
    skip_without_chromium()
    from playwright.async_api import expect

    url = str(client.make_url("/room/a1"))
    async with chromium_page() as page:
        errors = script_errors(page)
        await page.goto(url)
        await expect(page).to_have_url(re.compile(r"/login\?next="))
        await log_in(page, "li", PASSWORD)
        alarms, commands = page.locator("#alarms tbody tr"), page.locator("#commands tbody tr")
        await expect(alarms).to_have_count(PAGE)
        await expect(commands).to_have_count(PAGE)
        await page.click('button[data-more="alarms"]')
        await expect(alarms).to_have_count(2 * PAGE)
        await page.click('button[data-more="alarms"]')
        await expect(alarms).to_have_count(ALARMS)
        await expect(alarms.last).to_contain_text("alarm 0")
        await expect(page.locator('button[data-more="alarms"]')).to_have_count(0)
        # Acknowledging an old alarm refreshes the page live, and the rows "more" loaded stay.
        await alarms.last.locator('button[data-action="ack"]').click()
        await expect(alarms.last).to_contain_text("li")
        await expect(alarms).to_have_count(ALARMS)
        await page.click('button[data-more="commands"]')
        await expect(commands).to_have_count(2 * PAGE)
        assert errors == []


async def test_the_room_page_shows_how_many_messages_of_the_room_were_dropped(
    client: TestClient, fleet: FleetDB
) -> None:
    skip_without_chromium()
    from playwright.async_api import expect

    bad = "telemetry: nested deeper than 16 levels (or unbalanced brackets)"
    fleet.write_batch([Dropped(SITE, "a1", "status: not JSON", at(5)), Dropped(SITE, "a1", bad, at(6))])
    async with chromium_page() as page:
        await page.goto(str(client.make_url("/room/b1")))
        await log_in(page, "wang", PASSWORD)
        await expect(page.locator("#dropped dd")).to_have_text("0")  # a room that sent nothing bad
        await page.goto(str(client.make_url("/room/a1")))
        dropped = page.locator("#dropped")
        await expect(dropped.locator("dt")).to_have_text("丢弃的消息")
        await expect(dropped.locator("dd")).to_contain_text("2 · ")
        await expect(dropped.locator("details.detail")).to_contain_text(bad)  # the reason, behind 技术信息
        assert bad not in await dropped.locator("dd").inner_text()  # closed: no English on the page
