"""The agent's local HTTP API (127.0.0.1 by default): the CLI's door into the command table."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from agent.commands.table import CommandTable
from websession import BodyError, read_json_object
from websession.serve import ServeLimits, serve_app

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
MAX_CONNECTIONS = 64


WebPart = Callable[[web.Application], None]


def create_api(
    table: CommandTable, status: Callable[[], dict[str, Any]], parts: Iterable[WebPart] = ()
) -> web.Application:
    """``POST /api/commands {"name", "args", "by"}`` and ``GET /api/status``, plus each part's routes.

    A part (the classroom page, WHEP/WHIP for lessons) adds its own routes to the app.
    """
    app = web.Application(client_max_size=MAX_BODY)

    async def command(request: web.Request) -> web.Response:
        try:
            body = await read_json_object(request)
        except BodyError as exc:
            return _json({"status": "rejected", "error": str(exc)}, exc.status)
        if not isinstance(body.get("name"), str):
            return _json({"status": "rejected", "error": "name: expected the command's name"}, 400)
        args = body.get("args", {})
        if not isinstance(args, dict):
            return _json({"status": "rejected", "error": f"args: got {args!r}, expected an object"}, 400)
        by = body.get("by") if isinstance(body.get("by"), str) else ""
        outcome = await table.execute(body["name"], args, by=by or "local", door="local")
        return _json({"command": body["name"], **outcome.to_dict()})

    async def get_status(request: web.Request) -> web.Response:
        return _json(status())

    async def commands(request: web.Request) -> web.Response:
        return _json({name: table.commands[name].doc for name in table.names()})

    app.router.add_post("/api/commands", command)
    app.router.add_get("/api/commands", commands)
    app.router.add_get("/api/status", get_status)
    for add_routes in parts:
        add_routes(app)
    return app


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False, allow_nan=False), status=status, content_type="application/json"
    )


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving; the caller cleans up with ``await runner.cleanup()``."""
    # A classroom PC serves a panel, a few phones and the CLI: headers within 15 s, at most 64 connections.
    runner = await serve_app(app, host, port, ServeLimits(max_connections=MAX_CONNECTIONS), access_log=None)
    log.info("local API on http://%s:%d", host, port)
    return runner
