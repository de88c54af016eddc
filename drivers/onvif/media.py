"""Media profiles (GetProfiles) read into dataclasses, and which one a name like ``main`` or ``sub`` means.

A camera offers several media profiles (Hikvision: ``Profile_1`` the main stream, ``Profile_2`` the
sub stream).  ``main`` is the profile with the largest picture, ``sub`` the one with the smallest
(the first listed wins a tie); any other name must be a profile token the camera listed.  PTZ
commands go to the first profile that has a PTZ configuration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from drivers.errors import ArgumentError, GarbageReceived

MAIN, SUB = "main", "sub"
# ONVIF ReferenceToken: xs:string of at most 64 characters.
MAX_TOKEN = 64
# The most profiles we read from one answer (cameras list a handful).
MAX_PROFILES = 64


@dataclass(frozen=True, slots=True)
class MediaProfile:
    """One media profile: its token, picture and what PTZ moves its configuration says the camera has."""

    token: str
    name: str = ""
    width: int = 0
    height: int = 0
    encoding: str = ""
    ptz: bool = False
    absolute: bool = False  # a default absolute pan/tilt position space: AbsoluteMove works
    relative: bool = False  # a default relative pan/tilt translation space: RelativeMove works
    absolute_zoom: bool = False

    @property
    def pixels(self) -> int:
        """Width times height (0 when the camera did not say)."""
        return self.width * self.height


def read_profiles(answer: object, device: str) -> tuple[MediaProfile, ...]:
    """GetProfiles' answer (plain data) as `MediaProfile`s; GarbageReceived when it lists none usable."""
    items = answer if isinstance(answer, list) else []
    out = []
    for item in items[:MAX_PROFILES]:
        if not isinstance(item, Mapping):
            continue
        token = item.get("token")
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
            continue
        video = _table(item, "VideoEncoderConfiguration")
        size = _table(video, "Resolution")
        ptz = _table(item, "PTZConfiguration")
        out.append(
            MediaProfile(
                token=token,
                name=_text(item.get("Name")),
                width=_count(size.get("Width")),
                height=_count(size.get("Height")),
                encoding=_text(video.get("Encoding")),
                ptz=bool(ptz),
                absolute=bool(ptz.get("DefaultAbsolutePantTiltPositionSpace")),
                relative=bool(ptz.get("DefaultRelativePanTiltTranslationSpace")),
                absolute_zoom=bool(ptz.get("DefaultAbsoluteZoomPositionSpace")),
            )
        )
    if not out:
        raise GarbageReceived("GetProfiles: the camera listed no media profile", device=device)
    return tuple(out)


def choose(profiles: Sequence[MediaProfile], selector: str) -> MediaProfile:
    """The profile `selector` names: ``main``, ``sub`` or a token; ArgumentError listing the tokens."""
    if not profiles:
        raise ArgumentError("the camera has no media profile")
    if selector in ("", MAIN):
        return max(profiles, key=lambda p: p.pixels)  # max keeps the first of equals
    if selector == SUB:
        return min(profiles, key=lambda p: p.pixels)
    for profile in profiles:
        if profile.token == selector:
            return profile
    tokens = ", ".join(p.token for p in profiles)
    raise ArgumentError(f"no media profile {selector[:MAX_TOKEN]!r}; the camera has {tokens} (or say main / sub)")


def ptz_profile(profiles: Sequence[MediaProfile]) -> MediaProfile | None:
    """The first profile with a PTZ configuration, if any."""
    return next((p for p in profiles if p.ptz), None)


def same_host(uri: str, host: str) -> bool:
    """Whether `uri` points at `host` (the camera itself): only there do its credentials go."""
    try:
        return (urlsplit(uri).hostname or "").lower() == host.lower()
    except ValueError:
        return False


def with_credentials(uri: str, user: str, password: str, host: str) -> str:
    """An RTSP URI with the camera's user name and password in it, unless it carries some or points elsewhere.

    Cameras answer GetStreamUri without credentials but ask for the same ones on RTSP; a URI on another
    host (an answer we cannot vouch for) gets none: RTSP may send them in clear text.
    """
    parts = urlsplit(uri)
    if not user or "@" in parts.netloc or not same_host(uri, host):
        return uri
    who = f"{quote(user, safe='')}:{quote(password, safe='')}@"
    return urlunsplit(parts._replace(netloc=who + parts.netloc))


def media_uri(answer: object, operation: str, schemes: tuple[str, ...], device: str) -> str:
    """The ``Uri`` of a GetStreamUri / GetSnapshotUri answer; GarbageReceived unless it is one of `schemes`."""
    uri = answer.get("Uri") if isinstance(answer, Mapping) else None
    if not isinstance(uri, str) or urlsplit(uri.strip()).scheme.lower() not in schemes or len(uri) > 2048:
        shown = repr(uri)[:80]
        raise GarbageReceived(f"{operation}: expected a {' or '.join(schemes)} URI, got {shown}", device=device)
    return uri.strip()


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    return value[:MAX_TOKEN] if isinstance(value, str) else ""


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100_000 else 0
