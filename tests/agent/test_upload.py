"""Uploading finished recordings to classroom-central: the real central app on a real port, real
files, a real agent.db; the centre stopped half way, a bad chunk, an unknown agent, the player."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agent.config.site import UploadConfig, parse_config
from agent.errors import ConfigError
from agent.recording.upload import Uploader
from agent.store import AgentStore
from central.errors import CentralError
from central.fleet_rows import Seen
from central.fleetdb import FleetDB
from central.live import Changes
from central.mosquitto import free_port
from central.upload_store import Uploads
from central.users import Users
from central.web import create_app
from contract import DeviceInfo, Info, Status, now_iso
from drivers.backoff import Backoff

SECRET = b"0123456789abcdef0123456789abcdef"
TOKEN = "agent-a1-upload-token"
CHUNK = 64 * 1024
SIZE = 16 * CHUNK + 1234  # 17 chunks, the last one short


class NoSender:
    async def send(
        self, agent_id: str, name: str, args: dict[str, Any], by: str, *, timeout: float = 10.0, ttl: float = 60.0
    ) -> dict[str, Any]:
        raise CentralError("no broker in this test")


Gate = Callable[[web.Request, Any], Awaitable[web.StreamResponse]]


class Centre:
    """classroom-central's HTTP side on a fixed loopback port, which can be stopped and started again."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.fleet = FleetDB(root / "fleet.db")
        self.fleet.write_batch(
            [
                Seen("east", "a1", Status("online", 1, now_iso(), "1.0"), now_iso()),
                Seen(
                    "east",
                    "a1",
                    Info("高一(2)班", "pc-a1", "1.0", (DeviceInfo("panel", "display", "lg-rs232"),)),
                    now_iso(),
                ),
            ]
        )
        self.users = Users(self.fleet.path)
        self.users.add("wang", "pass-word-1", "viewer")
        self.uploads: Uploads | None = None
        self.runner: web.AppRunner | None = None

    async def start(self, gate: Gate | None = None) -> None:
        self.uploads = Uploads(self.fleet.path, self.root / "recordings")  # a fresh one: as after a restart
        self.uploads.register_agent("a1", TOKEN)
        app = create_app(self.fleet, Changes(), NoSender(), users=self.users, secret=SECRET, uploads=self.uploads)
        if gate is not None:
            app.middlewares.append(web.middleware(gate))
        self.runner = web.AppRunner(app, shutdown_timeout=0.2)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        assert self.runner is not None and self.uploads is not None
        await self.runner.cleanup()
        self.uploads.close()
        self.runner = self.uploads = None

    def upload_row(self) -> dict[str, Any]:
        rows = self.fleet._rows("SELECT * FROM uploads")
        assert len(rows) == 1, rows  # never a duplicate
        return rows[0]

    def close(self) -> None:
        self.users.close()
        self.fleet.close()


@pytest.fixture
async def centre(tmp_path: Path) -> AsyncIterator[Centre]:
    running = Centre(tmp_path / "central")
    await running.start()
    yield running
    if running.runner is not None:
        await running.stop()
    running.close()


@pytest.fixture
def recording(tmp_path: Path) -> Iterator[tuple[AgentStore, bytes]]:
    """A finished recording in a real agent.db: a directory holding its final MP4 (random bytes will do)."""
    content = os.urandom(SIZE)
    folder = tmp_path / "agent" / "recordings" / "20250301-080000-math"
    folder.mkdir(parents=True)
    (folder / "recording.mp4").write_bytes(content)
    store = AgentStore(tmp_path / "agent" / "agent.db")
    store.recording_put(
        {
            "id": folder.name,
            "lesson": "数学 第3节",
            "teacher": "李老师",
            "started": "2025-03-01T08:00:00Z",
            "ended": "2025-03-01T08:45:00Z",
            "sources": ["teacher"],
            "layout": "single",
            "path": str(folder),
            "size": SIZE,
            "sha256": hashlib.sha256(content).hexdigest(),
            "state": "finished",
            "error": "",
        }  # fmt: skip
    )
    yield store, content
    store.close()


def uploader(centre: Centre, store: AgentStore, token: str = TOKEN) -> Uploader:
    config = UploadConfig(centre.url, token, chunk_mib=CHUNK / 2**20)
    return Uploader(config, "a1", store, backoff=Backoff(base=0.02, cap=0.1), idle_s=0.05)


async def until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def state(store: AgentStore) -> str:
    return str(store.recordings()[0]["state"])


async def test_a_finished_recording_arrives_whole_and_is_marked_uploaded(
    centre: Centre, recording: tuple[AgentStore, bytes]
) -> None:
    store, content = recording
    agent = uploader(centre, store)
    assert agent.telemetry()["pending"] == 1
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(agent.run())
        await until(lambda: state(store) == "uploaded")
        task.cancel()
    received = centre.fleet.recordings("a1")
    assert [(r["lesson"], r["size"]) for r in received] == [("数学 第3节", SIZE)]
    assert centre.uploads is not None
    stored = centre.uploads.recording_path(received[0]["id"])
    assert stored is not None and hashlib.sha256(stored.read_bytes()).hexdigest() == hashlib.sha256(content).hexdigest()
    assert agent.telemetry() == {"pending": 0, "current": "", "bytes_sent": 0, "last_error": ""}  # idle again
    # Announcing it again (an agent that crashed before marking it) gets the same, complete upload.
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        announce = {"agent_id": "a1", "recording_id": received[0]["recording_id"], "size": SIZE}
        async with http.post(f"{centre.url}/api/uploads", json={**announce, "sha256": received[0]["sha256"]}) as r:
            again = await r.json()
    assert (again["state"], again["offset"], again["upload_id"]) == ("complete", SIZE, centre.upload_row()["id"])
    assert len(centre.fleet.recordings("a1")) == 1


async def test_an_upload_cut_off_by_the_centre_resumes_after_both_restart(
    centre: Centre, recording: tuple[AgentStore, bytes], tmp_path: Path
) -> None:
    store, content = recording
    await centre.stop()
    answered, stuck = 0, asyncio.Event()

    async def gate(request: web.Request, handler: Any) -> web.StreamResponse:
        nonlocal answered
        response: web.StreamResponse = await handler(request)
        if request.method == "PUT":
            if answered == 5:  # the sixth chunk is written, but its answer never leaves: the centre goes down
                stuck.set()
                await asyncio.Event().wait()
            answered += 1
        return response

    await centre.start(gate)
    agent = uploader(centre, store)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(agent.run(), name="uploader[a1].run")
        await stuck.wait()
        await centre.stop()
        await until(lambda: "127.0.0.1" in agent.last_error)
        task.cancel()  # and the agent restarts too
    assert state(store) == "finished"
    assert store.upload_progress("20250301-080000-math")["offset"] == 5 * CHUNK  # confirmed, persisted
    assert centre.upload_row()["offset"] == 6 * CHUNK

    await centre.start()
    restarted = AgentStore(tmp_path / "agent" / "agent.db")
    try:
        again = uploader(centre, restarted)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(again.run())
            await until(lambda: state(restarted) == "uploaded")
            task.cancel()
    finally:
        restarted.close()
    row = centre.upload_row()
    assert (row["state"], row["offset"], row["received_bytes"]) == ("complete", SIZE, SIZE)  # each byte once
    files = [p for p in (centre.root / "recordings").rglob("*") if p.is_file()]
    assert [p.name for p in files] == ["20250301-080000-math.mp4"]
    assert hashlib.sha256(files[0].read_bytes()).hexdigest() == hashlib.sha256(content).hexdigest()


async def test_a_chunk_with_a_wrong_checksum_is_refused_and_sent_again(centre: Centre) -> None:
    chunk = os.urandom(1000)
    whole = hashlib.sha256(chunk).hexdigest()
    async with aiohttp.ClientSession(centre.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        announce = {"agent_id": "a1", "recording_id": "r1", "lesson": "x", "size": 1000, "sha256": whole}
        async with http.post("/api/uploads", json=announce) as r:
            upload = await r.json()
        assert (r.status, upload["offset"], upload["state"]) == (200, 0, "uploading")
        where = f"/api/uploads/{upload['upload_id']}"
        bad = {"X-Chunk-SHA256": hashlib.sha256(b"something else").hexdigest()}
        async with http.put(f"{where}?offset=0", data=chunk, headers=bad) as r:
            assert r.status == 400 and "checksum mismatch" in (await r.json())["error"]
        async with http.get(where) as r:
            assert (await r.json())["offset"] == 0
        async with http.put(f"{where}?offset=0", data=chunk, headers={"X-Chunk-SHA256": whole}) as r:
            assert r.status == 200 and (await r.json())["state"] == "complete"
        async with http.put(f"{where}?offset=0", data=chunk[:10], headers={"X-Chunk-SHA256": whole}) as r:
            assert r.status == 200 and (await r.json())["offset"] == 1000  # complete: a late resend changes nothing
    assert centre.upload_row()["received_bytes"] == 1000


async def test_an_unknown_agent_or_a_wrong_token_is_refused(
    centre: Centre, recording: tuple[AgentStore, bytes]
) -> None:
    async with aiohttp.ClientSession(centre.url) as http:
        announce = {"agent_id": "b9", "recording_id": "r1", "size": 10, "sha256": "0" * 64}
        async with http.post("/api/uploads", json=announce, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 403 and "'b9' is not registered for uploads" in (await r.json())["error"]
    store, _ = recording
    agent = uploader(centre, store, token="not-the-token-of-a1")
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(agent.run())
        await until(lambda: "wrong upload token" in agent.last_error)
        task.cancel()
    assert state(store) == "finished" and agent.telemetry()["pending"] == 1
    assert centre.fleet._rows("SELECT * FROM uploads") == []


async def test_the_room_page_lists_the_recording_and_plays_it_with_ranges(
    centre: Centre, recording: tuple[AgentStore, bytes]
) -> None:
    store, content = recording
    agent = uploader(centre, store)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(agent.run())
        await until(lambda: state(store) == "uploaded")
        task.cancel()
    async with aiohttp.ClientSession(centre.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # an IP host
        url = centre.fleet.recordings("a1")[0]["url"]
        async with http.get(url, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"].startswith("/login")  # humans log in
        form = {"username": "wang", "password": "pass-word-1", "next": "/"}
        async with http.post("/login", data=form, allow_redirects=False) as r:
            assert r.status == 303
        async with http.get("/room/a1") as r:
            page = await r.text()
        found = re.search(r'<script type="application/json" id="boot">(.*?)</script>', page, re.S)
        assert found is not None
        listed = json.loads(found.group(1))["data"]["recordings"]
        assert [(x["lesson"], x["size"], x["url"]) for x in listed] == [("数学 第3节", SIZE, url)]
        async with http.get(url, headers={"Range": "bytes=100-199"}) as r:
            assert r.status == 206 and r.headers["Content-Type"] == "video/mp4"
            assert await r.read() == content[100:200]


def test_the_upload_section_is_checked_with_the_rest_of_the_config() -> None:
    base = {"agent_id": "a1", "site": "east", "room": "101"}
    with pytest.raises(ConfigError) as caught:
        parse_config({**base, "upload": {"url": "ftp://central", "token": "short", "chunk_mib": 9, "x": 1}})
    message = str(caught.value)
    for key in ("upload.url", "upload.token", "upload.chunk_mib", "upload.x: unknown key"):
        assert key in message
    config = parse_config({**base, "upload": {"url": "http://central:8080/", "token": TOKEN}})
    assert config.upload == UploadConfig("http://central:8080", TOKEN, 4.0)


def test_agent_db_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """agent.db keeps the outbox (commands' arguments, alarms) and upload progress: no other user reads it."""
    store = AgentStore(tmp_path / "data" / "agent.db")
    try:
        store.upload_put("r1", offset=0)
        for name in ("agent.db", "agent.db-wal", "agent.db-shm"):
            assert (tmp_path / "data" / name).stat().st_mode & 0o777 == 0o600, name
    finally:
        store.close()
