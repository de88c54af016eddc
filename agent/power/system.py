"""Running the OS's shutdown or reboot command: a real subprocess with a deadline, its output kept short."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess

from agent.errors import AgentError

log = logging.getLogger(__name__)

OUTPUT_CHARS = 500


class PowerCommandError(AgentError):
    """The OS command could not be run, failed, or took too long: nothing may have happened."""


async def run_power_command(argv: list[str], timeout: float) -> str:
    """Run `argv` (no shell); its output (the last OUTPUT_CHARS characters), or PowerCommandError saying why."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
    except OSError as exc:
        raise PowerCommandError(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc
    try:
        async with asyncio.timeout(timeout):
            output, _ = await proc.communicate()
    except TimeoutError:
        raise PowerCommandError(f"{argv[0]} did not finish within {timeout:g} s (killed)") from None
    finally:
        if proc.returncode is None:  # late, or the command was cancelled: leave no process behind
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    text = output.decode("utf-8", "replace").strip()[-OUTPUT_CHARS:]
    if proc.returncode != 0:
        raise PowerCommandError(f"{argv[0]} exited with status {proc.returncode}: {text or 'no output'}")
    log.warning("ran %s: %s", " ".join(argv), text or "no output")
    return text
