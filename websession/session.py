"""Signed session cookies and the safe way back after a login.

A session cookie is ``<urlsafe base64 of JSON {"u": subject, "exp": unix seconds, "g": generation}>.<hex HMAC-SHA256
of the base64 part>``.  Only the secret's holder can make one, so a cookie names its subject
until it expires or the secret changes; it is sent HttpOnly (no script reads it) and
SameSite=Strict (no other site's link or form carries it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable

from aiohttp import web


class Sessions:
    """Signs and reads session cookies with one secret."""

    def __init__(self, secret: bytes, lifetime: float, *, wall: Callable[[], float] = time.time) -> None:
        """`secret`: at least 16 random bytes; sessions die when it changes.  `wall`: Unix time now."""
        if len(secret) < 16:
            raise ValueError("session secret: at least 16 bytes")
        self._secret = secret
        self.lifetime = lifetime
        self.wall = wall

    def _sign(self, body: bytes) -> str:
        return hmac.new(self._secret, body, hashlib.sha256).hexdigest()

    def issue(self, subject: str, generation: int = 0) -> str:
        """A cookie value naming `subject`, valid for `lifetime` seconds.

        `generation`: the subject's session generation now; the server ends every earlier session of
        the subject by counting it up (logout, a new password, a new role).
        """
        expires = int(self.wall() + self.lifetime)
        body = base64.urlsafe_b64encode(json.dumps({"u": subject, "exp": expires, "g": generation}).encode())
        return f"{body.decode()}.{self._sign(body)}"

    def read(self, value: str) -> str | None:
        """The subject of a valid, unexpired cookie; None for anything else."""
        claims = self.claims(value)
        return claims[0] if claims is not None else None

    def claims(self, value: str) -> tuple[str, int] | None:
        """The subject and session generation of a valid, unexpired cookie; None for anything else."""
        if not value.isascii():  # ours are base64 and hex; anything else is not worth decoding
            return None
        body, _, signature = value.encode().rpartition(b".")
        if not body or not hmac.compare_digest(self._sign(body).encode(), signature):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("u"), str) or not isinstance(data.get("exp"), int):
            return None
        if data["exp"] <= self.wall():
            return None
        generation = data.get("g", 0)
        if not isinstance(generation, int) or isinstance(generation, bool):
            return None
        return str(data["u"]), generation


def set_session_cookie(response: web.StreamResponse, name: str, value: str, *, max_age: int, secure: bool) -> None:
    """Put a session cookie on `response`: HttpOnly, SameSite=Strict, for the whole site."""
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="Strict", secure=secure, path="/")


def safe_next(target: str | None) -> str:
    """A local path to go back to after a login or a language switch (never another site)."""
    # "//host" and "/\host" are read by browsers as another site's address.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    # Browsers drop tabs and newlines inside a URL ("/\t/host" becomes "//host"): no control
    # character and no space of any kind may pass, wherever it stands.
    if any(not ch.isprintable() or ch.isspace() for ch in target):
        return "/"
    return target
