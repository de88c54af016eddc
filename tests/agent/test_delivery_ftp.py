"""Delivering recordings to a real FTP / FTPS server (pyftpdlib in its own process, on loopback): the server
dying mid-file, REST and APPE, wrong credentials, a self-signed certificate, the agent restarting mid-upload."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from delivery_helpers import RID, SIZE, STEM, check_arrived, deliveries, make_recording, run_until, state
from ftp_fixture import FtpServer, self_signed

from agent.alarms import Alarms
from agent.config.delivery import DeliveryTarget
from agent.config.site import parse_config
from agent.store import AgentStore

SITE = {"agent_id": "room-101", "site": "east-school", "room": "初一(3)班"}


def ftp_target(server: FtpServer, **extra: object) -> DeliveryTarget:
    values = {"name": "drop", "url": f"ftp://127.0.0.1:{server.port}/recordings/room-101/", "username": server.user,
              "password": server.password, "timeout_s": 5.0, **extra}  # fmt: skip
    return DeliveryTarget(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("rest", [True, False], ids=["REST", "APPE"])
async def test_a_file_cut_off_by_the_server_dying_resumes_where_the_server_stopped_and_arrives_whole(
    tmp_path: Path, rest: bool
) -> None:
    store, content = make_recording(tmp_path / "agent")
    with FtpServer(tmp_path) as server:
        server.start(cut_after=SIZE // 3, no_rest=not rest)  # dies a third of the way through the file
        service = deliveries((ftp_target(server),), store)
        folder = server.root / "recordings" / "room-101"
        part = folder / f"{STEM}.mp4.part"

        try:
            await run_until(service, lambda: server.process is not None and server.process.poll() is not None)
            cut_at = part.stat().st_size
            assert SIZE // 3 <= cut_at < SIZE
            await run_until(service, lambda: "drop" in service.status and service.status["drop"].failures >= 1)
            assert state(store, "drop")["state"] == "pending" and "127.0.0.1" in state(store, "drop")["error"]
            server.start(no_rest=not rest)  # back, with what it had written
            await run_until(service, lambda: state(store, "drop").get("state") == "delivered")
        finally:
            store.close()
        commands = server.commands()
    resumed = [c for c in commands if c in (f"REST {cut_at}", f"APPE {STEM}.mp4.part")]
    # Not sent again from 0: REST at what the server had, or (REST refused) APPE to it.
    assert resumed == [f"REST {cut_at}"] + ([] if rest else [f"APPE {STEM}.mp4.part"])
    assert commands.count(f"STOR {STEM}.mp4.part") == (2 if rest else 1)  # the first, and REST's continuation
    check_arrived(folder, content)
    assert not part.exists()  # renamed to its name only once whole


async def test_wrong_credentials_fail_clearly_are_retried_and_a_restarted_agent_with_the_right_ones_delivers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store, content = make_recording(tmp_path / "agent")
    wrong = "wrong-secret-4242"
    with FtpServer(tmp_path) as server:
        server.start()
        url = f"ftp://127.0.0.1:{server.port}/recordings/room-101"
        spec = {"name": "drop", "url": url, "username": "drop", "password": wrong, "timeout_s": 5}
        config = parse_config({**SITE, "upload": {"targets": [spec]}})
        assert config.upload is not None and config.upload.url == ""  # no classroom-central: only the drop
        alarms = Alarms(lambda event: None)
        service = deliveries(config.upload.targets, store, alarms)
        await run_until(service, lambda: service.status["drop"].failures >= 3)
        row = state(store, "drop")
        assert row["state"] == "pending"  # retried with the backoff, never given up
        assert "login: refused: 530" in row["error"] and "check username and password" in row["error"]
        alarm = alarms.open[("delivery_failed", "drop")]
        assert alarm.severity == "warning" and "530" in alarm.message
        status = json.dumps(service.telemetry(), ensure_ascii=False)
        assert service.telemetry()["drop"]["pending"] == 1 and "530" in status
        for shown in (caplog.text, status, row["error"], alarm.message, repr(config)):
            assert wrong not in shown
        assert not (server.root / "recordings").exists()
        store.close()

        # The technician fixes the password (in a file this time) and the agent restarts.
        (tmp_path / "ftp-password").write_text(server.password + "\n")
        spec = {**spec, "password": "", "password_file": str(tmp_path / "ftp-password")}
        config = parse_config({**SITE, "upload": {"targets": [spec]}})
        assert config.upload is not None and config.upload.targets[0].password == server.password
        store = AgentStore(tmp_path / "agent" / "agent.db")
        try:
            service = deliveries(config.upload.targets, store, alarms)
            await run_until(service, lambda: state(store, "drop").get("state") == "delivered")
            assert state(store, "drop")["attempts"] >= 4 and state(store, "drop")["error"] == ""
        finally:
            store.close()
    assert ("delivery_failed", "drop") not in alarms.open  # cleared by the delivery
    check_arrived(server.root / "recordings" / "room-101", content)
    assert server.password not in caplog.text


async def test_ftps_with_a_self_signed_certificate_is_refused_until_ca_file_trusts_it(tmp_path: Path) -> None:
    store, content = make_recording(tmp_path / "agent")
    cert, key = self_signed(tmp_path / "tls")
    try:
        with FtpServer(tmp_path) as server:
            server.start(tls=(cert, key))  # TLS required on the control and the data connections
            untrusted = ftp_target(server, url=f"ftps://127.0.0.1:{server.port}/recordings/room-101/")
            service = deliveries((untrusted,), store)
            await run_until(service, lambda: state(store, "drop").get("error"))
            error = state(store, "drop")["error"]
            assert "TLS certificate not trusted" in error and "set ca_file" in error, error
            assert "USER drop" not in server.commands()  # nothing was said before the certificate was checked

            trusted = ftp_target(server, url=untrusted.url, ca_file=cert)
            service = deliveries((trusted,), store)
            await run_until(service, lambda: state(store, "drop").get("state") == "delivered")
            commands = server.commands()
    finally:
        store.close()
    assert commands.index("AUTH TLS") < commands.index("USER drop") < commands.index("PROT P")
    check_arrived(server.root / "recordings" / "room-101", content)


async def test_an_agent_restarted_mid_upload_continues_from_where_agent_db_and_the_server_left_it(
    tmp_path: Path,
) -> None:
    store, content = make_recording(tmp_path / "agent")
    with FtpServer(tmp_path) as server:
        server.start(rate=400_000)  # a slow uplink: the agent stops while the file is under way
        part = server.root / "recordings" / "room-101" / f"{STEM}.mp4.part"
        target = ftp_target(server)
        service = deliveries((target,), store)
        await run_until(service, lambda: part.exists() and part.stat().st_size > 100_000)
        saved = state(store, "drop")  # what the stopped agent left in agent.db
        assert (saved["state"], saved["attempts"], saved["size"]) == ("pending", 1, SIZE) and saved["offset"] > 0
        assert saved["dest"] == f"ftp://127.0.0.1:{server.port}/recordings/room-101/{STEM}.mp4"
        assert service.telemetry()["drop"]["pending"] == 1
        store.close()
        seen = part.stat().st_size  # the server's part when the agent stopped

        restarted = AgentStore(tmp_path / "agent" / "agent.db")
        try:
            service = deliveries((target,), restarted)
            assert [r.id for r in service.pending("drop")] == [RID]
            await run_until(service, lambda: state(restarted, "drop").get("state") == "delivered")
            assert state(restarted, "drop")["attempts"] == 2  # the count went on from agent.db
            assert service.telemetry()["drop"]["pending"] == 0 and service.telemetry()["drop"]["delivered"] == 1
        finally:
            restarted.close()
        rests = [c for c in server.commands() if c.startswith("REST ")]
    assert len(rests) == 1  # resumed once, at what the server had, not sent again from 0
    # The stop reset the data connection: the server kept what it had read, not what sat in the kernel's buffers.
    assert seen <= int(rests[0].split()[1]) < SIZE
    check_arrived(server.root / "recordings" / "room-101", content)
