"""``classroom-agent run`` and ``classroom-agent call``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from agent.config.site import SiteConfig, load_config
from agent.errors import ConfigError
from contract import CommandStatus
from contract.args import parse_args_list
from drivers.errors import ArgumentError
from hosting.folders import folder_problem

DEFAULT_API = "http://127.0.0.1:8765"
# The reply's status, as this command's exit code (anything else, 1).
EXIT: dict[str, int] = {
    CommandStatus.SUCCEEDED: 0,
    CommandStatus.FAILED: 1,
    CommandStatus.EXPIRED: 1,
    CommandStatus.REJECTED: 2,
}


def run(args: argparse.Namespace) -> int:
    """Dispatch ``run`` or ``call``."""
    if args.cmd == "run":
        from agent.service import run_until_signalled
        from websession.serve import bind_error_in

        config = load_config(args.config, broker_url=args.broker)
        _check_folders(config)
        try:
            asyncio.run(run_until_signalled(config))
        except Exception as exc:  # only a port that cannot be listened on is translated; the rest goes on up
            failure = bind_error_in(exc)
            if failure is None:
                raise
            raise ConfigError(f"{failure}; set another [http] port (or host) in {args.config}") from None
        return 0
    return call(args)


def _check_folders(config: SiteConfig) -> None:
    """agent.db's folder and the recordings' must be writable: ConfigError naming the key otherwise."""
    places: list[tuple[str, Path, tuple[str, ...]]] = [("data_dir", config.data_dir, ("agent.db",))]
    if config.recording:
        places.append(("recording.dir", config.recording.dir, ()))
    for key, folder, files in places:
        if problem := folder_problem(folder, files):
            raise ConfigError(f"{key}: {problem}")


def call(args: argparse.Namespace) -> int:
    """POST one command to the running agent's local API and print its reply."""
    base = DEFAULT_API
    if args.config:
        config = load_config(args.config)
        base = f"http://{config.http_host}:{config.http_port}"
    values = parse_args_list(args.args)
    body = json.dumps({"name": args.command, "args": values, "by": args.by}, allow_nan=False).encode()
    request = urllib.request.Request(f"{base}/api/commands", body, {"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            reply = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        reply = _error_reply(exc)
        if reply is None:
            return 1
    except (urllib.error.URLError, OSError) as exc:
        raise ArgumentError(f"no agent answers at {base}: {getattr(exc, 'reason', exc)}") from None
    print(json.dumps(reply, ensure_ascii=False, allow_nan=False))
    sys.stdout.flush()
    return EXIT.get(str(reply.get("status")), 1)


def _error_reply(exc: urllib.error.HTTPError) -> dict[str, object] | None:
    """The agent's JSON reply carried by an HTTP error; None (after one line on stderr) when it is not one."""
    body = exc.read(4096) or b""
    try:
        reply = json.loads(body)
    except (ValueError, RecursionError):
        reply = None
    if isinstance(reply, dict):
        return reply
    text = " ".join(body.decode("utf-8", "replace").split())[:200]
    print(f"classroom-agent: {exc.url} answered HTTP {exc.code} {exc.reason}: {text or '(no body)'}", file=sys.stderr)
    return None
