"""Delivering recordings with HTTP PUT to a real aiohttp server on loopback: with Content-Range support
(a connection cut mid-chunk, resumed from HEAD), without it (refused with 400, or silently ignored), a
wrong token, an agent.db from before deliveries, and retention waiting for every target."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from delivery_helpers import (
    RID,
    SIZE,
    STEM,
    check_arrived,
    deliveries,
    make_recording,
    run_until,
    sha,
    state,
)

from agent.alarms import Alarms
from agent.config.delivery import DeliveryTarget
from agent.store import AgentStore
from central.mosquitto import free_port

CHUNK = 64 * 1024
RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class PutServer:
    """A PUT drop: ``ranges`` appends a ``Content-Range`` chunk at the file's end (409 elsewhere); ``refuses``
    answers a ranged PUT with 400 (RFC 9110); ``ignores`` stores any PUT's body as the whole file; ``no_head``
    takes ranges but answers HEAD with 405."""

    def __init__(self, root: Path, mode: str, *, token: str = "", cut_in_put: int = 0) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.mode, self.token, self.cut_in_put = mode, token, cut_in_put
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/drop/"
        self.puts: list[str | None] = []  # each PUT's Content-Range (None: a whole file)
        self.received = 0  # bytes of PUT bodies taken in
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_put("/drop/{name}", self.put)
        app.router.add_get("/drop/{name}", self.get)  # HEAD too: the size a resumed upload continues from
        self.runner = web.AppRunner(app, shutdown_timeout=0.2)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def refused(self, request: web.Request) -> web.Response | None:
        said = request.headers.get("Authorization", "")
        if self.token and said != f"Bearer {self.token}":
            return web.Response(status=401, text=f"unknown credentials: {said}")  # a careless server echoes them
        return None

    async def get(self, request: web.Request) -> web.StreamResponse:
        file = self.root / request.match_info["name"]
        if (refusal := self.refused(request)) is not None:
            return refusal
        if request.method == "HEAD" and self.mode == "no_head":
            return web.Response(status=405)
        return web.FileResponse(file) if file.is_file() else web.Response(status=404)

    async def put(self, request: web.Request) -> web.Response:
        if (refusal := self.refused(request)) is not None:
            return refusal
        file = self.root / request.match_info["name"]
        span = request.headers.get("Content-Range")
        self.puts.append(span)
        if span is not None and self.mode == "refuses":
            return web.Response(status=400, text="Content-Range is not supported on PUT")
        if span is None or self.mode == "ignores":
            body = await request.read()
            self.received += len(body)
            file.write_bytes(body)
            return web.Response(status=201)
        found = RANGE.fullmatch(span)
        have = file.stat().st_size if file.exists() else 0
        if found is None or int(found.group(1)) != have:
            return web.Response(status=409, text=f"have {have}")
        with file.open("ab") as f:
            if len(self.puts) == self.cut_in_put:  # half the chunk arrives, then the connection drops
                half = await request.content.readexactly(CHUNK // 2)
                self.received += len(half)
                f.write(half)
                f.flush()
                assert request.transport is not None
                request.transport.abort()
                return web.Response(status=500)
            body = await request.read()
            self.received += len(body)
            f.write(body)
        return web.Response(status=204)


@pytest.fixture
async def recording(tmp_path: Path) -> AsyncIterator[tuple[AgentStore, bytes]]:
    store, content = make_recording(tmp_path / "agent")
    yield store, content
    store.close()


def http_target(server: PutServer, **extra: object) -> DeliveryTarget:
    values = {"name": "platform", "url": server.url, "chunk_mib": CHUNK / 2**20, "timeout_s": 5.0, **extra}
    return DeliveryTarget(**values)  # type: ignore[arg-type]


async def test_a_server_that_takes_ranges_gets_chunks_and_a_cut_chunk_resumes_from_what_head_says(
    tmp_path: Path, recording: tuple[AgentStore, bytes]
) -> None:
    store, content = recording
    server = PutServer(tmp_path / "drop", "ranges", cut_in_put=5)  # the fifth PUT is cut half way
    await server.start()
    try:
        service = deliveries((http_target(server),), store)
        await run_until(service, lambda: state(store, "platform").get("state") == "delivered")
    finally:
        await server.stop()
    ranged = [p for p in server.puts if p is not None]
    assert ranged[:5] == [f"bytes {i * CHUNK}-{(i + 1) * CHUNK - 1}/{SIZE}" for i in range(5)]
    # The cut chunk was answered 409 when sent again (aiohttp sends an idempotent PUT again once on a fresh
    # connection, or the agent's next attempt does): the agent then continues from the length HEAD gives.
    resumed = f"bytes {4 * CHUNK + CHUNK // 2}-{5 * CHUNK + CHUNK // 2 - 1}/{SIZE}"
    assert resumed in ranged and ranged.index(resumed) <= 6
    assert server.puts.count(None) == 2  # the .sha256 and the .json, whole
    assert server.received == SIZE + len((tmp_path / "drop" / f"{STEM}.sha256").read_bytes()) + len(
        (tmp_path / "drop" / f"{STEM}.json").read_bytes()
    )  # every byte of the recording sent once
    check_arrived(tmp_path / "drop", content)
    assert state(store, "platform")["ranges"] == 1  # known now: later recordings go in chunks straight away


@pytest.mark.parametrize("mode", ["refuses", "ignores", "no_head"])
async def test_a_server_without_ranges_or_head_gets_the_whole_file_and_agent_db_remembers(
    tmp_path: Path, recording: tuple[AgentStore, bytes], mode: str
) -> None:
    store, content = recording
    server = PutServer(tmp_path / "drop", mode)
    await server.start()
    try:
        service = deliveries((http_target(server),), store)
        await run_until(service, lambda: state(store, "platform").get("state") == "delivered")
    finally:
        await server.stop()
    ranged = [p for p in server.puts if p is not None]
    # A refusal shows at the first chunk; a server that ignores the range, at the second (the file did not
    # grow); without HEAD nothing could be resumed or checked, so no range is tried.
    assert len(ranged) == {"refuses": 1, "ignores": 2, "no_head": 0}[mode]
    assert server.puts[len(ranged) :] == [None, None, None]  # then the whole file and the two sidecars
    check_arrived(tmp_path / "drop", content)
    assert state(store, "platform")["ranges"] == (-1 if mode == "no_head" else 0)


async def test_a_wrong_token_is_a_clear_failure_and_the_token_is_never_shown(
    tmp_path: Path, recording: tuple[AgentStore, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store, _ = recording
    wrong = "wrong-token-0123456789abcdef"
    server = PutServer(tmp_path / "drop", "ranges", token="the-right-token-0123456789")
    await server.start()
    alarms = Alarms(lambda event: None)
    try:
        service = deliveries((http_target(server, token=wrong),), store, alarms)
        await run_until(service, lambda: service.status["platform"].failures >= 3)
    finally:
        await server.stop()
    error = state(store, "platform")["error"]
    assert state(store, "platform")["state"] == "pending"
    assert "HEAD refused (401)" in error and "check username and password (or token)" in error, error
    status = json.dumps(service.telemetry())
    for shown in (caplog.text, status, error, alarms.open[("delivery_failed", "platform")].message):
        assert wrong not in shown
    assert not list((tmp_path / "drop").iterdir())


async def test_an_agent_db_from_before_deliveries_is_brought_up_to_date_and_its_recordings_delivered(
    tmp_path: Path,
) -> None:
    """An older agent's agent.db: no deliveries table, and tables missing columns added since."""
    content = b"\x00\x01" * (SIZE // 2) + b"\x02"
    folder = tmp_path / "agent" / "recordings" / RID
    folder.mkdir(parents=True)
    (folder / "recording.mp4").write_bytes(content)
    db = sqlite3.connect(tmp_path / "agent" / "agent.db")
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE recordings (id TEXT PRIMARY KEY, lesson TEXT, teacher TEXT, started TEXT, ended TEXT,
            sources TEXT, layout TEXT, path TEXT, size INTEGER DEFAULT 0, sha256 TEXT, state TEXT);
        CREATE TABLE uploads (recording_id TEXT PRIMARY KEY, upload_id TEXT, offset INTEGER DEFAULT 0,
            size INTEGER, error TEXT, updated FLOAT);
        """
    )
    db.execute(
        "INSERT INTO recordings VALUES (?, '数学 第3节', '', '2025-03-03T00:00:05Z', '2025-03-03T00:44:50Z',"
        " '[\"teacher\"]', 'single', ?, ?, ?, 'uploaded')",
        (RID, str(folder), SIZE, sha(content)),
    )
    db.commit()
    db.close()
    store = AgentStore(tmp_path / "agent" / "agent.db")
    server = PutServer(tmp_path / "drop", "ranges")
    await server.start()
    try:
        assert store.recording(RID) is not None and store.recording(RID).error == ""  # type: ignore[union-attr]
        store.upload_put(RID, error_final=0)  # a column the old file lacked
        service = deliveries((http_target(server),), store)
        await run_until(service, lambda: state(store, "platform").get("state") == "delivered")
    finally:
        await server.stop()
        store.close()
    check_arrived(tmp_path / "drop", content)


async def test_a_recording_whose_file_is_gone_is_given_up_with_a_critical_alarm_until_restored_and_restarted(
    tmp_path: Path, recording: tuple[AgentStore, bytes]
) -> None:
    store, content = recording
    final = tmp_path / "agent" / "recordings" / RID / "recording.mp4"
    final.rename(final.with_suffix(".kept"))  # someone moved it away
    server = PutServer(tmp_path / "drop", "ranges")
    await server.start()
    alarms = Alarms(lambda event: None)
    try:
        service = deliveries((http_target(server),), store, alarms)
        await run_until(service, lambda: state(store, "platform").get("state") == "given_up")
        assert service.pending("platform") == [] and service.telemetry()["platform"]["given_up"] == 1
        alarm = alarms.open[("delivery_failed", "platform")]
        assert alarm.severity == "critical" and "cannot read" in alarm.message and "recording.mp4" in alarm.message
        assert server.puts == []  # nothing was sent

        final.with_suffix(".kept").rename(final)  # restored; the technician restarts the delivery service
        await run_until(service, lambda: state(store, "platform").get("state") == "delivered")
    finally:
        await server.stop()
    check_arrived(tmp_path / "drop", content)
    assert ("delivery_failed", "platform") not in alarms.open
