"""WS-Security UsernameToken with PasswordDigest, checked against the camera's own clock.

Digest = Base64(SHA-1(nonce + created + password)) (OASIS UsernameToken Profile 1.0 §3.1).
`Created` must lie within `tolerance_s` of the camera's clock, which may be hours off the
client's: a client that learnt the offset from GetSystemDateAndTime passes, one that did not
is refused with ter:NotAuthorized. A nonce seen within the window is a replay and refused too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

from drivers.sim.onvif.soap import WSSE, WSU, SoapFault, sender, split_tag

PASSWORD_DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
BASE64_BINARY = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
TOLERANCE_S = 300.0
MAX_NONCES = 10_000
MAX_FIELD = 256


def not_authorized(why: str) -> SoapFault:
    """ONVIF's generic authentication failure (HTTP 400 for a UsernameToken-only device)."""
    return sender("NotAuthorized", reason=f"Sender not Authorized: {why}")


def parse_datetime(text: str) -> datetime:
    """An xs:dateTime with a zone ('Z' or an offset) as an aware datetime; ValueError otherwise."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        raise ValueError("no time zone")
    return value


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """The UsernameToken PasswordDigest for these inputs."""
    return base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()


class Authenticator:
    """Checks the UsernameToken of each request for one user, against a clock of its own."""

    def __init__(
        self,
        user: str,
        password: str,
        now: Callable[[], datetime],
        tolerance_s: float = TOLERANCE_S,
    ) -> None:
        """`now` is the camera's clock (UTC, aware); nonces are remembered for the window."""
        self.user, self.password, self.now, self.tolerance_s = user, password, now, tolerance_s
        self._seen: OrderedDict[bytes, datetime] = OrderedDict()

    def check(self, headers: tuple[ET.Element, ...]) -> str:
        """The authenticated user name, or SoapFault ter:NotAuthorized."""
        token = next(
            (b.find(f"{{{WSSE}}}UsernameToken") for b in headers if b.tag == f"{{{WSSE}}}Security"),
            None,
        )
        if token is None:
            raise not_authorized("no WS-Security UsernameToken")
        user = _field(token, f"{{{WSSE}}}Username")
        password = token.find(f"{{{WSSE}}}Password")
        nonce_el = token.find(f"{{{WSSE}}}Nonce")
        created = _field(token, f"{{{WSU}}}Created")
        if password is None or password.get("Type") != PASSWORD_DIGEST:
            raise not_authorized("only PasswordDigest is accepted")
        if nonce_el is None or nonce_el.get("EncodingType", BASE64_BINARY) != BASE64_BINARY:
            raise not_authorized("the token has no Base64 nonce")
        nonce = _base64(nonce_el.text or "")
        when = self._fresh(created)
        expected = password_digest(nonce, created, self.password)
        user_ok = hmac.compare_digest(user.encode(), self.user.encode())
        if not (hmac.compare_digest((password.text or "").strip().encode(), expected.encode()) and user_ok):
            raise not_authorized("wrong user name or password")
        self._remember(nonce, when)
        return user

    def _fresh(self, created: str) -> datetime:
        try:
            when = parse_datetime(created)
        except ValueError as exc:
            raise not_authorized(f"Created {created[:40]!r} is not an xs:dateTime") from exc
        skew = (when - self.now()).total_seconds()
        if abs(skew) > self.tolerance_s:
            raise not_authorized(f"Created is {skew:+.0f} s from the device's clock")
        return when

    def _remember(self, nonce: bytes, when: datetime) -> None:
        now = self.now()
        while self._seen and (
            len(self._seen) >= MAX_NONCES
            or abs((next(iter(self._seen.values())) - now).total_seconds()) > self.tolerance_s
        ):
            self._seen.popitem(last=False)
        if nonce in self._seen:
            raise not_authorized("nonce already used (replay)")
        self._seen[nonce] = when


def _field(token: ET.Element, tag: str) -> str:
    node = token.find(tag)
    text = (node.text or "").strip() if node is not None else ""
    if not text or len(text) > MAX_FIELD:
        raise not_authorized(f"the token's {split_tag(tag)[1]} is missing or too long")
    return text


def _base64(text: str) -> bytes:
    if len(text) > MAX_FIELD:
        raise not_authorized("the nonce is too long")
    try:
        nonce = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise not_authorized("the nonce is not Base64") from exc
    if not nonce:
        raise not_authorized("the nonce is empty")
    return nonce


def utc(timestamp: float) -> datetime:
    """A POSIX timestamp as an aware UTC datetime."""
    return datetime.fromtimestamp(timestamp, UTC)
