"""A live lesson holds off agent.shutdown / agent.reboot in both classrooms until forced.

Real agents in one process, real Mosquitto, real WebRTC on loopback (a network namespace);
the OS command is a script that writes down its arguments.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from test_lesson import call, remote_config, running, until, write_config

from agent.config.site import SiteConfig, load_config
from central.mosquitto import LocalBroker

RECORDER = "import json, pathlib, sys\npathlib.Path(sys.argv[1]).write_text(json.dumps(sys.argv[2:]))\n"


def with_power(tmp: Path, broker: LocalBroker) -> tuple[SiteConfig, Path, Path]:
    """The main classroom with [power] commands that only write down their arguments."""
    script, off, again = tmp / "record_args.py", tmp / "shutdown.json", tmp / "reboot.json"
    script.write_text(RECORDER, encoding="utf-8")
    shutdown = json.dumps([sys.executable, str(script), str(off), "{delay_s}"])
    reboot = json.dumps([sys.executable, str(script), str(again), "{delay_s}"])
    lesson = f'send = ["teacher"]\ntrusted = []\n[power]\nshutdown_command = {shutdown}\nreboot_command = {reboot}'
    path = write_config(tmp, broker, "room-main", sources='teacher = "synthetic:teacher"', lesson=lesson)
    return load_config(path), off, again


async def test_shutdown_and_reboot_wait_for_the_live_lesson_unless_forced(tmp_path: Path, broker: LocalBroker) -> None:
    main_config, off, again = with_power(tmp_path, broker)
    async with running(main_config, remote_config(tmp_path, broker, "room-a")) as (main, remote):
        started = await call(main, "lesson.start", mode="zhuandi", remotes=["room-a"])
        assert remote.lesson is not None
        await until(lambda: remote.lesson is not None and remote.lesson.status()["active"])
        for agent in (main, remote):
            for name in ("agent.shutdown", "agent.reboot"):
                refused = await agent.table.execute(name, {"delay_s": 30}, by="tech", door="mqtt")
                assert refused.status == "rejected", refused
                assert f"live lesson {started['lesson']}" in refused.error and "force=true" in refused.error
        assert not off.exists() and not again.exists()
        forced = await main.table.execute("agent.reboot", {"force": True}, by="tech", door="mqtt")
        assert forced.status == "succeeded"
        assert forced.result["cut_short"] == [f"live lesson {started['lesson']} (main)"]
        assert json.loads(again.read_text()) == ["0"]
        await call(main, "lesson.stop")
        assert (await main.table.execute("agent.shutdown", {"delay_s": 30})).status == "succeeded"
        assert json.loads(off.read_text()) == ["30"]
