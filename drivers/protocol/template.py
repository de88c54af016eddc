"""Byte templates: one small language that both builds frames and matches them.

A template is a space-separated list of tokens:

* ``FF`` -- a literal byte in hex;
* ``"ka "`` -- literal ASCII text;
* ``{name}`` / ``{name*K+C:format}`` -- a field.  When the field's value is known it is
  written (or, when matching, compared); when it is unknown, matching captures it.
  ``K`` and ``C`` make a linear expression (``{address*16+0x80}`` is VISCA's ``y0``).
* ``{checksum}`` -- the frame's check byte, computed by the profile's checksum rule.

Formats: ``u8`` (default), ``u16`` (big-endian), ``nibN`` / ``snibN`` (N bytes carrying one
nibble each, unsigned / two's complement), ``hexN`` / ``HEXN`` / ``decN`` (N ASCII digits),
``chrN`` (N raw ASCII characters), ``dec`` and ``text`` (variable width, up to the next
literal).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from drivers.errors import DriverError

Raw = int | str

_FIELD = re.compile(
    r"^\{(?P<name>[a-z_][a-z0-9_]*)"
    r"(?:\*(?P<mul>0x[0-9a-fA-F]+|\d+))?"
    r"(?:(?P<sign>[+-])(?P<add>0x[0-9a-fA-F]+|\d+))?"
    r"(?::(?P<fmt>[a-zA-Z]+\d*))?\}$"
)
_FORMAT = re.compile(r"^(?P<kind>u8|u16|nib|snib|hex|HEX|dec|chr|text)(?P<width>\d*)$")
_TOKEN = re.compile(r'"[^"]*"|\{[^}]*\}|\S+')


class TemplateError(DriverError, ValueError):
    """A template string does not parse; the message names the offending token."""


class EncodeError(DriverError, ValueError):
    """A value does not fit the field's format."""


@dataclass(frozen=True, slots=True)
class Literal:
    """Bytes that must appear exactly."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Field:
    """A named value at this position, with its linear expression and format."""

    name: str
    fmt: str = "u8"
    width: int = 1
    mul: int = 1
    add: int = 0

    @property
    def variable(self) -> bool:
        """True for formats whose width is decided by the next literal."""
        return self.fmt in ("dec", "text")

    def to_code(self, value: Raw) -> Raw:
        """Apply the linear expression to a field value."""
        if isinstance(value, int):
            return value * self.mul + self.add
        return value

    def from_code(self, code: Raw) -> Raw | None:
        """Invert the linear expression; None when the code is not reachable by it."""
        if not isinstance(code, int):
            return code
        value, rest = divmod(code - self.add, self.mul)
        return None if rest else value

    def pack(self, value: Raw) -> bytes:
        """Write one value in this field's format."""
        code = self.to_code(value)
        try:
            return _pack(self.fmt, self.width, code)
        except (OverflowError, ValueError, TypeError) as exc:
            raise EncodeError(f"{self.name}={value!r} does not fit format {self.format_name}") from exc

    @property
    def format_name(self) -> str:
        """The format as a profile writes it: ``u8``, ``snib4``, ``dec``."""
        return self.fmt if self.fmt in ("u8", "u16", "text") or not self.width else f"{self.fmt}{self.width}"

    def unpack(self, data: bytes) -> Raw | None:
        """Read one value; None when the bytes are not of this format."""
        code = _unpack(self.fmt, self.width, data)
        return None if code is None else self.from_code(code)


Token = Literal | Field


def _pack(fmt: str, width: int, code: Raw) -> bytes:
    if fmt in ("chr", "text"):
        # Free text is UTF-8 (PJLink's projector and input names may be Chinese); codes are ASCII.
        text = str(code).encode("utf-8" if fmt == "text" else "ascii")
        if fmt == "chr" and len(text) != width:
            raise ValueError("wrong width")
        return text
    if not isinstance(code, int):
        code = int(code)
    if fmt == "u8":
        return bytes([code])
    if fmt == "u16":
        return code.to_bytes(2, "big")
    if fmt in ("nib", "snib"):
        bits = 4 * width
        if fmt == "snib":
            if not -(1 << (bits - 1)) <= code < (1 << (bits - 1)):
                raise ValueError("out of range")
            code &= (1 << bits) - 1
        elif not 0 <= code < (1 << bits):
            raise ValueError("out of range")
        return bytes((code >> (4 * (width - 1 - i))) & 0xF for i in range(width))
    if fmt == "dec" and not width:
        return str(code).encode("ascii")
    if code < 0:
        raise ValueError("negative")
    digits = {"hex": f"{code:0{width}x}", "HEX": f"{code:0{width}X}", "dec": f"{code:0{width}d}"}[fmt]
    if len(digits) != width:
        raise ValueError("too wide")
    return digits.encode("ascii")


def _unpack(fmt: str, width: int, data: bytes) -> Raw | None:
    if fmt in ("chr", "text"):
        try:
            return data.decode("utf-8" if fmt == "text" else "ascii")
        except UnicodeDecodeError:
            return None
    if fmt == "u8":
        return data[0]
    if fmt == "u16":
        return int.from_bytes(data, "big")
    if fmt in ("nib", "snib"):
        if any(b > 0xF for b in data):
            return None
        code = 0
        for b in data:
            code = (code << 4) | b
        if fmt == "snib" and code >= 1 << (4 * width - 1):
            code -= 1 << (4 * width)
        return code
    text = data.decode("ascii", errors="replace")
    pattern = {"hex": r"[0-9a-fA-F]+", "HEX": r"[0-9a-fA-F]+", "dec": r"-?[0-9]+"}[fmt]
    if not re.fullmatch(pattern, text):
        return None
    return int(text, 16 if fmt in ("hex", "HEX") else 10)


def _parse_int(text: str) -> int:
    return int(text, 0)


def parse_field(token: str) -> Field:
    """Parse one ``{...}`` token."""
    m = _FIELD.match(token)
    if not m:
        raise TemplateError(f"bad field {token!r}: expected {{name[*K][+C][:format]}}")
    fmt_text = m["fmt"] or "u8"
    f = _FORMAT.match(fmt_text)
    if not f:
        raise TemplateError(f"bad format {fmt_text!r} in {token!r}")
    kind, width_text = f["kind"], f["width"]
    if kind in ("u8", "u16"):
        width = 1 if kind == "u8" else 2
        if width_text:
            raise TemplateError(f"format {kind} takes no width in {token!r}")
    elif kind == "text" or (kind == "dec" and not width_text):
        width = 0
    elif not width_text or int(width_text) < 1:
        raise TemplateError(f"format {kind} needs a width, e.g. {kind}2, in {token!r}")
    else:
        width = int(width_text)
    add = _parse_int(m["add"]) if m["add"] else 0
    if m["sign"] == "-":
        add = -add
    mul = _parse_int(m["mul"]) if m["mul"] else 1
    if mul == 0:
        raise TemplateError(f"multiplier 0 in {token!r}")
    return Field(m["name"], kind, width, mul, add)


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template; build frames with `build`, read them with `match`."""

    source: str
    tokens: tuple[Token, ...]

    @classmethod
    def parse(cls, source: str) -> Template:
        """Parse a template string; raises TemplateError naming the bad token."""
        tokens: list[Token] = []
        for tok in _TOKEN.findall(source):
            if tok.startswith('"'):
                if len(tok) < 2 or not tok.endswith('"'):
                    raise TemplateError(f"unterminated text {tok!r}")
                try:
                    tokens.append(Literal(tok[1:-1].encode("ascii")))
                except UnicodeEncodeError as exc:
                    raise TemplateError(f"non-ASCII text {tok!r}") from exc
            elif tok.startswith("{"):
                tokens.append(parse_field(tok))
            elif re.fullmatch(r"[0-9a-fA-F]{2}", tok):
                tokens.append(Literal(bytes.fromhex(tok)))
            else:
                raise TemplateError(f'bad token {tok!r}: expected a hex byte, "text" or {{field}}')
        if not tokens:
            raise TemplateError("empty template")
        for a, b in zip(tokens, tokens[1:], strict=False):
            if isinstance(a, Field) and a.variable and isinstance(b, Field):
                raise TemplateError(f"variable-width field {{{a.name}}} must be followed by a literal")
        return cls(source, tuple(_merge(tokens)))

    def prefix(self, size: int) -> bytes:
        """The first `size` bytes every frame of this template starts with (fewer when a field comes sooner)."""
        head = self.tokens[0]
        return head.data[:size] if isinstance(head, Literal) else b""

    @property
    def coded_names(self) -> frozenset[str]:
        """Fields written through an expression (``{socket+0x40}``): codes, not measurements."""
        return frozenset(t.name for t in self.tokens if isinstance(t, Field) and (t.mul != 1 or t.add != 0))

    @property
    def names(self) -> tuple[str, ...]:
        """Field names in order of appearance (``checksum`` included)."""
        return tuple(dict.fromkeys(t.name for t in self.tokens if isinstance(t, Field)))

    def build(self, values: Mapping[str, Raw], checksum: Checksum | None = None) -> bytes:
        """Write the frame; every field but ``checksum`` must have a value."""
        out = bytearray()
        check_at = -1
        for tok in self.tokens:
            if isinstance(tok, Literal):
                out += tok.data
            elif tok.name == "checksum":
                check_at = len(out)
                out.append(0)
            else:
                if tok.name not in values:
                    raise EncodeError(f"no value for {{{tok.name}}}")
                out += tok.pack(values[tok.name])
        if check_at >= 0:
            if checksum is None:
                raise EncodeError("template has {checksum} but the profile has no checksum rule")
            out[check_at] = checksum.compute(bytes(out), check_at)
        return bytes(out)

    def match(
        self,
        frame: bytes,
        known: Mapping[str, Raw],
        checksum: Checksum | None = None,
        fold_case: bool = False,
    ) -> dict[str, Raw] | None:
        """Match a whole frame; return the captured fields, or None when it does not match.

        Fields named in `known` must carry exactly that value; others are captured.
        """
        pos, check_at = 0, -1
        captured: dict[str, Raw] = {}
        data = frame.lower() if fold_case else frame
        for i, tok in enumerate(self.tokens):
            if isinstance(tok, Literal):
                lit = tok.data.lower() if fold_case else tok.data
                if not data.startswith(lit, pos):
                    return None
                pos += len(lit)
                continue
            if tok.name == "checksum":
                check_at, pos = pos, pos + 1
                continue
            end = self._field_end(tok, i, data, pos, fold_case)
            if end is None or end > len(frame):
                return None
            value = tok.unpack(frame[pos:end])
            if value is None:
                return None
            expected = known.get(tok.name, captured.get(tok.name))
            if expected is not None and not _same(expected, value):
                return None
            captured[tok.name] = value
            pos = end
        if pos != len(frame):
            return None
        if check_at >= 0 and (checksum is None or frame[check_at] != checksum.compute(frame, check_at)):
            return None
        return {k: v for k, v in captured.items() if k not in known}

    def _field_end(self, tok: Field, i: int, data: bytes, pos: int, fold_case: bool) -> int | None:
        if not tok.variable:
            return pos + tok.width
        following = self.tokens[i + 1] if i + 1 < len(self.tokens) else None
        if following is None:
            return len(data)
        assert isinstance(following, Literal)
        lit = following.data.lower() if fold_case else following.data
        # Free text may be empty (a projector with no name set); a number has at least one digit.
        found = data.find(lit, pos if tok.fmt == "text" else pos + 1)
        return None if found < 0 else found


def _same(expected: Raw, got: Raw) -> bool:
    if isinstance(expected, str) and isinstance(got, str):
        return expected.lower() == got.lower()
    return expected == got


def _merge(tokens: list[Token]) -> list[Token]:
    """Join adjacent literals so matching compares runs, not single bytes."""
    merged: list[Token] = []
    for tok in tokens:
        if isinstance(tok, Literal) and merged and isinstance(merged[-1], Literal):
            merged[-1] = Literal(merged[-1].data + tok.data)
        else:
            merged.append(tok)
    return merged


@dataclass(frozen=True, slots=True)
class Checksum:
    """A check byte: ``sum8`` (sum mod 256) or ``xor8`` over frame[start:end].

    `end` may be negative (counted from the end of the frame, like a slice).
    """

    kind: str
    start: int
    end: int

    def compute(self, frame: bytes, check_at: int) -> int:
        """The check byte for `frame` (whose byte at `check_at` is the checksum itself)."""
        covered = frame[self.start : self.end if self.end else None]
        # The check byte never covers itself, whatever the range says.
        lo = self.start if self.start >= 0 else len(frame) + self.start
        if lo <= check_at < lo + len(covered):
            idx = check_at - lo
            covered = covered[:idx] + covered[idx + 1 :]
        if self.kind == "sum8":
            return sum(covered) & 0xFF
        acc = 0
        for b in covered:
            acc ^= b
        return acc
