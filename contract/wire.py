"""The wire form of a payload (a JSON object with ``"schema": 1``) and the typed readers of its fields.

Every payload reader in the contract goes through `get`, `choice` and `timestamp`, so a field that
breaks the contract raises PayloadError naming its key.  They are the shared checker of
`drivers.checks` set to fail fast: a message is dropped at its first bad field, where a config
collects every problem.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from contract.errors import PayloadError
from contract.limits import INT_DIGITS, INT_MAX, INT_MIN, PAYLOAD, Bounds
from contract.timestamps import parse_iso
from drivers.checks import REQUIRED, Checks

SCHEMA = 1


def decode(payload: bytes | bytearray | str, bounds: Bounds = PAYLOAD) -> dict[str, Any]:
    """JSON object with ``schema: 1`` within `bounds`; PayloadError (and nothing else) otherwise."""
    data = loads(payload, bounds)
    if not isinstance(data, dict):
        raise PayloadError(f"expected a JSON object, got {type(data).__name__}")
    if data.get("schema") != SCHEMA:
        raise PayloadError(f"schema: got {str(data.get('schema'))[:40]!r}, expected {SCHEMA}")
    return data


def loads(payload: bytes | bytearray | str, bounds: Bounds = PAYLOAD) -> Any:
    """Any JSON value within `bounds`: size and depth checked before parsing, numbers and strings while.

    Raises only PayloadError, naming the first limit broken: a hostile payload (deep nesting,
    a 400-digit number, NaN, a megabyte string) costs that message and nothing else.
    """
    raw = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else bytes(payload)
    if len(raw) > bounds.size:
        raise PayloadError(f"payload of {len(raw)} bytes: over the limit of {bounds.size} bytes")
    _check_depth(raw, bounds.depth)
    try:
        text = raw.decode("utf-8")
        data = _DECODER.decode(text)
    except PayloadError:
        raise
    except UnicodeDecodeError as exc:
        raise PayloadError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"not JSON: {str(exc)[:200]}") from None
    if len(text) > bounds.string or b"\\u" in raw:  # a long string, or an escape that may be a lone surrogate
        _check_strings(data, bounds.string)
    return data


def salvage(payload: object, bounds: Bounds = PAYLOAD) -> dict[str, str]:
    """The string fields of a JSON object too broken to pass the contract (within `bounds`; else none).

    So that its sender can still be answered (a command's id, a signalling message's lesson).
    """
    try:
        data = loads(payload, bounds) if isinstance(payload, (bytes, bytearray, str)) else None
    except PayloadError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str) and v}


def encode(data: Mapping[str, Any], bounds: Bounds | None = None) -> bytes:
    """The wire form of a payload dict (schema added); PayloadError for a value JSON cannot carry (NaN, inf).

    With `bounds`, also PayloadError for what a reader would refuse (too big, too deep, a string or an
    integer out of bounds): a sender learns it at once instead of the message vanishing at the reader.
    """
    try:
        text = json.dumps({"schema": SCHEMA, **data}, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError, RecursionError) as exc:
        raise PayloadError(f"cannot encode: {exc}") from None
    raw = text.encode()
    if bounds is not None:
        loads(raw, bounds)  # the reader's own checks, so both sides agree on what passes
    return raw


# -- the checks behind `loads` -----------------------------------------------------------------

# One JSON string (escapes included), written so the regex engine never backtracks.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_AS_SQUARE = bytes.maketrans(b"{}", b"[]")


def _check_depth(raw: bytes, depth: int) -> None:
    """PayloadError when objects and lists nest deeper than `depth`, found without parsing."""
    if raw.count(b"[") + raw.count(b"{") <= depth:
        return  # too few brackets to nest that deep: the common case costs two counts
    brackets = _STRING.sub(b"", raw).translate(_AS_SQUARE, _NOT_BRACKET)
    for _ in range(depth):
        brackets = brackets.replace(b"[]", b"")  # each pass peels one level off every innermost pair
    if brackets:
        raise PayloadError(f"nested deeper than {depth} levels (or unbalanced brackets)")


def _int(text: str) -> int:
    if len(text) > INT_DIGITS:
        raise PayloadError(f"integer of {len(text)} digits: outside int64")
    value = int(text)
    if not INT_MIN <= value <= INT_MAX:
        raise PayloadError(f"integer {text}: outside int64")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise PayloadError(f"number {text[:40]}: not a finite float")
    return value


def _constant(text: str) -> float:
    raise PayloadError(f"{text}: not a number (NaN and Infinity are refused)")


_DECODER = json.JSONDecoder(parse_int=_int, parse_float=_float, parse_constant=_constant)


def _check_strings(value: Any, limit: int) -> None:
    """PayloadError when any string (key or value) in `value` is over `limit` characters or not Unicode text."""
    if isinstance(value, str):
        if len(value) > limit:
            raise PayloadError(f"a string of {len(value)} characters: over the limit of {limit}")
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise PayloadError(f"a string with {exc.reason} (an escaped lone surrogate)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key, limit)
            _check_strings(item, limit)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item, limit)


def _first_problem() -> Checks:
    """A checker that raises PayloadError at the first problem: one bad field costs the whole message."""
    return Checks(fail=PayloadError)


def get(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    """`data[key]` if it is a `kind` (a bool never passes for a number); `default` when absent, if given."""
    return _first_problem().get(data, key, "", kind, REQUIRED if default is ... else default)


def choice(data: Mapping[str, Any], key: str, options: tuple[str, ...]) -> str:
    """`data[key]`, a string that must be one of `options`."""
    return _first_problem().choice(data, key, "", options, REQUIRED, sep=", ")


def timestamp(data: Mapping[str, Any], key: str) -> str:
    """`data[key]`, a contract timestamp (checked, returned as written)."""
    value = get(data, key, str)
    parse_iso(value)
    return str(value)
