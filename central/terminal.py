"""Agent-supplied text printed on a technician's terminal, made harmless."""

from __future__ import annotations

import unicodedata

# Characters that steer a terminal rather than show (ESC, BEL, C1's CSI, bidi overrides, line separators):
# an agent's room name or alarm message holding them could rewrite the technician's screen.
_STEERING = frozenset({"Cc", "Cf", "Zl", "Zp"})


def shown(text: str) -> str:
    r"""`text` safe for a terminal: each control or format character as its JSON escape (ESC as ``\u001b``)."""
    if text.isprintable():
        return text
    return "".join(_escape(c) if unicodedata.category(c) in _STEERING else c for c in text)


def _escape(char: str) -> str:
    r"""``\u001b``; beyond the BMP (a tag character) as JSON spells it, two surrogates."""
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
