"""Codes and their parameters: how alarms, rejections and failures travel so that each reader words them.

An alarm's type, a rejected or failed command's ``code`` and a device's ``code`` (why it is offline)
are short machine-readable names (``arg_range``, ``device_no_reply``); their ``params`` are a small
flat object of values (``{"arg": "level", "value": 140, "min": 0, "max": 100}``).  The centre
renders them in the viewer's language; the English text beside them stays for logs and for the
technician's 技术信息.  Both are bounded: a code is at most `CODE_CHARS` lower-case characters,
params at most `MAX_PARAMS` keys of scalars or short lists of strings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from contract.errors import PayloadError
from contract.limits import INT_MAX, INT_MIN

CODE_CHARS = 64
MAX_PARAMS = 16
KEY_CHARS = 64
PARAM_CHARS = 256
MAX_LIST = 32
_CODE = re.compile(r"[a-z][a-z0-9_.]*\Z")


def code_from(data: Mapping[str, Any], key: str = "code") -> str:
    """`data[key]`: "" when absent; PayloadError naming `key` when it is not a code."""
    value = data.get(key, "")
    if not isinstance(value, str):
        raise PayloadError(f"{key}: got {str(value)[:40]!r}, expected a code such as arg_range")
    if value and (len(value) > CODE_CHARS or not _CODE.match(value)):
        raise PayloadError(f"{key}: got {value[:40]!r}, expected a code of a-z, 0-9, _ and . (at most {CODE_CHARS})")
    return value


def params_from(data: Mapping[str, Any], key: str = "params") -> dict[str, Any]:
    """`data[key]`: {} when absent; PayloadError naming the key when it breaks the bounds."""
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise PayloadError(f"{key}: expected an object")
    if len(value) > MAX_PARAMS:
        raise PayloadError(f"{key}: {len(value)} values, expected at most {MAX_PARAMS}")
    for name, item in value.items():
        where = f"{key}.{name[:KEY_CHARS]}"
        if len(name) > KEY_CHARS:
            raise PayloadError(f"{where}: a name of {len(name)} characters, expected at most {KEY_CHARS}")
        if isinstance(item, list):
            if len(item) > MAX_LIST or not all(isinstance(x, str) and len(x) <= PARAM_CHARS for x in item):
                raise PayloadError(f"{where}: expected at most {MAX_LIST} strings of {PARAM_CHARS} characters")
        elif isinstance(item, str):
            if len(item) > PARAM_CHARS:
                raise PayloadError(f"{where}: {len(item)} characters, expected at most {PARAM_CHARS}")
        elif item is not None and not isinstance(item, bool | int | float):
            raise PayloadError(f"{where}: expected a string, a number, true/false, null or a list of strings")
    return dict(value)


def clean_params(params: Mapping[str, object] | None) -> dict[str, Any]:
    """`params` within the bounds `params_from` checks: long texts cut, odd values as text, extra keys left out.

    The sender's side, so that a reply or an event is never refused for its params.
    """
    out: dict[str, Any] = {}
    for name, value in list((params or {}).items())[:MAX_PARAMS]:
        out[str(name)[:KEY_CHARS]] = _scalar(value)
    return out


def _scalar(value: object) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if INT_MIN <= value <= INT_MAX else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [str(x)[:PARAM_CHARS] for x in list(value)[:MAX_LIST]]
    return str(value)[:PARAM_CHARS]
