"""The classroom's own page: what the teacher touches on the panel (or a phone), served by the agent.

A web part of the local API (`agent.web.api.WebPart`).  Routes:

- ``GET /``: the page shell; the layout, the live view and the strings travel as JSON in the page
  and ``static/page.js`` renders them with text nodes only (never ``innerHTML``)
- ``GET /page/state``: the live view (`agent.web.view.live_view`)
- ``GET /page/events``: ``text/event-stream``, the live view whenever it changes, keepalives between
- ``POST /page/command`` ``{"name", "args"}``: runs through the command table as ``teacher`` by the
  ``page`` door; answers the outcome and, when it failed, the error in plain words (by its code,
  `agent.web.plain`)
- ``/page/login``, ``/page/lang/…``, ``/page/static/…`` (see `agent.web.auth` for who may enter)
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from agent.commands.table import CommandTable
from agent.config.site import SiteConfig
from agent.timetable.model import Timetable
from agent.web.api import WebPart
from agent.web.auth import PinGate, add_pin_routes, is_loopback, make_gate, request_is_local, request_lang
from agent.web.plain import plain_error
from agent.web.text import STRINGS, strings
from agent.web.view import device_link, input_codes, live_view, room_layout, signature
from websession import BodyError, lang_switch_href, read_json_object

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
POLL_S = 0.5
KEEPALIVE_S = 15.0
CSP = (
    "default-src 'self'; script-src 'self'; img-src 'self' blob:; media-src 'self' blob:; "
    "object-src 'none'; frame-ancestors 'none'"
)


class ClassroomPage:
    """The page's handlers over one agent's command table, status and timetable."""

    def __init__(
        self,
        table: CommandTable,
        status: Callable[[], Mapping[str, Any]],
        config: SiteConfig,
        timetable: Callable[[], Timetable],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Nothing is read until a request comes."""
        self.table = table
        self.status = status
        self.config = config
        self.timetable = timetable
        self.clock = clock
        self.kinds = {d.id: d.kind for d in config.devices}
        self.links = {d.id: device_link(d) for d in config.devices}
        self.inputs = {d.id: codes for d in config.devices if (codes := input_codes(d))}
        self.streams: set[asyncio.Task[Any]] = set()

    def layout(self) -> dict[str, Any]:
        """The controls (built once by the page; lesson commands appear when the lesson service is on)."""
        config = self.config
        recording = getattr(config, "recording", None) is not None
        lesson = getattr(config, "lesson", None)
        return room_layout(config.devices, self.table.names(), lesson, recording=recording, tracking=config.tracking)

    def view(self) -> dict[str, Any]:
        """The live view now."""
        return live_view(self.status(), self.kinds, self.timetable(), self.clock(), self.links, self.inputs)

    async def home(self, request: web.Request) -> web.Response:
        """The page shell with its boot data."""
        lang = request_lang(request)
        t = strings(lang)
        boot = {"lang": lang, "t": t, "layout": self.layout(), "view": self.view()}
        esc = html.escape
        title = f"{self.config.room} · {t['title']}"
        switch = lang_switch_href("/page/lang", lang, list(STRINGS), "/")
        body = f"""<!doctype html>
<html lang="{esc(t["html_lang"])}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title><link rel="stylesheet" href="/page/static/page.css"></head>
<body><header class="top"><h1 id="room"></h1><span id="clock"></span>
<span id="live" class="live" aria-live="polite"></span>
<a class="lang" href="{esc(switch)}">{esc(t["switch_lang"])}</a></header>
<main id="main"></main>
<script type="application/json" id="boot">{script_json(boot)}</script>
<script src="/page/static/page.js"></script><script src="/page/static/lesson.js"></script>
<script src="/page/static/tracking.js"></script>
</body></html>
"""
        return web.Response(text=body, content_type="text/html")

    async def state(self, request: web.Request) -> web.Response:
        """The live view as JSON."""
        return _json(self.view())

    async def command(self, request: web.Request) -> web.Response:
        """Run one command through the table as the teacher; the outcome, in plain words when it failed."""
        lang = request_lang(request)
        try:
            body = await read_json_object(request)
        except BodyError as exc:
            words = plain_error(str(exc), "", lang, code="args_object")
            return _json({"status": "rejected", "error": str(exc), "words": words}, exc.status)
        name, args = body.get("name"), body.get("args", {})
        if not isinstance(name, str) or not name or not isinstance(args, dict):
            error = 'body: expected {"name": "...", "args": {...}}'
            return _json(
                {"status": "rejected", "error": error, "words": plain_error(error, "", lang, code="args_object")}, 400
            )
        outcome = await self.table.execute(name, args, by="teacher", door="page")
        reply: dict[str, Any] = {"command": name, **outcome.to_dict()}
        if outcome.status != "succeeded":
            device = str(outcome.params.get("device") or args.get("device", ""))
            kind, link = self.kinds.get(device, ""), self.links.get(device, "")
            reply["words"] = plain_error(outcome.error, kind, lang, link, outcome.code, outcome.params)
        return _json(reply)

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: the live view on connecting and whenever it changes."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        task = asyncio.current_task()
        if task is not None:
            self.streams.add(task)  # cancelled at shutdown: a stopping agent does not wait for browsers
        try:
            await response.write(b"retry: 2000\n\n")
            await self._stream(response)
        except ConnectionResetError:
            pass
        finally:
            if task is not None:
                self.streams.discard(task)
        return response

    async def _stream(self, response: web.StreamResponse) -> None:
        last, quiet = "", 0.0
        while True:
            view = self.view()
            mark = signature(view)
            if mark != last:
                await response.write(f"data: {json.dumps(view, ensure_ascii=False, allow_nan=False)}\n\n".encode())
                last, quiet = mark, 0.0
            elif quiet >= KEEPALIVE_S:
                await response.write(b": keepalive\n\n")  # also how a vanished browser is noticed
                quiet = 0.0
            await asyncio.sleep(POLL_S)
            quiet += POLL_S

    async def end_streams(self, app: web.Application) -> None:
        """Cancel the open event streams (on shutdown)."""
        for task in tuple(self.streams):
            task.cancel()


def page_part(
    table: CommandTable,
    status: Callable[[], Mapping[str, Any]],
    config: SiteConfig,
    timetable: Callable[[], Timetable],
    *,
    pin: str | None = None,
    is_local: Callable[[web.Request], bool] = request_is_local,
) -> WebPart:
    """The page as a web part; `pin` defaults to the site config's ``[http] pin`` ("" = this PC only)."""
    page = ClassroomPage(table, status, config, timetable)
    gate = PinGate(pin if pin is not None else config.http_pin)
    if not gate.pin and not (config.http_host == "localhost" or is_loopback(config.http_host)):
        log.warning("http.host is %s but no [http] pin is set: the page refuses every other device", config.http_host)

    def add_routes(app: web.Application) -> None:
        app.middlewares.append(make_gate(gate, is_local, config.http_allowed_origins))
        app.middlewares.append(_page_headers)
        add_pin_routes(app, gate)
        app.router.add_get("/", page.home)
        app.router.add_get("/page/state", page.state)
        app.router.add_get("/page/events", page.events)
        app.router.add_post("/page/command", page.command)
        app.router.add_static("/page/static/", STATIC)
        app.on_shutdown.append(page.end_streams)

    return add_routes


@web.middleware
async def _page_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The page's own scripts only: nothing inline runs, no framing (clickjacking a power button)."""
    response = await handler(request)
    if request.path == "/" or request.path.startswith("/page/"):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def script_json(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&`` left."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _json(data: Mapping[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False, allow_nan=False), status=status, content_type="application/json"
    )
