"""``onvif://USER:PASS@HOST[:PORT]``: where an ONVIF camera is and how to log in, checked before any I/O."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

from drivers.errors import ArgumentError

SCHEME = "onvif"
DEFAULT_PORT = 80
# A DNS name or an IPv4 literal (IPv6 literals come in brackets and are checked by ipaddress).
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
# User names and passwords longer than this are not a camera's (and would only bloat every request).
MAX_CREDENTIAL = 128
EXPECTED = "onvif://USER:PASS@HOST[:PORT] (user and password URL-encoded, e.g. p%40ss for p@ss)"


@dataclass(frozen=True, slots=True)
class OnvifAddress:
    """A camera's host, port and credentials; `str()` and `repr()` never show the password."""

    host: str
    port: int = DEFAULT_PORT
    user: str = ""
    password: str = field(default="", repr=False)

    @property
    def netloc(self) -> str:
        """``HOST:PORT`` (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The address as it was given, the password replaced by ``***``."""
        who = f"{quote(self.user, safe='')}:***@" if self.user else ""
        return f"{SCHEME}://{who}{self.netloc}"

    def __str__(self) -> str:
        """The redacted URL."""
        return self.url


def parse_address(address: str, *, default_port: int = DEFAULT_PORT) -> OnvifAddress:
    """Parse and check ``onvif://USER:PASS@HOST[:PORT]``; ArgumentError naming what is wrong (never the password)."""
    if not isinstance(address, str) or not address.lower().startswith(f"{SCHEME}://"):
        raise ArgumentError(f"ONVIF address: expected {EXPECTED}")
    if any(c.isspace() or not c.isprintable() for c in address):
        raise ArgumentError(f"ONVIF address: spaces or control characters; expected {EXPECTED}")
    parts = urlsplit(address)
    shown = _redacted(address)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ArgumentError(f"{shown}: expected no path, query or fragment after HOST[:PORT]")
    host = parts.hostname or ""
    if not host:
        raise ArgumentError(f"{shown}: no host; expected {EXPECTED}")
    if not _valid_host(host):
        raise ArgumentError(f"{shown}: {host!r} is not a host name or IP address")
    try:
        given = parts.port
    except ValueError:
        given = 0
    if given == 0 or (given is None and parts.netloc.endswith(":")):
        raise ArgumentError(f"{shown}: bad port; expected a number 1..65535")
    port = given or default_port or DEFAULT_PORT
    if parts.username is None or parts.password is None:
        raise ArgumentError(f"{shown}: no user name and password; expected {EXPECTED}")
    user, password = unquote(parts.username), unquote(parts.password)
    if not user:
        raise ArgumentError(f"{shown}: empty user name")
    for name, value in (("user name", user), ("password", password)):
        if len(value) > MAX_CREDENTIAL:
            raise ArgumentError(f"{shown}: {name} longer than {MAX_CREDENTIAL} characters")
        if any(not c.isprintable() for c in value):
            raise ArgumentError(f"{shown}: {name} has control characters")
    return OnvifAddress(host.lower(), port, user, password)


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(_HOSTNAME.match(host))
    return True


def _redacted(address: str) -> str:
    """The address with whatever stands between ``:`` and the last ``@`` of the authority replaced."""
    head, sep, rest = address.partition("://")
    authority, slash, tail = rest.partition("/")
    if "@" not in authority:
        return address
    who, _, hostport = authority.rpartition("@")
    user = who.split(":", 1)[0]
    return f"{head}{sep}{user}:***@{hostport}{slash}{tail}"
