"""Classroom agents as real processes for tests: one `Room` each, `cli` for ``call``, `until`, `running`.

Importable from every test package: pytest puts tests/ on sys.path, as it holds the root conftest.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import IO, Any

import pytest

from central.mosquitto import free_port

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
# The browser tests' Chromium: headless, offline, no first-run chores.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# The README's screenshots are refreshed with UPDATE_SCREENSHOTS=1; otherwise they go to a temp dir.
SCREENSHOTS = (
    REPO / "docs" / "screenshots"
    if os.environ.get("UPDATE_SCREENSHOTS")
    else Path(tempfile.gettempdir()) / "classroom-agent-screenshots"
)


def skip_without_chromium() -> None:
    """Skip the calling test, saying why, where /usr/bin/chromium is not installed."""
    if not CHROMIUM.exists():
        print(f"SKIPPED: {CHROMIUM} is absent (Debian: apt-get install chromium); the browser test needs it")
        pytest.skip(f"{CHROMIUM} is absent (Debian: apt-get install chromium)")


class Room:
    """One agent process and its local API."""

    def __init__(self, config: Path, port: int, log: Path, cwd: Path | None = None) -> None:
        self.config, self.port, self.log, self.cwd = config, port, log, cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[str] | None = None

    def start(self) -> None:
        self._log = open(self.log, "a", encoding="utf-8")  # noqa: SIM115
        argv = [sys.executable, "-m", "agent.cli", "-v", "run", "--config", str(self.config)]
        self.proc = subprocess.Popen(argv, stderr=self._log, cwd=self.cwd)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        if self._log is not None:
            self._log.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.kill()

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as response:
            return bytes(response.read())

    def status(self) -> dict[str, Any]:
        return dict(json.loads(self.get("/api/status")))

    def lesson(self) -> dict[str, Any]:
        return dict(self.status()["lesson"])

    def peer(self, name: str) -> dict[str, Any]:
        return dict(self.lesson().get("peers", {}).get(name, {}))

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]


def site_toml(
    tmp: Path,
    broker_url: str,
    body: str,
    *,
    agent_id: str,
    site: str = "test-school",
    room: str = "测试教室 7",
    http_port: int = 0,
    name: str = "site.toml",
) -> Path:
    """A room's site.toml in `tmp`: who it is, data in tmp/var, its broker, a free HTTP port, then `body`'s tables."""
    path = tmp / name
    path.write_text(
        f"""
agent_id = "{agent_id}"
site = "{site}"
room = "{room}"
data_dir = "{tmp / "var"}"
[broker]
url = "{broker_url}"
[http]
port = {http_port or free_port()}
{body}""",
        encoding="utf-8",
    )
    return path


def lesson_config(
    tmp: Path,
    broker_url: str,
    site: str,
    agent_id: str,
    port: int,
    lesson: str,
    sources: str,
    *,
    camera: tuple[str, int, int] = ("640x360", 15, 600),
    courseware: tuple[str, int, int] = ("640x360", 5, 400),
) -> Path:
    """One lesson room's site.toml: a simulated panel, `sources`, a tone, ICE on loopback; video (size, fps, kbit/s)."""
    path = tmp / f"{agent_id}.toml"
    video = "".join(
        f'[lesson.video.{kind}]\nsize = "{size}"\nfps = {fps}\nbitrate_kbps = {kbps}\n'
        for kind, (size, fps, kbps) in (("camera", camera), ("courseware", courseware))
    )
    path.write_text(
        f"""
agent_id = "{agent_id}"
site = "{site}"
room = "教室 {agent_id}"
data_dir = "{tmp / agent_id}"
[broker]
url = "{broker_url}"
[http]
port = {port}
[[devices]]
id = "panel"
profile = "samsung-mdc"
address = "sim"
[sources]
{sources}
[lesson]
audio = "tone:440"
ice_host_addresses = ["127.0.0.1"]
offer_timeout_s = 5
{lesson}
{video}""",
        encoding="utf-8",
    )
    return path


def cli(room: Room, *words: str) -> dict[str, Any]:
    """``classroom-agent call --config ROOM WORDS...``: the reply it prints."""
    argv = [sys.executable, "-m", "agent.cli", "call", "--config", str(room.config), *words]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return dict(json.loads(done.stdout))


async def until(check: Callable[[], Any], what: str | None = None, *, timeout: float = 60.0, every: float = 0.5) -> Any:
    """Poll `check` (in a thread: it talks HTTP) until it returns something truthy; errors count as not yet.

    Without `what` a timeout raises TimeoutError; with it, an AssertionError saying what never came.
    """
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    found = await asyncio.to_thread(check)
                except (OSError, KeyError, ValueError):
                    found = None
                if found:
                    return found
                await asyncio.sleep(every)
    except TimeoutError:
        if what is None:
            raise
        raise AssertionError(f"{what} within {timeout} s") from None


@contextmanager
def running(rooms: Iterable[Room]) -> Iterator[None]:
    """Start every room in order; stop them all on the way out, whatever happened."""
    made = list(rooms)
    try:
        for room in made:
            room.start()
        yield
    finally:
        for room in made:
            room.stop()


@asynccontextmanager
async def agent_process(
    config: Path, ready: Callable[[], Any], name: str, *, timeout: float, every: float
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``classroom-agent run --config CONFIG`` until `ready()` (in a thread) is truthy; terminated on the way out."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.cli", "run", "--config", str(config),
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    if await asyncio.to_thread(ready):
                        break
                except OSError:
                    assert proc.returncode is None, f"{name} exited"
                await asyncio.sleep(every)
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            async with asyncio.timeout(20):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
