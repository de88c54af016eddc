"""Dashboard login: signed session cookies, the login page, logout, the language cookie.

A session cookie is ``<base64 JSON {u, exp}>.<HMAC-SHA256>``, HttpOnly and SameSite=Strict.
The role is read from the users table on every request, so removing a user or changing a role
takes effect at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import html
import json
import time
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from central.uploads import is_agent_path
from central.users import Users
from central.web_text import DEFAULT_LANG, STRINGS, strings

SESSION_COOKIE = "classroom_session"
LANG_COOKIE = "lang"
SESSION_SECONDS = 12 * 3600
PUBLIC_PREFIXES = ("/login", "/static/", "/lang/")
USER_KEY = web.RequestKey("user", str)
ROLE_KEY = web.RequestKey("role", str)


class Sessions:
    """Signs and reads session cookies with one secret."""

    def __init__(self, secret: bytes, lifetime: float = SESSION_SECONDS) -> None:
        """`secret`: at least 16 random bytes; sessions die when it changes."""
        if len(secret) < 16:
            raise ValueError("session secret: at least 16 bytes")
        self._secret = secret
        self.lifetime = lifetime

    def _sign(self, body: bytes) -> str:
        return hmac.new(self._secret, body, hashlib.sha256).hexdigest()

    def issue(self, username: str, now: float | None = None) -> str:
        """A cookie value for `username`, valid for `lifetime` seconds."""
        expires = int((now if now is not None else time.time()) + self.lifetime)
        body = base64.urlsafe_b64encode(json.dumps({"u": username, "exp": expires}).encode())
        return f"{body.decode()}.{self._sign(body)}"

    def read(self, value: str, now: float | None = None) -> str | None:
        """The user name of a valid, unexpired cookie; None for anything else."""
        body, _, signature = value.encode().rpartition(b".")
        if not body or not hmac.compare_digest(self._sign(body).encode(), signature):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("u"), str) or not isinstance(data.get("exp"), int):
            return None
        if data["exp"] < (now if now is not None else time.time()):
            return None
        return str(data["u"])


def request_lang(request: web.Request) -> str:
    """The language chosen in the cookie, Chinese by default."""
    lang = request.cookies.get(LANG_COOKIE, DEFAULT_LANG)
    return lang if lang in STRINGS else DEFAULT_LANG


def safe_next(target: str | None) -> str:
    """A local path to go back to after login or a language switch (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def make_middleware(sessions: Sessions, users: Users) -> Middleware:
    """Every page and API needs a logged-in user; sets `USER_KEY` and `ROLE_KEY` on the request."""

    @web.middleware
    async def require_login(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(PUBLIC_PREFIXES) or is_agent_path(request.path):
            return await handler(request)  # agents' uploads carry a token of their own
        username = sessions.read(request.cookies.get(SESSION_COOKIE, ""))
        role = users.role(username) if username is not None else None
        if username is None or role is None:
            if request.path.startswith(("/api/", "/whep/")):  # machines (fetch, WHEP) get a status, not a page
                return web.json_response({"error": "login required"}, status=401)
            raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='')}")
        request[USER_KEY], request[ROLE_KEY] = username, role
        return await handler(request)

    return require_login


def login_page(lang: str, *, next_path: str, username: str = "", failed: bool = False) -> str:
    """The login form (everything user-supplied is escaped)."""
    t = strings(lang)
    esc = html.escape
    error = f'<p class="error" role="alert">{esc(t["login_failed"])}</p>' if failed else ""
    other = "en" if lang == "zh" else "zh"
    switch = f"/lang/{other}?next={quote('/login?next=' + quote(next_path, safe=''), safe='')}"
    return f"""<!doctype html>
<html lang="{esc(t["html_lang"])}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(t["login_title"])}</title><link rel="stylesheet" href="/static/style.css"></head>
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


def add_routes(app: web.Application, sessions: Sessions, users: Users) -> None:
    """``GET/POST /login``, ``POST /logout``, ``GET /lang/{code}``."""

    async def show_login(request: web.Request) -> web.Response:
        next_path = safe_next(request.query.get("next"))
        return web.Response(text=login_page(request_lang(request), next_path=next_path), content_type="text/html")

    async def do_login(request: web.Request) -> web.Response:
        form = await request.post()
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        next_path = safe_next(str(form.get("next", "/")))
        # scrypt takes tens of milliseconds on purpose: keep it off the event loop.
        role = await asyncio.to_thread(users.check, username, password)
        if role is None:
            page = login_page(request_lang(request), next_path=next_path, username=username, failed=True)
            return web.Response(text=page, content_type="text/html", status=401)
        response = web.HTTPSeeOther(next_path)
        response.set_cookie(
            SESSION_COOKIE,
            sessions.issue(username),
            max_age=int(sessions.lifetime),
            httponly=True,
            samesite="Strict",
            secure=request.secure,
            path="/",
        )
        raise response

    async def do_logout(request: web.Request) -> web.Response:
        response = web.HTTPSeeOther("/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        raise response

    async def switch_lang(request: web.Request) -> web.Response:
        lang = request.match_info["code"]
        response = web.HTTPSeeOther(safe_next(request.query.get("next")))
        if lang in STRINGS:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="Lax", path="/")
        raise response

    app.router.add_get("/login", show_login)
    app.router.add_post("/login", do_login)
    app.router.add_post("/logout", do_logout)
    app.router.add_get("/lang/{code}", switch_lang)
