"""``[[upload.targets]]``: where finished recordings go besides classroom-central (FTP / FTPS drops, HTTP PUT).

A target's credentials never appear in a message: not in a config problem, a log line, the status
or `repr` (the URL must not carry them; ``password`` / ``password_file`` / ``token`` hold them).
"""

from __future__ import annotations

import codecs
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from agent.config.paths import resolve_path
from drivers.checks import Checks, at, join, shown

SCHEMES = {"ftp": 21, "ftps": 21, "http": 80, "https": 443}
FILE_FIELDS = ("site", "agent", "room", "recording", "lesson", "teacher", "date", "time")
DEFAULT_FILE_NAME = "{agent}_{recording}"
MAX_TARGETS = 8  # each is a loop, a connection and a line of telemetry
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
_KEYS = {
    "name", "url", "username", "password", "password_file", "token", "ca_file", "file_name", "timeout_s",
    "temp_suffix", "encoding", "chunk_mib",
}  # fmt: skip
_FTP_ONLY = ("temp_suffix", "encoding")
_HTTP_ONLY = ("token", "chunk_mib")


@dataclass(frozen=True, slots=True)
class DeliveryTarget:
    """One ``[[upload.targets]]`` entry: a name, where (no credentials in `url`) and how to log in."""

    name: str
    url: str  # ftp://, ftps:// (explicit TLS), http:// or https://; the folder (FTP) or URL prefix (HTTP)
    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)  # HTTP: sent as ``Authorization: Bearer``
    ca_file: Path | None = None  # ftps/https: trust this CA (a private CA, a self-signed certificate)
    file_name: str = DEFAULT_FILE_NAME  # the remote name without extension, from `FILE_FIELDS`
    timeout_s: float = 30.0  # each network step; a transfer without progress this long is cut
    temp_suffix: str = ".part"  # FTP: the file is written as NAME.mp4.part and renamed when whole
    encoding: str = "utf-8"  # FTP: how file names are sent (gbk for some older servers)
    chunk_mib: float = 8.0  # HTTP with Content-Range support: one PUT per chunk

    @property
    def kind(self) -> str:
        """``ftp`` (FTP or FTPS) or ``http`` (HTTP or HTTPS)."""
        return "ftp" if self.scheme.startswith("ftp") else "http"

    @property
    def scheme(self) -> str:
        """``ftp``, ``ftps``, ``http`` or ``https``."""
        return self.url.split(":", 1)[0]

    @property
    def host(self) -> str:
        """The server's host name or address."""
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        """The server's port (the scheme's default when the URL has none)."""
        return urlsplit(self.url).port or SCHEMES[self.scheme]

    @property
    def folder(self) -> tuple[str, ...]:
        """FTP: the folders below the login directory, in order (created when missing)."""
        return tuple(p for p in urlsplit(self.url).path.split("/") if p)

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never be shown (redacted from every message, even a server's echo)."""
        return tuple(s for s in (self.password, self.token) if s)

    @property
    def chunk_bytes(self) -> int:
        """HTTP: the size of one ranged PUT."""
        return max(64 * 1024, int(self.chunk_mib * 2**20))


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced by ``***`` (a server may echo what it was sent)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def parse_targets(check: Checks, spec: Mapping[str, Any], base: Path) -> tuple[DeliveryTarget, ...]:
    """``[[upload.targets]]``: every problem reported with the rest of the config."""
    raw = check.array(spec, "targets", "upload")
    if len(raw) > MAX_TARGETS:
        check.add("upload.targets", f"got {len(raw)} targets, expected at most {MAX_TARGETS}")
        raw = raw[:MAX_TARGETS]
    out: list[DeliveryTarget] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        path = at("upload.targets", i)
        table = check.table(item, path, _KEYS, required=("name", "url"))
        if not table:
            continue
        target = _target(check, table, path, base)
        if target is None:
            continue
        if target.name in names:
            check.add(join(path, "name"), f"duplicate target name {target.name!r}")
        names.add(target.name)
        out.append(target)
    return tuple(out)


def _target(check: Checks, table: Mapping[str, Any], path: str, base: Path) -> DeliveryTarget | None:
    before = len(check.problems)
    name = check.text(table, "name", path)
    if name and not _NAME.fullmatch(name):
        check.add(join(path, "name"), f"got {shown(name)}, expected letters, digits, _ . - (at most 40)")
    url = _url(check, table, path)
    kind = "ftp" if url.startswith("ftp") else "http"
    for key in _HTTP_ONLY if kind == "ftp" else _FTP_ONLY:
        if key in table and url:
            check.add(join(path, key), f"only for {'http(s)' if kind == 'ftp' else 'ftp(s)'} targets")
    password = _password(check, table, path, base)
    target = DeliveryTarget(
        name=name,
        url=url,
        username=check.text(table, "username", path),
        password=password,
        token=check.text(table, "token", path),
        ca_file=_ca_file(check, table, path, base, url),
        file_name=_file_name(check, table, path),
        timeout_s=check.number(table, "timeout_s", path, 30.0, above=0, high=3600, expected="seconds, 0 < s <= 3600"),
        temp_suffix=_suffix(check, table, path),
        encoding=_encoding(check, table, path),
        chunk_mib=check.number(table, "chunk_mib", path, 8.0, low=0.0625, high=64, expected="0.0625..64 MiB"),
    )
    return target if len(check.problems) == before else None


def _url(check: Checks, table: Mapping[str, Any], path: str) -> str:
    text = check.text(table, "url", path)
    where = join(path, "url")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        check.add(where, f"got {shown(_without_userinfo(text))}, expected ftp://HOST[:PORT]/folder or http(s)://...")
        return ""
    if parts.username is not None or parts.password is not None:
        shown_url = _without_userinfo(text)
        check.add(where, f"got {shown(shown_url)} with credentials in it, expected them in username and password")
        return ""
    if parts.scheme not in SCHEMES or not parts.hostname or parts.query or parts.fragment:
        expected = "ftp://HOST[:PORT]/folder, ftps://..., http(s)://HOST[:PORT]/path/ (no ?query or #fragment)"
        check.add(where, f"got {shown(text)}, expected {expected}")
        return ""
    return _normal(parts)


def _normal(parts: SplitResult) -> str:
    """The URL with a path that ends in ``/`` (HTTP: file names are appended to it)."""
    folder = parts.path if parts.path.endswith("/") else parts.path + "/"
    return f"{parts.scheme}://{parts.netloc}{folder}"


def _without_userinfo(text: str) -> str:
    """`text` with anything between ``//`` and ``@`` hidden."""
    return re.sub(r"//[^/@]*@", "//***@", text)


def _password(check: Checks, table: Mapping[str, Any], path: str, base: Path) -> str:
    """``password`` or the first line of ``password_file`` (not both)."""
    password = check.text(table, "password", path)
    file_name = check.text(table, "password_file", path)
    if not file_name:
        return password
    if password:
        check.add(join(path, "password_file"), "expected password or password_file, not both")
        return ""
    file = resolve_path(base, file_name)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        check.add(join(path, "password_file"), f"cannot read {file}: {why}")
        return ""
    if not lines or not lines[0]:
        check.add(join(path, "password_file"), f"{file} is empty, expected the password on its first line")
        return ""
    return lines[0]


def _ca_file(check: Checks, table: Mapping[str, Any], path: str, base: Path, url: str) -> Path | None:
    name = check.text(table, "ca_file", path)
    if not name:
        return None
    if url and url.split(":", 1)[0] not in ("ftps", "https"):
        check.add(join(path, "ca_file"), "only for ftps:// and https:// targets")
    file = resolve_path(base, name)
    if not file.is_file():
        check.add(join(path, "ca_file"), f"{file}: no such file (the CA certificate in PEM)")
    return file


def _file_name(check: Checks, table: Mapping[str, Any], path: str) -> str:
    template = check.text(table, "file_name", path, DEFAULT_FILE_NAME)
    where = join(path, "file_name")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        check.add(where, f"got {shown(template)}: {exc}")
        return DEFAULT_FILE_NAME
    unknown = [f for f in fields if f not in FILE_FIELDS]
    if unknown or not template.strip() or any(c in template for c in "/\\\0"):
        expected = f"a name without / or \\, made of text and {{{'}, {'.join(FILE_FIELDS)}}}"
        check.add(where, f"got {shown(template)}, expected {expected}")
        return DEFAULT_FILE_NAME
    return template


def _suffix(check: Checks, table: Mapping[str, Any], path: str) -> str:
    suffix = check.text(table, "temp_suffix", path, ".part")
    if any(c in suffix for c in "/\\\0") or len(suffix) > 16:
        check.add(join(path, "temp_suffix"), f"got {shown(suffix)}, expected a short suffix like .part (or empty)")
    return suffix


def _encoding(check: Checks, table: Mapping[str, Any], path: str) -> str:
    name = check.text(table, "encoding", path, "utf-8")
    try:
        codecs.lookup(name)
    except LookupError:
        check.add(join(path, "encoding"), f"got {shown(name)}, expected a text encoding such as utf-8 or gbk")
        return "utf-8"
    return name
