"""HTTP Digest access authentication (RFC 7616, MD5, qop=auth) for the camera's snapshot URI.

ONVIF devices protect their HTTP (non-SOAP) resources with digest authentication (Core spec,
Security); a snapshot URI is fetched by a plain HTTP client, not through WS-Security.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable

REALM = "ONVIF camera"
NONCE_LIFETIME_S = 300.0
MAX_NONCES = 1000
MAX_HEADER = 2048
_PARAM = re.compile(r'\s*([a-zA-Z]+)=("(?:[^"\\]|\\.)*"|[^,\s]*)\s*(?:,|$)')


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def parse_params(header: str) -> dict[str, str] | None:
    """The name=value pairs of a 'Digest ...' Authorization header, or None if it is not one."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest" or len(header) > MAX_HEADER:
        return None
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if not match or match.end() == pos:
            return None
        value = match.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[match.group(1).lower()] = value
        pos = match.end()
    return params


class DigestGuard:
    """Issues challenges and checks answers for one user; nonces expire and are remembered."""

    def __init__(self, user: str, password: str, clock: Callable[[], float]) -> None:
        """`clock` measures nonce lifetimes (monotonic seconds)."""
        self.user, self.password, self.clock = user, password, clock
        self._nonces: OrderedDict[str, float] = OrderedDict()
        self._opaque = secrets.token_hex(8)

    def challenge(self) -> str:
        """A fresh WWW-Authenticate header value."""
        now = self.clock()
        while self._nonces and (
            len(self._nonces) >= MAX_NONCES or now - next(iter(self._nonces.values())) > NONCE_LIFETIME_S
        ):
            self._nonces.popitem(last=False)
        nonce = secrets.token_hex(16)
        self._nonces[nonce] = now
        return f'Digest realm="{REALM}", qop="auth", algorithm=MD5, nonce="{nonce}", opaque="{self._opaque}"'

    def check(self, method: str, uri: str, header: str | None) -> bool:
        """Whether `header` (an Authorization value) proves the password for `method` on `uri`."""
        params = parse_params(header or "")
        if params is None:
            return False
        nonce = params.get("nonce", "")
        issued = self._nonces.get(nonce)
        if issued is None or self.clock() - issued > NONCE_LIFETIME_S:
            return False
        if params.get("uri") != uri or params.get("realm") != REALM or params.get("qop") != "auth":
            return False
        if params.get("algorithm", "MD5").upper() != "MD5":
            return False
        ha1 = _md5(f"{self.user}:{REALM}:{self.password}")
        ha2 = _md5(f"{method}:{uri}")
        nc, cnonce = params.get("nc", ""), params.get("cnonce", "")
        expected = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        user_ok = hmac.compare_digest(params.get("username", "").encode(), self.user.encode())
        return hmac.compare_digest(params.get("response", "").encode(), expected.encode()) and user_ok
