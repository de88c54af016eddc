"""The dashboard against hostile visitors: redirects elsewhere, revoked sessions, password guessing,
malformed JSON bodies.  Real aiohttp server, real SQLite fleet.db and users table."""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from fleet_stores import fleet_at
from test_dashboard import PASSWORD, SECRET, RecordingSender, changes, fleet, login, sender, users

from central.fleetdb import FleetDB
from central.live import Changes
from central.mosquitto import LocalBroker, free_port
from central.upload_store import Uploads
from central.users import Users
from central.web import create_app
from central.web_auth import LoginLimits

__all__ = ["changes", "fleet", "sender", "users"]  # fixtures shared with test_dashboard
TOKEN = "upload-token-for-a1"


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


# --- hostile JSON bodies and tokens ------------------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000
HOSTILE_BODIES = [
    (DEEP, "nested deeper"),
    ('{"name": "agent.ping", "args": ' + "[" * 100 + "]" * 100 + "}", "nested deeper"),
    ('{"name": "agent.ping", "args": {"x": NaN}}', "NaN"),
    ("\xff\xfe", "not UTF-8"),
    ('{"name": ', "not JSON"),
    ("[]", "expected a JSON object"),
]


@pytest.fixture
async def upload_client(
    fleet: FleetDB, users: Users, changes: Changes, sender: RecordingSender, tmp_path: Path
) -> AsyncIterator[TestClient]:
    uploads = Uploads(fleet.location, tmp_path / "recordings")
    uploads.register_agent("a1", TOKEN)
    app = create_app(fleet, changes, sender, users=users, secret=SECRET, uploads=uploads)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
    uploads.close()


@pytest.mark.parametrize(("body", "named"), HOSTILE_BODIES)
async def test_a_hostile_command_body_gets_a_400_naming_it(
    client: TestClient, sender: RecordingSender, body: str, named: str
) -> None:
    assert await login(client, "li") == 303
    headers = {"Content-Type": "application/json"}
    response = await client.post("/api/agents/a1/commands", data=body.encode("latin-1"), headers=headers)
    assert response.status == 400, await response.text()
    assert named in (await response.json())["error"]
    assert sender.sent == []
    assert (await client.get("/api/fleet")).status == 200  # and the dashboard goes on


@pytest.mark.parametrize(("body", "named"), HOSTILE_BODIES)
async def test_a_hostile_upload_announcement_gets_a_400_naming_it(
    upload_client: TestClient, body: str, named: str
) -> None:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    response = await upload_client.post("/api/uploads", data=body.encode("latin-1"), headers=headers)
    assert response.status == 400, await response.text()
    assert named in (await response.json())["error"]


async def raw_request(client: TestClient, head: bytes, body: bytes = b"") -> bytes:
    """One HTTP/1.1 request written byte for byte (headers a client library would refuse to send)."""
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()


@pytest.mark.parametrize("token", ["\xff\xfe".encode("latin-1"), "令牌".encode(), b"\x80" * 20])
async def test_a_non_ascii_bearer_token_is_refused_with_403(upload_client: TestClient, token: bytes) -> None:
    body = json.dumps({"agent_id": "a1", "recording_id": "r1", "lesson": "", "size": 10, "sha256": "0" * 64})
    head = b"POST /api/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    answer = await raw_request(upload_client, head + b"Authorization: Bearer " + token + b"\r\n", body.encode())
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"403", answer
    assert b"token" in rest


# --- upload announcements ----------------------------------------------------------------------


def announcement(**fields: object) -> dict[str, object]:
    base = {"agent_id": "a1", "recording_id": "20261202-0800-数学", "lesson": "数学", "size": 10, "sha256": "0" * 64}
    return base | fields


@pytest.mark.parametrize(
    ("fields", "status", "named"),
    [
        ({"size": 10**15}, 413, "size: got 1000000000000000 bytes, at most 34359738368"),
        ({"recording_id": "r" * 300}, 400, "recording_id: got 300 characters"),
        ({"recording_id": "数" * 100}, 400, "recording_id: got 300 bytes"),
        ({"recording_id": "../../etc/passwd"}, 400, "recording_id: '../../etc/passwd'"),
        ({"recording_id": ".hidden"}, 400, "recording_id: '.hidden'"),
        ({"recording_id": "a\x00b"}, 400, "recording_id"),
        ({"agent_id": "a/../b"}, 400, "agent_id: 'a/../b'"),
        ({"agent_id": "a" * 129}, 400, "agent_id: got 129 characters"),
        ({"lesson": "l" * 5000}, 400, "lesson: got 5000 characters"),
        ({"started": "s" * 5000}, 400, "started: got 5000 characters"),
    ],
)
async def test_an_upload_announcement_out_of_bounds_is_refused_up_front(
    upload_client: TestClient, fleet: FleetDB, fields: dict[str, object], status: int, named: str
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = await upload_client.post("/api/uploads", json=announcement(**fields), headers=headers)
    assert response.status == status, await response.text()
    assert named in (await response.json())["error"]
    assert fleet._rows("SELECT * FROM uploads") == []  # nothing half-begun is left behind
    good = await upload_client.post("/api/uploads", json=announcement(), headers=headers)
    assert good.status == 200 and (await good.json())["state"] == "uploading"


# --- sessions end on the server ---------------------------------------------------------------


def session_cookie(client: TestClient) -> str:
    return client.session.cookie_jar.filter_cookies(client.make_url("/"))["classroom_session"].value


async def replay(client: TestClient, cookie: str) -> int:
    """A request carrying a copy of an old cookie (as a thief, or a second browser, would)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as other:
        headers = {"Cookie": f"classroom_session={cookie}"}
        async with other.get(client.make_url("/api/fleet"), headers=headers) as response:
            return response.status


async def test_logout_ends_the_session_on_the_server_not_only_in_the_browser(client: TestClient) -> None:
    assert await login(client, "li") == 303
    stolen = session_cookie(client)
    assert await replay(client, stolen) == 200
    assert (await client.post("/logout", allow_redirects=False)).status == 303
    assert await replay(client, stolen) == 401
    assert await login(client, "li") == 303  # a new login works again
    assert (await client.get("/api/fleet")).status == 200


async def test_a_password_change_from_the_command_line_ends_the_users_sessions(
    client: TestClient, fleet: FleetDB
) -> None:
    assert await login(client, "li") == 303
    old = session_cookie(client)
    assert await login(client, "wang") == 303
    other = session_cookie(client)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "central.cli", "users", "--db", str(fleet.location.target), "passwd", "li",
        stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(b"a-new-password\n"), 30)
    assert process.returncode == 0, err
    assert await replay(client, old) == 401
    assert await replay(client, other) == 200  # another user's session is left alone


async def test_a_role_change_ends_the_users_sessions(client: TestClient, users: Users) -> None:
    assert await login(client, "li") == 303
    old = session_cookie(client)
    users.set_role("li", "viewer")
    assert await replay(client, old) == 401
    assert await login(client, "li") == 303
    assert (await (await client.get("/")).text()).count('"role": "viewer"') == 1


# --- password guessing ------------------------------------------------------------------------


@pytest.fixture
def clock() -> list[float]:
    return [1000.0]


@pytest.fixture
async def throttled(
    fleet: FleetDB, users: Users, changes: Changes, sender: RecordingSender, clock: list[float]
) -> AsyncIterator[TestClient]:
    limits = LoginLimits.default(clock=lambda: clock[0])
    app = create_app(fleet, changes, sender, users=users, secret=SECRET, login_limits=limits)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def attempt(client: TestClient, username: str, password: str, client_ip: str = "") -> tuple[int, str]:
    form = {"username": username, "password": password, "next": "/"}
    headers = {"Accept-Language": "en", "Cookie": "lang=en"}
    response = await client.post("/login", data=form, headers=headers, allow_redirects=False)
    return response.status, await response.text()


async def test_password_guessing_on_one_account_slows_down_then_locks(
    throttled: TestClient, clock: list[float]
) -> None:
    statuses = []
    for _ in range(12):
        status, page = await attempt(throttled, "li", "wrong-password")
        statuses.append(status)
        if status == 429:
            assert "Too many failed logins" in page and "try again in" in page
            clock[0] += 1000  # a patient guesser waits every wait out ...
    assert statuses[:3] == [401] * 3 and 429 in statuses
    clock[0] += 1000
    status, page = await attempt(throttled, "li", PASSWORD)
    assert status == 303  # ... and the owner logs in once the lock is over
    status, page = await attempt(throttled, "wang", PASSWORD)
    assert status == 303  # other accounts were never held up


async def test_a_locked_account_refuses_even_the_right_password_until_the_lock_ends(
    throttled: TestClient, clock: list[float]
) -> None:
    for _ in range(10):
        clock[0] += 100  # slowly enough never to be told to wait, but still ten wrong in a row
        assert (await attempt(throttled, "li", "wrong-password"))[0] == 401
    status, page = await attempt(throttled, "li", PASSWORD)
    assert status == 429 and "try again in 900 s" in page
    clock[0] += 900
    assert (await attempt(throttled, "li", PASSWORD))[0] == 303


async def test_one_client_guessing_many_accounts_is_slowed_down(throttled: TestClient, clock: list[float]) -> None:
    statuses = [(await attempt(throttled, f"user{n}", "wrong-password"))[0] for n in range(14)]
    # Looser per address than per account (a school's PCs may share one), but it counts every account.
    assert statuses[:10] == [401] * 10 and statuses[11] == 429


# --- slow clients -------------------------------------------------------------------------------

DESCRIPTORS = 256  # a small descriptor limit for the centre, so that a bounded number of sockets shows it


async def half_open(port: int, count: int) -> list[asyncio.StreamWriter]:
    """`count` connections that start a request and never finish its headers (as many as get through)."""

    async def one() -> asyncio.StreamWriter:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        await writer.drain()
        return writer

    tasks = [asyncio.ensure_future(one()) for _ in range(count)]
    done, pending = await asyncio.wait(tasks, timeout=10)  # connects beyond a full backlog never complete
    for task in pending:
        task.cancel()
    return [t.result() for t in done if t.exception() is None]


async def test_half_open_connections_do_not_starve_the_dashboard(broker: LocalBroker, tmp_path: Path) -> None:
    port = free_port()
    db = fleet_at(tmp_path)
    Users(db).add("li", PASSWORD, "technician")

    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTORS, DESCRIPTORS))

    words = ["run", "--broker", broker.url, "--db", str(db), "--http", f"127.0.0.1:{port}"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "central.cli", *words, preexec_fn=few_descriptors, stderr=asyncio.subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/login"
    attackers: list[asyncio.StreamWriter] = []
    try:
        # A new connection for every request: a kept-alive one from before the attack would prove nothing.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            async with asyncio.timeout(30):
                while True:
                    with contextlib.suppress(aiohttp.ClientError):
                        async with http.get(url) as response:
                            if response.status == 200:
                                break
                    await asyncio.sleep(0.1)
            attackers = await half_open(port, DESCRIPTORS + 100)
            async with asyncio.timeout(20), http.get(url) as response:
                assert response.status == 200  # a technician still gets the login page
            form = {"username": "li", "password": PASSWORD, "next": "/"}
            async with asyncio.timeout(20), http.post(url, data=form, allow_redirects=False) as response:
                assert response.status == 303
    finally:
        for writer in attackers:
            writer.close()
        proc.kill()
        await proc.wait()


async def test_over_long_user_names_count_as_one_account(throttled: TestClient) -> None:
    """No real name is over 64 characters: names that differ only beyond that are one key, not one each."""
    statuses = [(await attempt(throttled, "x" * 10_000 + str(n), "wrong-password"))[0] for n in range(5)]
    assert statuses == [401, 401, 401, 401, 429]


async def test_an_agent_named_in_any_language_may_upload(
    upload_client: TestClient, fleet: FleetDB, tmp_path: Path
) -> None:
    uploads = Uploads(fleet.location, tmp_path / "recordings")
    uploads.register_agent("高一 (2)班", TOKEN)
    uploads.close()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = await upload_client.post("/api/uploads", json=announcement(agent_id="高一 (2)班"), headers=headers)
    assert response.status == 200, await response.text()
