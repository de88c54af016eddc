"""The PC's own power through the agent's command table: Wake-on-LAN on loopback, OS shutdown/reboot by script.

No test ever powers anything off: ``[power] shutdown_command`` / ``reboot_command`` run a real
script that writes down its arguments.  Magic packets go to 127.0.0.1 only, where a real UDP
socket reads them back byte for byte.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_service import listen, running

from agent.config.site import SiteConfig, load_config
from agent.service import Agent
from central.mosquitto import LocalBroker, free_port

SITE, AGENT = "power-school", "room-9"
MAC = "02:1b:21:a4:c3:f0"
PACKET = b"\xff" * 6 + bytes.fromhex("021b21a4c3f0") * 16
RECORDER = """
import json, pathlib, sys
pathlib.Path(sys.argv[1]).write_text(json.dumps(sys.argv[2:]))
print("scheduled", *sys.argv[2:])
"""

REFUSER = """
import sys, time
if sys.argv[1] == "hang":
    time.sleep(60)
print("Access denied")
sys.exit(3)
"""


def write_config(tmp: Path, broker_url: str, power: str, extra: str = "") -> Path:
    """A room with synthetic sources, a small recording setup, and `power` as its [power] section."""
    path = tmp / "site.toml"
    path.write_text(
        f"""
agent_id = "{AGENT}"
site = "{SITE}"
room = "电源教室"
data_dir = "{tmp / "var"}"
[broker]
url = "{broker_url}"
[http]
port = {free_port()}
[sources]
teacher = "synthetic:teacher"
[recording]
dir = "{tmp / "recordings"}"
layout = "single"
sources = ["teacher"]
size = "320x240"
fps = 10
audio = "none"
planned_minutes = 1
disk_min_free_gb = 0.01
[power]
{power}
{extra}
""",
        encoding="utf-8",
    )
    return path


def recorder(tmp: Path, name: str) -> tuple[str, Path]:
    """A TOML argument list running a script that records its arguments in a file (and the file)."""
    script, record = tmp / "record_args.py", tmp / f"{name}.json"
    script.write_text(RECORDER, encoding="utf-8")
    return json.dumps([sys.executable, str(script), str(record)]), record


def power_config(tmp: Path, broker: LocalBroker, timeout_s: float = 30) -> tuple[SiteConfig, Path, Path]:
    shutdown, off = recorder(tmp, "shutdown")
    reboot, again = recorder(tmp, "reboot")
    power = f"""
shutdown_command = {shutdown[:-1]}, "poweroff", "{{delay_s}}", "+{{delay_min}}"]
reboot_command = {reboot[:-1]}, "reboot", "{{delay_s}}"]
command_timeout_s = {timeout_s}
mac = "{MAC}"
broadcast = "127.0.0.1"
"""
    return load_config(write_config(tmp, broker.url, power)), off, again


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock
    sock.close()


async def received(sock: socket.socket) -> bytes:
    data, _ = await asyncio.to_thread(sock.recvfrom, 2048)
    return data


async def test_power_wake_sends_the_magic_packet_for_every_written_form(
    tmp_path: Path, broker: LocalBroker, listener: socket.socket
) -> None:
    port = listener.getsockname()[1]
    config, _, _ = power_config(tmp_path, broker)
    async with running(config) as agent:
        for form in ("02:1b:21:a4:c3:f0", "02-1B-21-A4-C3-F0", "021b21a4c3f0"):
            args = {"mac": form, "broadcast": "127.0.0.1", "port": port, "target": "room-7"}
            outcome = await agent.table.execute("power.wake", args, by="tech", door="mqtt")
            assert outcome.status == "succeeded", outcome
            assert outcome.result == {
                "mac": MAC, "sent_to": [f"127.0.0.1:{port}"], "bytes": 102, "target": "room-7",
            }  # fmt: skip
            assert await received(listener) == PACKET
        # All digits: ``mac=201211211211`` on the command line arrives as a JSON number.
        digits = await agent.table.execute("power.wake", {"mac": 201211211211, "broadcast": "127.0.0.1", "port": port})
        assert digits.status == "succeeded" and digits.result["mac"] == "20:12:11:21:12:11"
        assert await received(listener) == b"\xff" * 6 + bytes.fromhex("201211211211") * 16


async def test_bad_macs_addresses_and_ports_are_rejected_and_send_nothing(
    tmp_path: Path, broker: LocalBroker, listener: socket.socket
) -> None:
    port = listener.getsockname()[1]
    config, _, _ = power_config(tmp_path, broker)
    async with running(config) as agent:
        wake = agent.table.execute
        for mac in ("02:1b:21:a4:c3", "021b.21a4.c3f0", "ff:ff:ff:ff:ff:ff", "zz:1b:21:a4:c3:f0", 7, ""):
            outcome = await wake("power.wake", {"mac": mac, "broadcast": "127.0.0.1", "port": port})
            assert outcome.status == "rejected" and outcome.error.startswith("mac: "), outcome
        for address in ("example.com", "::1", "0.0.0.0", "239.255.255.250", "10.0.0.300"):
            outcome = await wake("power.wake", {"mac": MAC, "broadcast": address, "port": port})
            assert outcome.status == "rejected" and outcome.error.startswith("broadcast: "), outcome
        for bad in ({"port": 0}, {"port": 70000}, {"target": "a/b"}, {"via": "x"}):
            outcome = await wake("power.wake", {"mac": MAC, "broadcast": "127.0.0.1", **bad})
            assert outcome.status == "rejected", outcome
        good = await wake("power.wake", {"mac": MAC, "broadcast": "127.0.0.1", "port": port})
        assert good.status == "succeeded"
        assert await received(listener) == PACKET  # the first datagram that came: none of the rejected ones


async def test_shutdown_and_reboot_run_the_configured_command_with_the_delay(
    tmp_path: Path, broker: LocalBroker
) -> None:
    config, off, again = power_config(tmp_path, broker)
    async with running(config) as agent, listen(broker, f"classroom/v1/{SITE}/{AGENT}/event") as (inbox, _):
        shutdown = await agent.table.execute("agent.shutdown", {"delay_s": 90}, by="tech-li", door="mqtt")
        assert shutdown.status == "succeeded", shutdown
        assert json.loads(off.read_text()) == ["poweroff", "90", "+2"]  # {delay_min} rounds up
        assert shutdown.result["output"] == "scheduled poweroff 90 +2" and shutdown.result["cut_short"] == []
        reboot = await agent.table.execute("agent.reboot", {}, by="tech-li", door="mqtt")
        assert reboot.status == "succeeded" and json.loads(again.read_text()) == ["reboot", "0"]
        default = await agent.table.execute("agent.shutdown", {}, by="tech-li", door="local")
        assert default.status == "succeeded" and json.loads(off.read_text()) == ["poweroff", "60", "+1"]
        for bad in ({"delay_s": -1}, {"delay_s": 86401}, {"force": "maybe"}, {"now": True}):
            assert (await agent.table.execute("agent.shutdown", bad)).status == "rejected"
        audit = lambda: [e for e in inbox.messages if e[1].get("command") in ("agent.shutdown", "agent.reboot")]  # noqa: E731
        await inbox.until(lambda: len(audit()) == 7)
        assert [(e[1]["command"], e[1]["by"], e[1]["status"]) for e in audit()][:3] == [
            ("agent.shutdown", "tech-li", "succeeded"), ("agent.reboot", "tech-li", "succeeded"),
            ("agent.shutdown", "tech-li", "succeeded"),
        ]  # fmt: skip


async def test_a_recording_refuses_shutdown_and_reboot_unless_forced(tmp_path: Path, broker: LocalBroker) -> None:
    config, off, again = power_config(tmp_path, broker)
    async with running(config) as agent:
        started = await agent.table.execute("record.start", {"lesson": "物理"}, by="test", door="local")
        assert started.status == "succeeded", started
        for name, record in (("agent.shutdown", off), ("agent.reboot", again)):
            refused = await agent.table.execute(name, {"delay_s": 0})
            assert refused.status == "rejected" and "recording 物理" in refused.error and "force=true" in refused.error
            assert not record.exists()  # the OS command never ran
        forced = await agent.table.execute("agent.shutdown", {"delay_s": 0, "force": "true"})
        assert forced.status == "succeeded" and forced.result["cut_short"] == ["recording 物理"]
        assert json.loads(off.read_text()) == ["poweroff", "0", "+0"]
        assert (await agent.table.execute("record.stop", {})).status == "succeeded"
        after = await agent.table.execute("agent.reboot", {})
        assert after.status == "succeeded" and json.loads(again.read_text()) == ["reboot", "0"]


async def test_a_command_that_fails_is_missing_or_hangs_is_a_clear_failure(tmp_path: Path, broker: LocalBroker) -> None:
    script = tmp_path / "refuse.py"
    script.write_text(REFUSER, encoding="utf-8")
    power = f"""
shutdown_command = {json.dumps([sys.executable, str(script), "fail"])}
reboot_command = {json.dumps([sys.executable, str(script), "hang"])}
command_timeout_s = 1
"""
    agent = Agent(load_config(write_config(tmp_path, broker.url, power)))
    try:
        failed = await agent.table.execute("agent.shutdown", {"delay_s": 5})
        assert failed.status == "failed" and "exited with status 3: Access denied" in failed.error
        hung = await agent.table.execute("agent.reboot", {})
        assert hung.status == "failed" and "did not finish within 1 s (killed)" in hung.error
    finally:
        agent.store.close()
        agent.schedule.store.close()
    missing = f'shutdown_command = ["{tmp_path / "no-such-program"}"]'
    (tmp_path / "other").mkdir()
    agent = Agent(load_config(write_config(tmp_path / "other", broker.url, missing)))
    try:
        gone = await agent.table.execute("agent.shutdown", {})
        assert gone.status == "failed" and gone.error.startswith("shutdown: cannot run ")
    finally:
        agent.store.close()
        agent.schedule.store.close()
