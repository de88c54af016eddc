"""The demo stops everything it started on SIGTERM and on a terminal's Ctrl-C, and its rooms can record.

The demo runs as a real process in a session of its own, as at a terminal: Ctrl-C there sends
SIGINT to the whole foreground process group.  Its Mosquitto, centre and rooms must all be gone
afterwards, with nothing on stderr but the device walkthrough's expected noise warnings.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

BIN = Path(sys.executable).parent
AGENT = [str(BIN / "classroom-agent")] if (BIN / "classroom-agent").is_file() else [sys.executable, "-m", "agent.cli"]
READY = "按 Ctrl-C 停止"
START_S = 300.0  # a loaded two-core machine may take minutes to bring up a centre and two rooms with media
STOP_S = 120.0
# What must never appear on stderr: errors, tracebacks, asyncio's leftovers, a pipe that broke.
BAD = re.compile(r"Traceback|\bERROR\b|CRITICAL|exception|never retrieved|never awaited|Broken pipe", re.IGNORECASE)


class Demo:
    """``classroom-agent demo`` running; its stdout read line by line, its stderr kept."""

    def __init__(self, data: Path, through_a_pipe: bool = False) -> None:
        command = [*AGENT, "demo", "--pause", "0", "--data", str(data)]
        if through_a_pipe:  # `make demo | tee demo.log` at a terminal: the reader is in the same process group
            command = ["sh", "-c", " ".join(shlex.quote(word) for word in command) + " | cat"]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self.ready = threading.Event()
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.out, True), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.err, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: object, into: list[str], watch: bool) -> None:
        for line in stream:  # type: ignore[attr-defined]
            into.append(line.rstrip("\n"))
            if watch and READY in line:
                self.ready.set()

    def wait_ready(self) -> None:
        if not self.ready.wait(START_S):
            pytest.fail(f"the demo did not start within {START_S:g} s:\n" + "\n".join(self.out[-20:] + self.err[-20:]))

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def page(self, room: str) -> str:
        found = next(m for line in self.out if (m := re.search(rf"classroom page {room}: (http://\S+?)/ ", line)))
        return found.group(1)

    def finish(self) -> int:
        code = self.process.wait(STOP_S)
        for reader in self._readers:
            reader.join(10)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    running = Demo(tmp_path)
    try:
        yield running
    finally:
        leftovers = [p for p in _every(running) if p.is_running()]
        running.kill()
        for process in leftovers:  # only what this demo started (a failing test must not leave a broker behind)
            process.kill()


def _every(demo: Demo) -> list[psutil.Process]:
    try:
        return demo.children()
    except psutil.NoSuchProcess:
        return []


def command(base: str, name: str, **args: object) -> dict[str, object]:
    body = json.dumps({"name": name, "args": args, "by": "test"}).encode()
    request = urllib.request.Request(f"{base}/api/commands", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        reply: dict[str, object] = json.loads(response.read())
    return reply


def stops_cleanly(demo: Demo, stop: Callable[[], None]) -> None:
    started = demo.children()
    assert any(p.name() == "mosquitto" for p in started), [p.name() for p in started]
    stop()
    assert demo.finish() == 0, "\n".join(demo.err[-30:])
    assert [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    assert [line for line in demo.err if BAD.search(line)] == []
    assert "演示已停止" in "\n".join(demo.out)


def test_sigterm_stops_the_demo_its_broker_and_rooms_after_a_room_recorded(demo: Demo) -> None:
    demo.wait_ready()
    page = demo.page("room-101")
    started = command(page, "record.start", lesson="数学")  # what 开始录制 on the classroom page sends
    assert started["status"] == "succeeded", started
    stopped = command(page, "record.stop")
    assert stopped["status"] == "succeeded", stopped
    stops_cleanly(demo, lambda: demo.process.send_signal(signal.SIGTERM))


def test_ctrl_c_at_the_terminal_stops_the_demo_and_everything_it_started(demo: Demo) -> None:
    demo.wait_ready()
    stops_cleanly(demo, lambda: os.killpg(demo.process.pid, signal.SIGINT))  # the whole foreground group


def test_ctrl_c_with_the_output_piped_to_a_reader_that_dies_too_leaves_no_error(tmp_path: Path) -> None:
    demo = Demo(tmp_path, through_a_pipe=True)
    try:
        demo.wait_ready()
        started = demo.children()
        program = next(p for p in started if p.name() != "sh" and "demo" in " ".join(p.cmdline()))
        assert any(p.name() == "mosquitto" for p in started)
        os.killpg(demo.process.pid, signal.SIGINT)  # `cat` dies with it: what the demo prints next has no reader
        psutil.wait_procs([program], timeout=STOP_S)
        assert not program.is_running()
        assert [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
        demo.finish()
        assert [line for line in demo.err if BAD.search(line)] == []
    finally:
        for process in [p for p in _every(demo) if p.is_running()]:
            process.kill()
        demo.kill()
