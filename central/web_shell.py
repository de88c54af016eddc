"""The dashboard's page shell (the HTML around a page's data and strings), its favicon, and other rooms' names.

A page is a shell: its data and the strings of the chosen language travel as JSON in the page,
and the scripts (``static/dashboard.js``, ``static/words.js`` and the page's own) render them
with text nodes only, so fleet data is always shown as text, never run as markup.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from central.users import COMMANDERS
from central.web_auth import ROLE_KEY, USER_KEY, request_lang
from central.web_text import STRINGS, strings
from websession import lang_switch_href

FAVICON = Path(__file__).with_name("static") / "favicon.svg"
# Alarms whose device is another classroom's agent id: shown by that room's name.
PEER_ALARMS = frozenset({"lesson_peer_lost", "link_degraded"})
# Each page's own scripts, after dashboard.js and words.js.
SCRIPTS = {"fleet": ("fleet",), "room": ("watch", "room")}


def script_json(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&`` left."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def shell(request: web.Request, page: str, title: str, data: Any, status: int = 200) -> web.Response:
    """The HTML of `page` (``fleet``, ``room``) with its data and the viewer's strings."""
    lang = request_lang(request)
    t = strings(lang)
    esc = html.escape
    boot = {
        "page": page,
        "lang": lang,
        "t": t,
        "user": request[USER_KEY],
        "role": request[ROLE_KEY],
        "can_command": request[ROLE_KEY] in COMMANDERS,
        "data": data,
    }
    switch = lang_switch_href("/lang", lang, list(STRINGS), request.path_qs)
    body = f"""<!doctype html>
<html lang="{esc(t["html_lang"])}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title><link rel="stylesheet" href="/static/style.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml"></head>
<body>
<header class="top"><a class="brand" href="/">{esc(t["title"])}</a>
<span id="live" class="live" aria-live="polite"></span>
<span class="who">{esc(request[USER_KEY])} · {esc(t["role_" + request[ROLE_KEY]])}</span>
<a class="lang" href="{esc(switch)}">{esc(t["switch_lang"])}</a>
<form method="post" action="/logout"><button type="submit" class="link">{esc(t["logout"])}</button></form>
</header>
<main id="main"></main>
<script type="application/json" id="boot">{script_json(boot)}</script>
<script src="/static/dashboard.js"></script><script src="/static/words.js"></script>
{"".join(f'<script src="/static/{name}.js"></script>' for name in SCRIPTS.get(page, (page,)))}
</body></html>
"""
    return web.Response(text=body, content_type="text/html", status=status)


async def favicon(request: web.Request) -> web.FileResponse:
    """``/favicon.ico`` for browsers that ask for it before reading the page's ``<link rel="icon">``."""
    return web.FileResponse(FAVICON, headers={"Content-Type": "image/svg+xml", "Cache-Control": "max-age=86400"})


class RoomNames(Protocol):
    """One agent by id (`central.fleetdb.FleetDB.agent`)."""

    def agent(self, agent_id: str) -> Any:
        """The agent (with its ``room``), None when unknown."""


def peer_ids(room: Mapping[str, Any]) -> set[str]:
    """The other classrooms a room page names: its live lesson's peers and the peers its alarms are about."""
    latest = (room.get("telemetry") or [{}])[0] or {}
    lesson = latest.get("lesson") if isinstance(latest, dict) else None
    ids: set[str] = set()
    if isinstance(lesson, dict):
        ids.update(str(p) for p in lesson.get("peers") or {})
        if isinstance(lesson.get("main"), str):
            ids.add(lesson["main"])
    ids.update(str(a["device"]) for a in room.get("alarms") or [] if a.get("type") in PEER_ALARMS and a.get("device"))
    return ids


def room_names(db: RoomNames, agent_ids: Iterable[str]) -> dict[str, str]:
    """``{agent_id: room name}`` of the agents known to the centre (a room without a name is left out)."""
    out = {}
    for agent_id in sorted(agent_ids)[:64]:  # a lesson has a handful of peers: a forged telemetry gets no more
        agent = db.agent(agent_id)
        if agent is not None and agent.get("room"):
            out[agent_id] = str(agent["room"])
    return out
