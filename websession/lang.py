"""The language cookie: which language a visitor chose, and the link and route that switch it."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from urllib.parse import quote

from aiohttp import web

from websession.session import safe_next

LANG_COOKIE = "lang"
LANG_SECONDS = 365 * 86400


def chosen_lang(request: web.Request, known: Collection[str], default: str) -> str:
    """The language chosen in the cookie when it is one of `known`, `default` otherwise."""
    lang = request.cookies.get(LANG_COOKIE, default)
    return lang if lang in known else default


def lang_switch_href(prefix: str, lang: str, languages: Sequence[str], back: str) -> str:
    """The link from `lang` to the next of `languages` (the first after an unknown one), returning to `back`."""
    other = languages[(languages.index(lang) + 1) % len(languages)] if lang in languages else languages[0]
    return f"{prefix}/{other}?next={quote(back, safe='')}"


def add_lang_route(app: web.Application, prefix: str, known: Collection[str]) -> None:
    """``GET {prefix}/{code}?next=…``: remember a known language for a year and go back to a local page."""

    async def switch_lang(request: web.Request) -> web.Response:
        lang = request.match_info["code"]
        response = web.HTTPSeeOther(safe_next(request.query.get("next")))
        if lang in known:
            # Lax, not Strict: the choice should hold when the page is opened from a link elsewhere.
            response.set_cookie(LANG_COOKIE, lang, max_age=LANG_SECONDS, samesite="Lax", path="/")
        raise response

    app.router.add_get(prefix + "/{code}", switch_lang)
