"""When the centre's copy goes bad or is refused: sent again from zero, given up with an alarm, upload.retry."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from test_upload import CHUNK, SIZE, TOKEN, Centre, centre, recording, state, until, uploader

from agent.alarms import Alarms
from agent.commands.record import add_record_commands
from agent.commands.table import CommandTable
from agent.config.site import UploadConfig
from agent.recording.service import RecordingService
from agent.recording.upload import Uploader
from agent.store import AgentStore
from drivers.backoff import Backoff

__all__ = ["centre", "recording"]  # the fixtures, used by name


async def test_a_copy_corrupted_at_the_centre_is_reset_and_sent_again_from_zero(
    centre: Centre, recording: tuple[AgentStore, bytes]
) -> None:
    store, content = recording
    await centre.stop()
    corrupted = False

    async def gate(request: web.Request, handler: Any) -> web.StreamResponse:
        nonlocal corrupted
        response: web.StreamResponse = await handler(request)
        if request.method == "PUT" and not corrupted:  # the centre's disk flips a byte of what it received
            corrupted = True
            partial = next((centre.root / "recordings" / ".partial").glob("*.part"))
            with partial.open("r+b") as f:
                first = f.read(1)
                f.seek(0)
                f.write(bytes([first[0] ^ 0xFF]))
        return response

    await centre.start(gate)
    alarms = Alarms(lambda event: None)
    agent = Uploader(UploadConfig(centre.url, TOKEN, chunk_mib=CHUNK / 2**20), "a1", store, alarms,
                     backoff=Backoff(base=0.02, cap=0.1), idle_s=0.05)  # fmt: skip
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(agent.run())
        await until(lambda: state(store) == "uploaded")
        task.cancel()
    row = centre.upload_row()  # the same upload, started again: no duplicate
    assert (row["state"], row["offset"], row["resets"]) == ("complete", SIZE, 1)
    files = [p for p in (centre.root / "recordings").rglob("*") if p.is_file()]
    assert [p.name for p in files] == ["20250301-080000-math.mp4"]  # the bad copy is gone
    assert hashlib.sha256(files[0].read_bytes()).hexdigest() == hashlib.sha256(content).hexdigest()
    assert ("upload_failed", "") not in alarms.open


async def test_a_recording_that_keeps_failing_its_checksum_is_given_up_after_the_resets_with_an_alarm(
    centre: Centre, recording: tuple[AgentStore, bytes], tmp_path: Path
) -> None:
    store, content = recording
    final = tmp_path / "agent" / "recordings" / "20250301-080000-math" / "recording.mp4"
    final.write_bytes(content[:100] + bytes([content[100] ^ 0xFF]) + content[101:])  # rotted on this PC's disk
    alarms = Alarms(lambda event: None)
    agent = Uploader(UploadConfig(centre.url, TOKEN, chunk_mib=CHUNK / 2**20), "a1", store, alarms,
                     backoff=Backoff(base=0.02, cap=0.1), idle_s=0.05, max_resets=2)  # fmt: skip
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(agent.run())
        await until(lambda: (store.upload_progress("20250301-080000-math") or {}).get("error_final") == 1)
        task.cancel()
    assert state(store) == "finished" and agent.telemetry()["pending"] == 0  # not sent a fourth time
    row = centre.upload_row()
    assert (row["state"], row["resets"]) == ("failed", 2)
    alarm = alarms.open[("upload_failed", "")]
    assert alarm.severity == "critical" and "failed its whole-file checksum 3 times, giving up" in alarm.message
    assert centre.fleet.recordings("a1") == []


async def test_a_technician_sends_a_given_up_recording_again_from_zero_with_upload_retry(
    centre: Centre, recording: tuple[AgentStore, bytes], tmp_path: Path
) -> None:
    store, content = recording
    rid = "20250301-080000-math"
    final = tmp_path / "agent" / "recordings" / rid / "recording.mp4"
    final.write_bytes(content[:100] + bytes([content[100] ^ 0xFF]) + content[101:])  # rotted on this PC's disk
    alarms = Alarms(lambda event: None)
    table = CommandTable()
    add_record_commands(table, RecordingService(None, {}, store, alarms))

    async def upload_until(done: Callable[[], bool]) -> None:
        agent = Uploader(UploadConfig(centre.url, TOKEN, chunk_mib=CHUNK / 2**20), "a1", store, alarms,
                         backoff=Backoff(base=0.02, cap=0.1), idle_s=0.05, max_resets=1)  # fmt: skip
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(agent.run())
            await until(done)
            task.cancel()

    not_yet = await table.execute("upload.retry", {"recording": rid})
    assert not_yet.status == "rejected" and "has not begun: it does by itself, with [upload]" in not_yet.error
    await centre.stop()
    await upload_until(lambda: bool((store.upload_progress(rid) or {}).get("error")))  # the centre is down
    pending = await table.execute("upload.retry", {"recording": rid})
    assert pending.status == "rejected" and "was not given up: it is retried by itself" in pending.error
    await centre.start()
    await upload_until(lambda: (store.upload_progress(rid) or {}).get("error_final") == 1)
    assert (centre.upload_row()["state"], centre.upload_row()["resets"]) == ("failed", 1)

    unknown = await table.execute("upload.retry", {"recording": "nope"})
    assert unknown.status == "rejected"
    assert unknown.error == f"recording: got 'nope', expected a recording in agent.db; given up: {rid}"
    final.write_bytes(content)  # the technician restored the file from the backup
    retried = await table.execute("upload.retry", {"recording": rid}, by="technician", door="mqtt")
    assert retried.status == "succeeded", retried
    assert retried.result["pending"] is True and "giving up" in retried.result["was"]
    await upload_until(lambda: state(store) == "uploaded")

    row = centre.upload_row()  # the same upload, started over: no duplicate, the give-up count from 0
    assert (row["state"], row["offset"], row["resets"]) == ("complete", SIZE, 0)
    files = [p for p in (centre.root / "recordings").rglob("*") if p.is_file()]
    assert [p.name for p in files] == [f"{rid}.mp4"]  # the bad copy kept aside is gone
    assert hashlib.sha256(files[0].read_bytes()).hexdigest() == hashlib.sha256(content).hexdigest()
    assert [r["size"] for r in centre.fleet.recordings("a1")] == [SIZE]
    assert ("upload_failed", "") not in alarms.open
    done = await table.execute("upload.retry", {"recording": rid})
    assert done.status == "rejected" and "is uploaded already" in done.error


async def test_a_fresh_announce_starts_an_unfinished_upload_over_but_never_a_complete_one(centre: Centre) -> None:
    first, second = os.urandom(1000), os.urandom(800)
    async with aiohttp.ClientSession(centre.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:

        async def announce(content: bytes, **extra: Any) -> tuple[int, dict[str, Any]]:
            body = {"agent_id": "a1", "recording_id": "r1", "size": len(content)}
            async with http.post("/api/uploads", json={**body, "sha256": sha(content), **extra}) as r:
                return r.status, await r.json()

        status, upload = await announce(first)
        where = f"/api/uploads/{upload['upload_id']}"
        async with http.put(f"{where}?offset=0", data=first[:500], headers={"X-Chunk-SHA256": sha(first[:500])}) as r:
            assert (await r.json())["offset"] == 500
        status, changed = await announce(second)  # the file changed on the agent: refused as before
        assert status == 409 and "was announced with 1000 bytes" in changed["error"]
        status, again = await announce(second, fresh=True)  # upload.retry: what was received is discarded
        assert (status, again["upload_id"], again["offset"], again["size"]) == (200, upload["upload_id"], 0, 800)
        async with http.put(f"{where}?offset=0", data=second, headers={"X-Chunk-SHA256": sha(second)}) as r:
            assert (await r.json())["state"] == "complete"
        status, kept = await announce(first, fresh=True)  # never over a complete recording
        assert status == 409 and (kept["state"], kept["size"]) == ("complete", 800)
        status, bad = await announce(first, fresh="yes")
        assert status == 400 and bad["error"] == "fresh: got 'yes', expected true or false"
    stored = [p for p in (centre.root / "recordings").rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in stored] == [second]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_a_recording_the_centre_refuses_up_front_is_given_up_with_its_reason(
    centre: Centre, recording: tuple[AgentStore, bytes]
) -> None:
    """An id the centre cannot store (300 characters) is refused with 400 once, not retried forever."""
    store, _ = recording
    row = store.recordings()[0]
    long_id = "r" * 300
    store.recording_put({**row, "id": long_id})
    store.recording_put({**row, "state": "uploaded"})  # only the long one is pending
    agent = uploader(centre, store)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(agent.run())
        await until(lambda: (store.upload_progress(long_id) or {}).get("error_final") == 1)
        task.cancel()
    error = str((store.upload_progress(long_id) or {})["error"])
    assert "(400)" in error and "recording_id: got 300 characters" in error
    assert centre.fleet._rows("SELECT * FROM uploads") == []
