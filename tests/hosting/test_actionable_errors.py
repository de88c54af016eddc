"""Errors a person can act on: one line naming the port or folder and what to change, exit 2, no traceback.

Each program runs as a real process; the taken port is held by a real listening socket.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
AGENT = [str(BIN / "classroom-agent")] if (BIN / "classroom-agent").is_file() else [sys.executable, "-m", "agent.cli"]
CENTRAL = (
    [str(BIN / "classroom-central")] if (BIN / "classroom-central").is_file() else [sys.executable, "-m", "central.cli"]
)
NO_BROKER = "mqtt://127.0.0.1:1"  # nothing listens on port 1: the programs must fail before they would care


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another program is listening on."""
    with socket.create_server(("127.0.0.1", 0)) as holder:
        yield holder.getsockname()[1]


def run(command: list[str], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=120, check=False, env={**os.environ, **env}
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def site_config(tmp_path: Path, port: int, data_dir: Path) -> Path:
    config = tmp_path / "site.toml"
    config.write_text(
        f'agent_id = "room-101"\nsite = "school-9"\nroom = "初一(3)班"\ndata_dir = "{data_dir}"\n'
        f'[broker]\nurl = "{NO_BROKER}"\n[http]\nport = {port}\n'
        '[[devices]]\nid = "panel"\nprofile = "samsung-mdc"\naddress = "sim"\n'
    )
    return config


def test_agent_with_its_local_api_port_taken_says_which_port_and_which_setting(tmp_path: Path, taken_port: int) -> None:
    config = site_config(tmp_path, taken_port, tmp_path / "data")
    line = one_line(run(AGENT, "run", "--config", str(config)))
    assert f"127.0.0.1:{taken_port}" in line
    assert "already in use" in line
    assert f"set another [http] port (or host) in {config}" in line


def test_centre_with_its_dashboard_port_taken_says_which_port_and_which_flag(tmp_path: Path, taken_port: int) -> None:
    http = f"127.0.0.1:{taken_port}"
    done = run(CENTRAL, "run", "--broker", NO_BROKER, "--db", str(tmp_path / "fleet.db"), "--http", http)
    line = one_line(done)
    assert line.startswith(f"classroom-central: error: --http {http}: cannot listen on {http}: ")
    assert "already in use" in line


def test_demo_with_its_dashboard_port_taken_says_so_at_once(tmp_path: Path, taken_port: int) -> None:
    done = run(AGENT, "demo", "--http", f"127.0.0.1:{taken_port}", "--data", str(tmp_path))
    line = one_line(done)
    assert f"cannot listen on 127.0.0.1:{taken_port}" in line
    assert "--http" in line
    assert "simulated panel" not in done.stdout  # before the walkthrough, not after it
    assert not (tmp_path / "broker").exists()  # and before any broker was started


def test_agent_whose_data_dir_cannot_be_made_names_the_key(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder's parent should be\n")
    config = site_config(tmp_path, 0, blocker / "data")
    line = one_line(run(AGENT, "run", "--config", str(config)))
    assert line.startswith(f"classroom-agent: error: data_dir: cannot create {blocker / 'data'}")


def test_centre_whose_db_folder_is_missing_names_the_flag(tmp_path: Path) -> None:
    db = tmp_path / "no-such-folder" / "fleet.db"
    line = one_line(run(CENTRAL, "run", "--broker", NO_BROKER, "--db", str(db)))
    assert line == f"classroom-central: error: --db {db}: the folder {db.parent} does not exist"


def test_under_journald_each_log_line_carries_its_level_for_the_journal(tmp_path: Path) -> None:
    # systemd names the journal stream it connected in $JOURNAL_STREAM (device:inode); a file stands in for it.
    config = site_config(tmp_path, 0, tmp_path / "data")
    log = tmp_path / "journal"
    with log.open("w") as stream:
        info = os.fstat(stream.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}
        agent = subprocess.Popen([*AGENT, "run", "--config", str(config)], stderr=stream, env=env)
        try:
            lines = _wait_for(log, "agent.link: broker")
        finally:
            agent.terminate()
            agent.wait(60)
    first = next(line for line in lines if "agent.link: broker" in line)
    assert first.startswith("<4>agent.link: broker mqtt://127.0.0.1:1: ")  # <4>: warning; no time stamp
    assert all(line.startswith("<") for line in lines)


def _wait_for(log: Path, text: str) -> list[str]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lines = log.read_text().splitlines()
        if any(text in line for line in lines):
            return lines
        time.sleep(0.1)
    raise AssertionError(f"no line with {text!r} within 60 s: {log.read_text()!r}")
