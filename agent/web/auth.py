"""Who may use the classroom page and the local API: the panel itself freely, other devices with the PIN.

A request is *local* when it comes from a loopback address and names a loopback host (so a web
page elsewhere that rebinds its DNS name to 127.0.0.1 is not local).  Local requests need
nothing: the panel's own browser and the CLI run on this PC.  Any other request needs a PIN
session (``[http] pin``); without a PIN configured, other devices are refused.  Wrong PINs are
rate-limited per client address (a 4-digit PIN must not be guessable from a phone on the LAN, and
that phone must not lock the teacher out): after `TRIES` wrong ones, that address may not try for
`LOCK_S` seconds, twice as long after each further wrong one (at most `MAX_LOCK_S`).  The session cookie is
HMAC-signed with a secret of this process and the PIN, so a restart or a new PIN ends sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
import os
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from agent.web.text import DEFAULT_LANG, STRINGS, strings
from websession import Sessions, Throttle, add_lang_route, chosen_lang, lang_switch_href, safe_next, set_session_cookie

SESSION_COOKIE = "classroom_pin"
SESSION_S = 12 * 3600
TRIES = 5
LOCK_S = 30.0
MAX_LOCK_S = 3600.0
PUBLIC = ("/page/login", "/page/static/", "/page/lang/")
# Answered with 401 JSON rather than a redirect to the PIN page: scripts and the CLI call these.
MACHINE = ("/api/", "/page/state", "/page/events", "/page/command", "/whep/", "/whip/")


@dataclass(frozen=True, slots=True)
class PinResult:
    """The answer to one PIN attempt: accepted, or how many tries are left, or how long to wait."""

    ok: bool
    left: int = 0
    wait_s: int = 0


class PinGate:
    """Checks PINs with a rate limit and signs session cookies."""

    def __init__(
        self,
        pin: str,
        *,
        secret: bytes | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        tries: int = TRIES,
        lock_s: float = LOCK_S,
    ) -> None:
        """`pin` "" means no PIN: only local requests are let in."""
        self.pin = pin
        key = hashlib.sha256((secret or os.urandom(32)) + pin.encode()).digest()
        self._sessions = Sessions(key, SESSION_S, wall=wall)
        self.clock = clock
        self.tries, self.lock_s = tries, lock_s
        # Per client address: one phone guessing must not lock the teacher out.
        self._throttle = Throttle(free=tries - 1, lock_after=tries, lock_s=lock_s, max_lock_s=MAX_LOCK_S, clock=clock)

    def attempt(self, entered: str, client: str = "") -> PinResult:
        """Check one PIN from `client` (its address); wrong ones count towards its lock-out, a right one resets it."""
        if wait_s := self._throttle.wait(client):
            return PinResult(False, 0, wait_s)
        if self.pin and entered.isascii() and hmac.compare_digest(entered.strip().encode(), self.pin.encode()):
            self._throttle.succeeded(client)
            return PinResult(True)
        self._throttle.failed(client)
        if wait_s := self._throttle.wait(client):
            return PinResult(False, 0, wait_s)
        return PinResult(False, self._throttle.left(client))

    def issue(self) -> str:
        """A session cookie value valid for `SESSION_S`."""
        return self._sessions.issue("pin")

    def valid(self, value: str) -> bool:
        """Whether a cookie value is ours and unexpired."""
        return bool(self.pin) and self._sessions.read(value) is not None


def is_loopback(address: str | None) -> bool:
    """Whether an address is this machine's loopback (IPv4-mapped IPv6 included)."""
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


def host_name(host: str | None) -> str:
    """The name part of a Host header (``[::1]:8765`` -> ``::1``)."""
    host = host or ""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def request_is_local(request: web.Request) -> bool:
    """From this PC, to a loopback name: the panel's browser or the CLI."""
    name = host_name(request.host)
    return is_loopback(request.remote) and (name == "localhost" or is_loopback(name))


def request_lang(request: web.Request) -> str:
    """The language chosen in the cookie, Chinese by default."""
    return chosen_lang(request, STRINGS, DEFAULT_LANG)


def foreign_origin(request: web.Request, allowed: Collection[str]) -> str:
    """The ``Origin`` of another site's script that is not allowed ("" for ours, an allowed one or none)."""
    origin = (request.headers.get("Origin") or "").lower()
    if not origin or origin == f"{request.scheme}://{request.host}".lower() or origin in allowed:
        return ""
    return origin


def make_gate(
    gate: PinGate,
    is_local: Callable[[web.Request], bool] = request_is_local,
    allowed_origins: Collection[str] = (),
) -> Middleware:
    """The middleware: local requests pass, others need the PIN session; JSON only for POSTs to commands.

    Scripts of other web sites are refused on the machine paths whatever the client: a page open
    in the panel's browser is local too (only `allowed_origins`, the centre's, may).
    """

    @web.middleware
    async def pin_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
        posts = request.method == "POST" and request.path in ("/api/commands", "/page/command")
        if posts and request.content_type != "application/json":
            # A form on any other web site can post here; only a script of our own can send JSON.
            return web.json_response({"status": "rejected", "error": "expected application/json"}, status=415)
        foreign = foreign_origin(request, allowed_origins) if request.path.startswith(MACHINE) else ""
        if foreign:
            error = f"origin {foreign!r} may not use this agent (not this page, not in [http] allowed_origins)"
            return web.json_response({"error": error}, status=403, headers={"Vary": "Origin"})
        if request.path.startswith(PUBLIC) or is_local(request):
            return await handler(request)
        t = strings(request_lang(request))
        if not gate.pin:
            if request.path.startswith(MACHINE):
                return web.json_response({"error": t["pin_not_set"], "detail": t["pin_not_set_detail"]}, status=403)
            page = pin_page(request_lang(request), "/", t["pin_not_set"], form=False, detail=t["pin_not_set_detail"])
            return web.Response(text=page, content_type="text/html", status=403)
        if gate.valid(request.cookies.get(SESSION_COOKIE, "")):
            return await handler(request)
        if request.path.startswith(MACHINE):
            return web.json_response({"error": t["pin_title"]}, status=401)
        raise web.HTTPSeeOther(f"/page/login?next={quote(request.path_qs, safe='')}")

    return pin_gate


def pin_page(lang: str, next_path: str, message: str = "", *, form: bool = True, detail: str = "") -> str:
    """The PIN form (everything user-supplied is escaped; no script); `detail` for the technician, folded away."""
    t = strings(lang)
    esc = html.escape
    error = f'<p class="error" role="alert" id="pin-error">{esc(message)}</p>' if message else ""
    hint = f"<p>{esc(t['pin_hint'])}</p>" if form else ""  # no PIN to ask for when none is set
    if detail:
        error += f'<details class="detail" id="pin-detail"><summary>{esc(t["detail"])}</summary>{esc(detail)}</details>'

    switch = lang_switch_href("/page/lang", lang, list(STRINGS), "/page/login?next=" + quote(next_path, safe=""))
    body = (
        f"""<form method="post" action="/page/login"><input type="hidden" name="next" value="{esc(next_path)}">
<label>{esc(t["pin"])}<input name="pin" type="password" inputmode="numeric" autocomplete="off" required autofocus>
</label><button type="submit" class="big">{esc(t["pin_enter"])}</button></form>"""
        if form
        else ""
    )
    return f"""<!doctype html>
<html lang="{esc(t["html_lang"])}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(t["pin_title"])}</title><link rel="stylesheet" href="/page/static/page.css"></head>
<body class="pin"><main class="pin-box"><h1>{esc(t["pin_title"])}</h1>{hint}
{error}{body}<p><a href="{esc(switch)}">{esc(t["switch_lang"])}</a></p></main></body></html>
"""


def add_pin_routes(app: web.Application, gate: PinGate) -> None:
    """``GET/POST /page/login`` and ``GET /page/lang/{code}``."""

    async def show(request: web.Request) -> web.Response:
        page = pin_page(request_lang(request), safe_next(request.query.get("next")))
        return web.Response(text=page, content_type="text/html")

    async def login(request: web.Request) -> web.Response:
        form = await request.post()
        lang, next_path = request_lang(request), safe_next(str(form.get("next", "/")))
        result = gate.attempt(str(form.get("pin", "")), client=request.remote or "")
        if not result.ok:
            t = strings(lang)
            words = t["pin_locked"].format(seconds=result.wait_s) if result.wait_s else t["pin_wrong"]
            text = pin_page(lang, next_path, words.format(left=result.left))
            return web.Response(text=text, content_type="text/html", status=429 if result.wait_s else 401)
        response = web.HTTPSeeOther(next_path)
        set_session_cookie(response, SESSION_COOKIE, gate.issue(), max_age=SESSION_S, secure=False)
        raise response

    app.router.add_get("/page/login", show)
    app.router.add_post("/page/login", login)
    add_lang_route(app, "/page/lang", STRINGS)
