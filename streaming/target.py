"""Live push targets: ``rtmp://``, ``rtmps://`` and ``srt://`` URLs, checked, and their secrets kept out of every text.

A platform's ingest URL carries its stream key: the last path segment of an RTMP URL (and any
query string after it), the ``streamid`` and ``passphrase`` of an SRT URL, and a password in
either's user info.  Anyone holding the key can broadcast as the school, so no log line, reply,
status, alarm or exception message may show it: `PushTarget.redacted` is the URL with each
secret replaced by ``***``, and `PushTarget.scrub` does the same to any text (an FFmpeg error
that quotes the URL), in the URL's own spelling and percent-decoded.

An SRT URL's parameters are those of FFmpeg's (and OBS's) ``srt://`` URLs that a caller pushing
live needs: ``streamid``, ``passphrase``, ``pbkeylen``, ``latency`` (microseconds, as FFmpeg),
``mode=caller`` and ``transtype=live``; any other is refused at load rather than ignored.
`PushTarget.srt` gives them checked and decoded (`SrtParams`), for `streaming.srt`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from streaming.errors import StreamingError

__all__ = ["FORMATS", "MASK", "PushTarget", "SrtParams", "TargetError", "parse_target"]

MASK = "***"
FORMATS = {"rtmp": "flv", "rtmps": "flv", "srt": "mpegts"}  # what each protocol carries
SRT_SECRETS = ("streamid", "passphrase")
SRT_PARAMS = ("streamid", "passphrase", "pbkeylen", "latency", "mode", "transtype")
SRT_PBKEYLENS = (16, 24, 32)  # AES-128, -192, -256
SRT_PASSPHRASE = (10, 79)  # libsrt's limits, in bytes
MAX_STREAMID = 512  # libsrt's limit, in bytes
MAX_LATENCY_US = 60_000_000
MAX_URL = 2048
MIN_SECRET = 4  # a shorter key could not be told apart from the words around it when it is scrubbed


class TargetError(StreamingError):
    """A push URL is unusable; the message never contains its secrets."""


@dataclass(frozen=True, slots=True, repr=False)
class SrtParams:
    """An SRT caller's settings from its URL, decoded; 0 (pbkeylen) and None (latency) for libsrt's default."""

    host: str
    port: int
    streamid: str
    passphrase: str
    pbkeylen: int
    latency_ms: int | None

    def __repr__(self) -> str:
        """Never the secrets."""
        return f"SrtParams({self.host!r}, {self.port})"


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

    def srt(self) -> SrtParams:
        """The SRT caller's settings (checked when the URL was parsed); TargetError for an RTMP URL."""
        if self.scheme != "srt":
            raise TargetError(f"{self.redacted}: not an srt:// URL")
        parts = urlsplit(self.url, allow_fragments=False)
        where = f"srt://{parts.netloc.rsplit('@', 1)[-1]}"
        return _srt_params(parts.hostname or "", parts.port or 0, parts.query, where)


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
        _srt_params(host, port, parts.query, f"srt://{parts.netloc.rsplit('@', 1)[-1]}")  # no query: it may hold a key
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


def _srt_params(host: str, port: int, query: str, shown: str) -> SrtParams:
    """The parameters of an SRT URL's query, each checked; TargetError naming the first bad one."""
    values: dict[str, str] = {}
    for item in query.split("&") if query else []:
        key, _, value = item.partition("=")
        key = key.lower()
        if key not in SRT_PARAMS:
            named = repr(key) if re.fullmatch(r"[a-z_]{1,20}", key) else "(not shown)"  # it might be a pasted key
            raise TargetError(f"{shown}: SRT parameter {named} is not supported (expected {', '.join(SRT_PARAMS)})")
        if key in values:
            raise TargetError(f"{shown}: SRT parameter {key!r} given twice")
        values[key] = unquote(value)  # as FFmpeg: percent-decoded, "+" kept
    if values.get("mode", "caller").lower() != "caller":
        raise TargetError(f"{shown}: mode: expected caller (the platform listens, the classroom calls)")
    if values.get("transtype", "live").lower() != "live":
        raise TargetError(f"{shown}: transtype: expected live")
    streamid, passphrase = values.get("streamid", ""), values.get("passphrase", "")
    if len(streamid.encode()) > MAX_STREAMID:
        raise TargetError(f"{shown}: streamid: expected at most {MAX_STREAMID} bytes")
    low, high = SRT_PASSPHRASE
    if passphrase and not low <= len(passphrase.encode()) <= high:
        raise TargetError(f"{shown}: passphrase: expected {low} to {high} bytes")
    pbkeylen = _srt_number(values, "pbkeylen", shown)
    if pbkeylen not in (0, *SRT_PBKEYLENS):
        raise TargetError(f"{shown}: pbkeylen: got {pbkeylen}, expected 16, 24 or 32")
    latency_us = _srt_number(values, "latency", shown)
    if latency_us > MAX_LATENCY_US:
        raise TargetError(f"{shown}: latency: got {latency_us}, expected microseconds up to {MAX_LATENCY_US}")
    latency_ms = latency_us // 1000 if "latency" in values else None  # FFmpeg's rounding
    return SrtParams(host, port, streamid, passphrase, pbkeylen, latency_ms)


def _srt_number(values: dict[str, str], key: str, shown: str) -> int:
    """A non-negative whole number parameter (0 when absent)."""
    text = values.get(key, "0")
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise TargetError(f"{shown}: {key}: got {text!r}, expected a whole number")
    return int(text)


def _masked_guess(url: str) -> str:
    """A broken URL shown safely: its scheme and host part only."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}/{MASK}" if rest else MASK


def _plain(exc: Exception) -> str:
    """An exception's words without any quoted part of the URL."""
    return re.sub(r"'[^']*'", "'...'", str(exc))
