"""Live push targets: ``rtmp://``, ``rtmps://`` and ``srt://`` URLs, checked, and their secrets kept out of every text.

A platform's ingest URL carries its stream key: the last path segment of an RTMP URL (and any
query string after it), the ``streamid`` and ``passphrase`` of an SRT URL, and a password in
either's user info.  Anyone holding the key can broadcast as the school, so no log line, reply,
status, alarm or exception message may show it: `PushTarget.redacted` is the URL with each
secret replaced by ``***``, and `PushTarget.scrub` does the same to any text (an FFmpeg error
that quotes the URL), in the URL's own spelling and percent-decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from streaming.errors import StreamingError

__all__ = ["FORMATS", "MASK", "PushTarget", "TargetError", "parse_target"]

MASK = "***"
FORMATS = {"rtmp": "flv", "rtmps": "flv", "srt": "mpegts"}  # what each protocol carries
SRT_SECRETS = ("streamid", "passphrase")
MAX_URL = 2048
MIN_SECRET = 4  # a shorter key could not be told apart from the words around it when it is scrubbed


class TargetError(StreamingError):
    """A push URL is unusable; the message never contains its secrets."""


@dataclass(frozen=True, slots=True)
class PushTarget:
    """A checked push URL: where the programme goes, and what must never be shown of it."""

    url: str
    redacted: str
    secrets: tuple[str, ...]

    @property
    def scheme(self) -> str:
        """``rtmp``, ``rtmps`` or ``srt``."""
        return self.url.split("://", 1)[0].lower()

    @property
    def format(self) -> str:
        """The container the protocol carries: ``flv`` (RTMP) or ``mpegts`` (SRT)."""
        return FORMATS[self.scheme]

    def scrub(self, text: str) -> str:
        """`text` with every secret (as written in the URL, and decoded) replaced by ``***``."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def __repr__(self) -> str:
        """Never the URL itself: a dataclass repr in a traceback would show the key."""
        return f"PushTarget({self.redacted!r})"

    __str__ = __repr__


def parse_target(url: object) -> PushTarget:
    """A `PushTarget`, or TargetError saying what is wrong (its message shows only the redacted URL)."""
    if not isinstance(url, str) or not url:
        raise TargetError(f"got {type(url).__name__}, expected an rtmp://, rtmps:// or srt:// URL")
    if len(url) > MAX_URL or not url.isprintable() or any(c.isspace() for c in url):
        raise TargetError(f"expected a URL of at most {MAX_URL} printable characters without spaces")
    try:
        parts = urlsplit(url, allow_fragments=False)  # a "#" is part of a key or streamid, not a fragment
        port = parts.port
    except ValueError as exc:
        raise TargetError(f"{_masked_guess(url)}: not a URL ({_plain(exc)})") from None
    scheme = parts.scheme.lower()
    if scheme not in FORMATS:
        raise TargetError(f"scheme {scheme or '(none)'!r}: expected rtmp://, rtmps:// or srt://")
    host = parts.hostname or ""
    if not host or not re.fullmatch(r"[A-Za-z0-9.\-:\[\]]+", parts.netloc.rsplit("@", 1)[-1]):
        raise TargetError(f"{scheme}://: expected a host name or address after {scheme}://")
    secrets = [parts.password] if parts.password else []
    if scheme == "srt":
        redacted, found = _srt(parts.query, url)
        if port is None:
            raise TargetError(f"{scheme}://{host}: expected a port (srt://HOST:PORT?streamid=...)")
    else:
        redacted, found = _rtmp(parts.path, parts.query, url)
    secrets += found
    short = [s for s in secrets if len(s) < MIN_SECRET]
    if short:
        raise TargetError(f"a stream key, streamid or password shorter than {MIN_SECRET} characters")
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = f"{parts.username}:{MASK}@" if parts.password else (f"{parts.username}@" if parts.username else "")
    shown = f"{scheme}://{user}{netloc}{redacted}"
    every = {s for secret in secrets for s in (secret, unquote(secret), quote(unquote(secret), safe=""))}
    return PushTarget(url, shown, tuple(sorted(s for s in every if s)))


def _rtmp(path: str, query: str, url: str) -> tuple[str, list[str]]:
    """(the redacted path, the secrets) of ``/app[/...]/KEY[?query]``."""
    segments = [s for s in path.split("/") if s]
    if len(segments) < 2:
        raise TargetError(f"{_masked_guess(url)}: expected rtmp://HOST[:PORT]/APP/STREAM_KEY")
    secrets = [segments[-1]]
    if query:
        secrets.append(query)
    app = "/".join(segments[:-1])
    return f"/{app}/{MASK}", secrets


def _srt(query: str, url: str) -> tuple[str, list[str]]:
    """(the redacted query, the secrets): ``streamid`` and ``passphrase`` values."""
    if not query:
        return "", []
    secrets, shown = [], []
    for item in query.split("&"):
        key, sep, value = item.partition("=")
        if key.lower() in SRT_SECRETS and value:
            secrets.append(value)
            shown.append(f"{key}={MASK}")
        else:
            shown.append(item)
    try:
        parse_qsl(query, strict_parsing=True, keep_blank_values=True)
    except ValueError:
        raise TargetError(f"{_masked_guess(url)}: expected srt://HOST:PORT?streamid=...&passphrase=...") from None
    return "?" + "&".join(shown), secrets


def _masked_guess(url: str) -> str:
    """A broken URL shown safely: its scheme and host part only."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}/{MASK}" if rest else MASK


def _plain(exc: Exception) -> str:
    """An exception's words without any quoted part of the URL."""
    return re.sub(r"'[^']*'", "'...'", str(exc))
