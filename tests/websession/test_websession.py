"""The cookies both web apps share: signed sessions, the way back after login, the language."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from websession import (
    LANG_COOKIE,
    Sessions,
    Throttle,
    add_lang_route,
    chosen_lang,
    lang_switch_href,
    safe_next,
    set_session_cookie,
)

SECRET = b"s" * 32
KNOWN = ("zh", "en")


def test_a_session_names_its_subject_until_it_expires() -> None:
    now = [1_800_000_000.0]
    sessions = Sessions(SECRET, 3600, wall=lambda: now[0])
    cookie = sessions.issue("li")
    assert sessions.read(cookie) == "li"
    now[0] += 3599
    assert sessions.read(cookie) == "li"
    now[0] += 1
    assert sessions.read(cookie) is None  # expired at its end, not a second later


def test_a_tampered_cookie_is_refused() -> None:
    sessions = Sessions(SECRET, 3600)
    cookie = sessions.issue("li")
    body, signature = cookie.rsplit(".", 1)
    assert sessions.read(body + "." + signature[::-1]) is None
    # Another user's name under the old signature: the signature covers the body.
    forged = base64.urlsafe_b64encode(json.dumps({"u": "admin", "exp": 4_000_000_000}).encode()).decode()
    assert sessions.read(forged + "." + signature) is None
    assert Sessions(b"t" * 32, 3600).read(cookie) is None  # another secret's cookie
    for junk in ("", ".", "nodot", "é." + signature, body):
        assert sessions.read(junk) is None, junk


def test_a_signed_cookie_without_a_name_or_expiry_is_refused() -> None:
    sessions = Sessions(SECRET, 3600)
    # Signed with the right secret yet not what issue() writes: refused, not a crash.
    for data in (b"[]", b'{"u": "li"}', b'{"u": 1, "exp": 4000000000}', b"not json"):
        body = base64.urlsafe_b64encode(data)
        signature = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        assert sessions.read(f"{body.decode()}.{signature}") is None, data


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        Sessions(b"short", 3600)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/room/a1?x=1", "/room/a1?x=1"),
        (None, "/"),
        ("", "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("evil.example", "/"),
        # Browsers drop tabs and newlines inside a URL, so these become "//evil.example/".
        ("/\t/evil.example/", "/"),
        ("/\n/evil.example/", "/"),
        ("/\r\n/evil.example/", "/"),
        ("\t//evil.example/", "/"),
        ("/ /evil.example/", "/"),
        ("/\x00/evil.example/", "/"),
        ("/\u3000/evil.example/", "/"),
    ],
)
def test_only_local_paths_are_gone_back_to(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_the_switch_link_names_the_other_language_and_the_way_back() -> None:
    assert lang_switch_href("/lang", "zh", KNOWN, "/?site=east") == "/lang/en?next=%2F%3Fsite%3Deast"
    assert lang_switch_href("/page/lang", "en", KNOWN, "/") == "/page/lang/zh?next=%2F"
    assert lang_switch_href("/lang", "fr", KNOWN, "/") == "/lang/zh?next=%2F"  # unknown: the first


async def client_for(app: web.Application) -> TestClient:
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_the_language_cookie_is_kept_for_a_year_and_unknown_ones_fall_back() -> None:
    async def show(request: web.Request) -> web.Response:
        return web.Response(text=chosen_lang(request, KNOWN, "zh"))

    app = web.Application()
    app.router.add_get("/", show)
    add_lang_route(app, "/lang", KNOWN)
    client = await client_for(app)
    try:
        assert await (await client.get("/")).text() == "zh"  # no cookie: the default
        switched = await client.get("/lang/en?next=%2Froom%2Fa1", allow_redirects=False)
        assert switched.status == 303 and switched.headers["Location"] == "/room/a1"
        set_cookie = switched.headers["Set-Cookie"]
        assert set_cookie.startswith(f"{LANG_COOKIE}=en;") and "Max-Age=31536000" in set_cookie
        assert "SameSite=Lax" in set_cookie and "Path=/" in set_cookie
        assert await (await client.get("/")).text() == "en"
        away = await client.get("/lang/zh?next=//evil.example/", allow_redirects=False)
        assert away.headers["Location"] == "/"
        tabbed = await client.get("/lang/zh?next=/%09/evil.example/", allow_redirects=False)
        assert tabbed.headers["Location"] == "/"  # not "//evil.example/"
        unknown = await client.get("/lang/fr?next=%2F", allow_redirects=False)
        assert unknown.status == 303 and "Set-Cookie" not in unknown.headers  # the old choice stays
        client.session.cookie_jar.update_cookies({LANG_COOKIE: "fr"}, client.make_url("/"))
        assert await (await client.get("/")).text() == "zh"  # a cookie we cannot honour: the default
    finally:
        await client.close()


async def test_the_session_cookie_is_httponly_and_strict() -> None:
    async def login(request: web.Request) -> web.Response:
        response = web.Response(text="in")
        set_session_cookie(response, "sid", "value", max_age=60, secure=request.query.get("secure") == "1")
        return response

    app = web.Application()
    app.router.add_get("/login", login)
    client = await client_for(app)
    try:
        plain = (await client.get("/login")).headers["Set-Cookie"]
        assert plain.startswith("sid=value;") and "HttpOnly" in plain and "SameSite=Strict" in plain
        assert "Max-Age=60" in plain and "Path=/" in plain and "Secure" not in plain
        assert "Secure" in (await client.get("/login?secure=1")).headers["Set-Cookie"]
    finally:
        await client.close()


def test_a_session_carries_the_generation_it_was_issued_in() -> None:
    sessions = Sessions(SECRET, 3600)
    assert sessions.claims(sessions.issue("li", 7)) == ("li", 7)
    assert sessions.claims(sessions.issue("li")) == ("li", 0)
    for bad in (b'{"u": "li", "exp": 4000000000, "g": "7"}', b'{"u": "li", "exp": 4000000000, "g": true}'):
        body = base64.urlsafe_b64encode(bad)
        signature = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        assert sessions.claims(f"{body.decode()}.{signature}") is None, bad


def test_the_throttle_slows_down_then_locks_then_forgets() -> None:
    now = [0.0]
    throttle = Throttle(free=3, lock_after=6, lock_s=600, forget_s=3600, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.wait("user:li", "client:a") == 0
        throttle.failed("user:li", "client:a")
    assert throttle.wait("user:li") == 0  # three free tries
    throttle.failed("user:li")
    assert throttle.wait("user:li") == 1 and throttle.wait("user:wang") == 0
    now[0] += 1
    throttle.failed("user:li")
    assert throttle.wait("user:li") == 2  # doubling
    now[0] += 2
    throttle.failed("user:li")
    assert throttle.locked("user:li") and throttle.wait("user:li") == 600
    now[0] += 600
    assert throttle.wait("user:li") == 0 and throttle.locked("user:li")  # one try after the lock ...
    throttle.failed("user:li")
    assert throttle.wait("user:li") == 1200  # ... and a wrong one locks again at once, twice as long
    now[0] += 1200 + 3600
    assert not throttle.locked("user:li") and throttle.left("user:li") == 6  # forgotten
    throttle.failed("client:b")
    throttle.succeeded("client:b")
    assert throttle.left("client:b") == 6


def test_the_throttle_keeps_a_bounded_number_of_keys() -> None:
    throttle = Throttle(free=0, lock_after=2, max_keys=100)
    for n in range(1000):
        throttle.failed(f"client:{n}")
    assert throttle.wait("client:999") == 1 and throttle.left("client:0") == 2  # the oldest were dropped
