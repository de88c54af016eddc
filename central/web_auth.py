"""Dashboard login: signed session cookies, the login page, logout, the language cookie.

A session cookie (`websession.Sessions`) names the user, HttpOnly and SameSite=Strict.
The role and the user's session generation are read from the users table on every request:
removing a user ends their sessions at once, and a logout, a new password or a new role counts the
generation up, which ends every session the user had open, on every browser.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from central.uploads import is_agent_path
from central.users import Users
from central.web_text import DEFAULT_LANG, STRINGS, strings
from websession import Sessions, Throttle, add_lang_route, chosen_lang, lang_switch_href, safe_next, set_session_cookie

SESSION_COOKIE = "classroom_session"
SESSION_SECONDS = 12 * 3600
PUBLIC_PREFIXES = ("/login", "/static/", "/lang/", "/favicon.ico")
USER_KEY = web.RequestKey("user", str)
ROLE_KEY = web.RequestKey("role", str)


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """Failed logins counted per account and per client address (`websession.Throttle`)."""

    accounts: Throttle
    clients: Throttle

    @classmethod
    def default(cls, clock: Callable[[], float] = time.monotonic) -> LoginLimits:
        """Per account: 3 free tries, then doubling waits, locked 15 min after 10; per address: 10, 50, 15 min."""
        return cls(
            Throttle(free=3, lock_after=10, lock_s=900.0, clock=clock),
            Throttle(free=10, lock_after=50, lock_s=900.0, clock=clock),
        )

    def wait(self, username: str, client: str) -> int:
        """Seconds before this account may be tried from this address (0: now)."""
        return max(self.accounts.wait(_account(username)), self.clients.wait(client))

    def failed(self, username: str, client: str) -> None:
        """One wrong password for `username` from `client`."""
        self.accounts.failed(_account(username))
        self.clients.failed(client)

    def succeeded(self, username: str, client: str) -> None:
        """A right one: both are forgiven."""
        self.accounts.succeeded(_account(username))
        self.clients.succeeded(client)


def _account(username: str) -> str:
    """The throttle's key for a user name: no real name is longer than 64 characters, so keys stay small."""
    return username[:65]


def request_lang(request: web.Request) -> str:
    """The language chosen in the cookie, Chinese by default."""
    return chosen_lang(request, STRINGS, DEFAULT_LANG)


def make_middleware(sessions: Sessions, users: Users) -> Middleware:
    """Every page and API needs a logged-in user; sets `USER_KEY` and `ROLE_KEY` on the request."""

    @web.middleware
    async def require_login(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(PUBLIC_PREFIXES) or is_agent_path(request.path):
            return await handler(request)  # agents' uploads carry a token of their own
        username, role = signed_in(request, sessions, users)
        if username is None or role is None:
            if request.path.startswith(("/api/", "/whep/")):  # machines (fetch, WHEP) get a status, not a page
                return web.json_response({"error": "login required"}, status=401)
            raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='')}")
        request[USER_KEY], request[ROLE_KEY] = username, role
        return await handler(request)

    return require_login


def signed_in(request: web.Request, sessions: Sessions, users: Users) -> tuple[str | None, str | None]:
    """The user and role of the request's session; (None, None) when it is missing, forged, expired or ended."""
    claims = sessions.claims(request.cookies.get(SESSION_COOKIE, ""))
    current = users.session(claims[0]) if claims is not None else None
    if claims is None or current is None or current[1] != claims[1]:
        return None, None  # a logout, a new password or a new role ended it, or the user is gone
    return claims[0], current[0]


def login_page(lang: str, *, next_path: str, username: str = "", failed: bool = False, wait_s: int = 0) -> str:
    """The login form (everything user-supplied is escaped); `wait_s`: the lock-out message instead."""
    t = strings(lang)
    esc = html.escape
    words = t["login_locked"].format(seconds=wait_s) if wait_s else t["login_failed"] if failed else ""
    error = f'<p class="error" role="alert">{esc(words)}</p>' if words else ""
    switch = lang_switch_href("/lang", lang, list(STRINGS), "/login?next=" + quote(next_path, safe=""))
    return f"""<!doctype html>
<html lang="{esc(t["html_lang"])}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(t["login_title"])}</title><link rel="stylesheet" href="/static/style.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml"></head>
<body class="login"><main class="login-box">
<h1>{esc(t["title"])}</h1>{error}
<form method="post" action="/login">
<input type="hidden" name="next" value="{esc(next_path)}">
<label>{esc(t["username"])}<input name="username" autocomplete="username" required value="{esc(username)}"></label>
<label>{esc(t["password"])}<input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">{esc(t["login"])}</button>
</form>
<p><a href="{esc(switch)}">{esc(t["switch_lang"])}</a></p>
</main></body></html>
"""


def add_routes(app: web.Application, sessions: Sessions, users: Users, limits: LoginLimits | None = None) -> None:
    """``GET/POST /login``, ``POST /logout``, ``GET /lang/{code}``; failed logins slow down, then lock."""
    limits = limits if limits is not None else LoginLimits.default()

    async def show_login(request: web.Request) -> web.Response:
        next_path = safe_next(request.query.get("next"))
        return web.Response(text=login_page(request_lang(request), next_path=next_path), content_type="text/html")

    async def do_login(request: web.Request) -> web.Response:
        form = await request.post()
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        next_path = safe_next(str(form.get("next", "/")))
        client = request.remote or ""
        if wait_s := limits.wait(username, client):  # checked before the password: a lock holds for the right one too
            page = login_page(request_lang(request), next_path=next_path, username=username, wait_s=wait_s)
            return web.Response(text=page, content_type="text/html", status=429, headers={"Retry-After": str(wait_s)})
        # scrypt takes tens of milliseconds on purpose: keep it off the event loop.
        role = await asyncio.to_thread(users.check, username, password)
        if role is None:
            limits.failed(username, client)
            page = login_page(request_lang(request), next_path=next_path, username=username, failed=True)
            return web.Response(text=page, content_type="text/html", status=401)
        limits.succeeded(username, client)
        response = web.HTTPSeeOther(next_path)
        current = users.session(username)
        cookie = sessions.issue(username, current[1] if current else 0)
        set_session_cookie(response, SESSION_COOKIE, cookie, max_age=int(sessions.lifetime), secure=request.secure)
        raise response

    async def do_logout(request: web.Request) -> web.Response:
        username, _ = signed_in(request, sessions, users)
        if username is not None:  # ends the user's sessions here, not only this browser's cookie
            users.end_sessions(username)
        response = web.HTTPSeeOther("/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        raise response

    app.router.add_get("/login", show_login)
    app.router.add_post("/login", do_login)
    app.router.add_post("/logout", do_logout)
    add_lang_route(app, "/lang", STRINGS)
