"""The wire form of a payload (a JSON object with ``"schema": 1``) and the typed readers of its fields.

Every payload reader in the contract goes through `get`, `choice` and `timestamp`, so a field that
breaks the contract raises PayloadError naming its key.  They are the shared checker of
`drivers.checks` set to fail fast: a message is dropped at its first bad field, where a config
collects every problem.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from contract.errors import PayloadError
from contract.timestamps import parse_iso
from drivers.checks import REQUIRED, Checks

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
