"""The wire form of a payload (a JSON object with ``"schema": 1``) and the typed readers of its fields.

Every payload reader in the contract goes through `get`, `choice` and `timestamp`, so a field that
breaks the contract raises PayloadError naming its key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from contract.errors import PayloadError
from contract.timestamps import parse_iso

SCHEMA = 1


def decode(payload: bytes | bytearray | str) -> dict[str, Any]:
    """JSON object with ``schema: 1``; PayloadError otherwise."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError(f"expected a JSON object, got {type(data).__name__}")
    if data.get("schema") != SCHEMA:
        raise PayloadError(f"schema: got {data.get('schema')!r}, expected {SCHEMA}")
    return data


def encode(data: Mapping[str, Any]) -> bytes:
    """The wire form of a payload dict (schema added)."""
    return json.dumps({"schema": SCHEMA, **data}, ensure_ascii=False, separators=(",", ":")).encode()


def get(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    """`data[key]` if it is a `kind` (a bool never passes for a number); `default` when absent, if given."""
    if key not in data:
        if default is ...:
            raise PayloadError(f"{key}: missing")
        return default
    value = data[key]
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise PayloadError(f"{key}: got {value!r}")
    if not isinstance(value, kind):
        raise PayloadError(f"{key}: got {value!r}")
    return value


def choice(data: Mapping[str, Any], key: str, options: tuple[str, ...]) -> str:
    """`data[key]`, a string that must be one of `options`."""
    value = get(data, key, str)
    if value not in options:
        raise PayloadError(f"{key}: got {value!r}, expected one of {', '.join(options)}")
    return str(value)


def timestamp(data: Mapping[str, Any], key: str) -> str:
    """`data[key]`, a contract timestamp (checked, returned as written)."""
    value = get(data, key, str)
    parse_iso(value)
    return str(value)
