"""Reading a JSON request body that may be hostile: undecodable, not JSON, too deep, or not an object."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

MAX_DEPTH = 32  # a command's arguments are a few levels deep; thousands are an attack on the parser


class BodyError(ValueError):
    """A request body that is not the JSON object expected; `str()` names the problem for the caller."""

    def __init__(self, message: str, status: int = 400) -> None:
        """`status`: the HTTP status to answer with."""
        super().__init__(message)
        self.status = status


def _refuse_constant(name: str) -> Any:
    raise BodyError(f"body: {name} is not a JSON number")


def parse_json_object(raw: bytes, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """The JSON object in `raw`; BodyError naming the first problem otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(f"body: not UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise BodyError(f"body: nested deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise BodyError(f"body: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict):
        raise BodyError(f"body: expected a JSON object, got {type(data).__name__}")
    if depth(data) > max_depth:
        raise BodyError(f"body: nested deeper than {max_depth} levels")
    return data


def depth(value: Any) -> int:
    """How deeply lists and objects nest in `value` (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


async def read_json_object(request: web.Request, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """The request's JSON object body; BodyError (400, or 413 when over the app's size limit) otherwise."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise BodyError(f"body: {(exc.text or 'too large').rstrip('.').lower()}", status=413) from None
    return parse_json_object(raw, max_depth=max_depth)
