"""Deliveries inside the agent: two targets from the site config, shown per target in the status, and
retention that deletes a recording only once every target has it."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from delivery_helpers import RID, check_arrived, make_recording, until
from ftp_fixture import FtpServer
from test_delivery_http import PutServer

from agent.config.media import UploadConfig
from agent.config.site import load_config, parse_config
from agent.errors import ConfigError
from agent.recording.delivery import may_delete
from agent.service import Agent
from agent.store import RecordingState
from central.mosquitto import free_port
from drivers.backoff import Backoff


def write_config(tmp: Path, ftp: FtpServer, http: PutServer) -> Path:
    path = tmp / "site.toml"
    (tmp / "secrets").mkdir()
    (tmp / "secrets" / "ftp").write_text(ftp.password + "\n")
    path.write_text(
        f"""
agent_id = "room-101"
site = "east-school"
room = "初一(3)班"
data_dir = "{tmp / "agent"}"
[broker]
url = "mqtt://127.0.0.1:1"
[http]
port = {free_port()}
[sources]
teacher = "synthetic:teacher"
[recording]
dir = "{tmp / "agent" / "recordings"}"
sources = ["teacher"]
retention_days = 7
[timetable]
timezone = "+08:00"
[[timetable.lessons]]
day = 1
start = "08:00"
end = "08:45"
name = "数学"
teacher = "王老师"
[[upload.targets]]
name = "district-ftp"
url = "ftp://127.0.0.1:{ftp.port}/recordings/room-101"
username = "{ftp.user}"
password_file = "secrets/ftp"
timeout_s = 5
[[upload.targets]]
name = "platform"
url = "{http.url}"
chunk_mib = 0.0625
timeout_s = 5
""",
        encoding="utf-8",
    )
    return path


async def test_a_recording_is_deleted_by_retention_only_once_every_target_has_it(tmp_path: Path) -> None:
    store, content = make_recording(tmp_path / "agent")  # ended in 2025: long past retention_days
    store.close()
    http = PutServer(tmp_path / "drop", "ranges")  # not started yet: the platform is down
    with FtpServer(tmp_path) as ftp:
        ftp.start()
        agent = Agent(load_config(write_config(tmp_path, ftp, http)))
        assert agent.uploader is None and agent.deliveries is not None  # no classroom-central, two targets
        agent.deliveries.backoff = lambda: Backoff(base=0.05, cap=0.3)  # the test's pace
        agent.deliveries.idle_s = 0.05
        try:
            async with asyncio.TaskGroup() as tg:
                task = tg.create_task(agent.deliveries.run())
                await until(lambda: (agent.store.delivery(RID, "district-ftp") or {}).get("state") == "delivered")
                await until(lambda: agent.deliveries.status["platform"].failures >= 1)  # type: ignore[union-attr]
                targets = agent.status()["upload"]["targets"]
                assert targets["district-ftp"] | {"last_delivered": ""} == {
                    "kind": "ftp", "url": f"ftp://127.0.0.1:{ftp.port}/recordings/room-101/", "pending": 0,
                    "delivered": 1, "given_up": 0, "current": "", "bytes_sent": 0, "size": 0, "failures": 0,
                    "last_error": "", "last_delivered": "",
                }  # fmt: skip
                assert targets["platform"]["pending"] == 1 and targets["platform"]["delivered"] == 0
                assert f"http://127.0.0.1:{http.port}/drop/" in targets["platform"]["last_error"]
                assert await agent.recording.apply_retention() == 0  # the platform lacks it: kept
                assert agent.store.recording(RID) is not None

                await http.start()
                await until(lambda: (agent.store.delivery(RID, "platform") or {}).get("state") == "delivered")
                task.cancel()
        finally:
            await http.stop()
        assert await agent.recording.apply_retention() == 1
        agent.store.close()
        agent.schedule.store.close()
    assert not (tmp_path / "agent" / "recordings" / RID).exists()
    check_arrived(ftp.root / "recordings" / "room-101", content)
    check_arrived(tmp_path / "drop", content)


def test_with_the_centre_too_a_recording_waits_for_the_centre_as_well(tmp_path: Path) -> None:
    store, _ = make_recording(tmp_path / "agent")
    try:
        row = store.recording(RID)
        assert row is not None
        centre = UploadConfig("http://central:8080", "agent-upload-token-123")
        assert may_delete(centre, None)(row) is False  # finished, not yet confirmed by the centre
        assert may_delete(centre, None)(replace(row, state=RecordingState.UPLOADED)) is True
        assert may_delete(UploadConfig("", ""), None)(row) is True  # no centre, no targets left to wait for
        assert may_delete(None, None)(row) is False  # without [upload] nothing leaves (as before)
    finally:
        store.close()


def test_a_config_with_neither_the_centre_nor_targets_or_with_too_many_targets_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"agent_id": "a1", "site": "east", "room": "101", "upload": {"targets": []}})
    assert "upload.targets: empty, expected [[upload.targets]] (or url and token for classroom-central)" in str(
        caught.value
    )
    many = [{"name": f"t{i}", "url": f"ftp://10.0.0.{i}/"} for i in range(9)]
    with pytest.raises(ConfigError) as caught:
        parse_config({"agent_id": "a1", "site": "east", "room": "101", "upload": {"targets": many}})
    assert "upload.targets: got 9 targets, expected at most 8" in str(caught.value)


def test_targets_are_checked_with_the_rest_of_the_config_and_credentials_are_never_shown(tmp_path: Path) -> None:
    secret = "pa55-in-the-url"
    targets = [
        {"name": "a", "url": f"ftp://drop:{secret}@10.0.0.9/x"},
        {"name": "b", "url": "sftp://10.0.0.9/x"},
        {"name": "bad name!", "url": "http://h/", "temp_suffix": ".p", "password": secret, "password_file": "pw"},
        {"name": "c", "url": "ftp://h/", "token": secret, "ca_file": "ca.pem", "file_name": "{agent}/{nope}",
         "encoding": "klingon", "what": 1},
        {"url": "https://h:99999/"},
        "not a table",
        {"name": "ok", "url": "ftp://h/"},
        {"name": "ok", "url": "https://h/"},
    ]  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        parse_config({"agent_id": "a1", "site": "east", "room": "101", "upload": {"targets": targets}}, base=tmp_path)
    message = str(caught.value)
    for problem in (
        "upload.targets[0].url: got 'ftp://***@10.0.0.9/x' with credentials in it, expected them in username and",
        "upload.targets[1].url: got 'sftp://10.0.0.9/x', expected ftp://",
        "upload.targets[2].name: got 'bad name!'",
        "upload.targets[2].temp_suffix: only for ftp(s) targets",
        "upload.targets[2].password_file: expected password or password_file, not both",
        "upload.targets[3].token: only for http(s) targets",
        "upload.targets[3].ca_file: only for ftps:// and https:// targets",
        "upload.targets[3].file_name: got '{agent}/{nope}'",
        "upload.targets[3].encoding: got 'klingon'",
        "upload.targets[3].what: unknown key",
        "upload.targets[4].url: got 'https://h:99999/'",
        "upload.targets[5]: got 'not a table', expected a table",
        "upload.targets[4].name: missing",
        "upload.targets[7].name: duplicate target name 'ok'",
    ):
        assert problem in message
    assert secret not in message

    (tmp_path / "pw").write_text("the-password\n")
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    good = {"name": "platform", "url": "https://platform.example/drop", "username": "room101", "password_file": "pw",
            "ca_file": "ca.pem", "file_name": "{site}-{date}-{time}-{lesson}"}  # fmt: skip
    config = parse_config(
        {"agent_id": "a1", "site": "east", "room": "101", "upload": {"targets": [good]}}, base=tmp_path
    )
    assert config.upload is not None
    (target,) = config.upload.targets
    assert (target.url, target.password, target.ca_file, target.kind) == (
        "https://platform.example/drop/", "the-password", tmp_path / "ca.pem", "http",
    )  # fmt: skip
    assert "the-password" not in repr(config)
