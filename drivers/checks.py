"""Checking config-like input (TOML files, JSON payloads) one way: every problem named by its key path.

`Checks` reads typed values out of nested tables and records each problem as
``key.path: got X, expected Y``.  A configuration collects every problem and reports them all at
once (STYLE habit 9); a wire message stops at its first one (``Checks(fail=PayloadError)``), so
one underlying checker serves both.  Paths are dotted: ``join("recording", "fps")`` is
``recording.fps``, ``at("lessons", 2)`` is ``lessons[2]``, and ``""`` is the top.

It lives in ``drivers`` because every package may import ``drivers`` and ``drivers`` imports
none of ours; it imports nothing but the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Final

Kinds = type | tuple[type, ...]


class _Required:
    """The default that makes a key required (a missing key is then a problem)."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Final = _Required()


def join(path: str, key: str) -> str:
    """``a.b`` (or just one of them when the other is empty)."""
    return f"{path}.{key}" if path and key else path or key


def at(path: str, index: int) -> str:
    """``path[index]``: an item of an array."""
    return f"{path}[{index}]"


def kind_names(kinds: Kinds) -> str:
    """``int or float``: the names of `kinds`, as a message says what it expected."""
    return " or ".join(k.__name__ for k in (kinds if isinstance(kinds, tuple) else (kinds,)))


def shown(value: object, limit: int = 100) -> str:
    """``repr(value)``, cut to `limit` characters: a hostile value must not flood a log line."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


class Checks:
    """Collects every problem of one input as ``key.path: message`` (or raises `fail` at the first)."""

    def __init__(self, root: str = "", *, fail: Callable[[str], Exception] | None = None) -> None:
        self.root = root  # prefixed to every path: "timetable" when a timetable is checked on its own
        self.fail = fail
        self.problems: list[str] = []

    def add(self, path: str, message: str) -> None:
        """Record one problem at `path` (raise it, when failing fast)."""
        where = join(self.root, path)
        text = f"{where}: {message}" if where else message
        if self.fail is not None:
            raise self.fail(text)
        self.problems.append(text)

    def extend(self, problems: Iterable[str]) -> None:
        """Adopt problems already found by another check (a section checked on its own)."""
        self.problems.extend(problems)

    def get(self, data: Mapping[str, Any], key: str, path: str, kinds: Kinds, default: Any = REQUIRED) -> Any:
        """`data[key]` if it is one of `kinds` (a bool only when bool is one); else `default`, with a problem.

        A missing key is `default` without a problem, unless `default` is REQUIRED; a required key
        that is missing or wrong comes back as None.
        """
        if key not in data:
            if default is REQUIRED:
                self.add(join(path, key), "missing")
                return None
            return default
        got = data[key]
        allowed = kinds if isinstance(kinds, tuple) else (kinds,)
        # bool is a subclass of int, but `true` is never a number someone meant.
        if (isinstance(got, bool) and bool not in allowed) or not isinstance(got, allowed):
            self.add(join(path, key), f"got {shown(got)}, expected {kind_names(kinds)}")
            return None if default is REQUIRED else default
        return got

    def text(self, data: Mapping[str, Any], key: str, path: str, default: str = "") -> str:
        """A string."""
        return str(self.get(data, key, path, str, default))

    def flag(self, data: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        """A boolean (``true``/``false``, never 0 or 1)."""
        return bool(self.get(data, key, path, bool, default))

    def array(self, data: Mapping[str, Any], key: str, path: str, default: list[Any] | None = None) -> list[Any]:
        """A list (empty when absent, unless another `default` is given)."""
        return list(self.get(data, key, path, list, [] if default is None else default))

    def mapping(self, data: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
        """A table given inline as a value (``presets = {1 = "讲台"}``); empty when absent."""
        return dict(self.get(data, key, path, dict, {}))

    def integer(
        self,
        data: Mapping[str, Any],
        key: str,
        path: str,
        default: int,
        *,
        low: int | None = None,
        high: int | None = None,
        expected: str = "",
    ) -> int:
        """An int in ``low..high`` (either end may be open); `expected` describes the range in a problem."""
        value = self.get(data, key, path, int, None)
        if value is None:  # absent, or wrong and reported
            return default
        if not _within(value, low, high):
            self.add(join(path, key), f"got {shown(value)}, expected {expected or _range(low, high)}")
            return default
        return int(value)

    def number(
        self,
        data: Mapping[str, Any],
        key: str,
        path: str,
        default: float,
        *,
        low: float | None = None,
        high: float | None = None,
        above: float | None = None,
        expected: str = "",
    ) -> float:
        """A finite int or float in ``low..high`` and greater than `above` (each optional)."""
        value = self.get(data, key, path, (int, float), None)
        if value is None:  # absent, or wrong and reported
            return float(default)
        where = join(path, key)
        try:
            number = float(value)
        except OverflowError:  # an int from JSON may be far beyond any float
            number = math.inf
        if not math.isfinite(number):
            self.add(where, f"got {shown(value)}, expected a finite number")
            return float(default)
        if not _within(number, low, high) or (above is not None and number <= above):
            self.add(where, f"got {shown(value)}, expected {expected or _range(low, high, above)}")
            return float(default)
        return number

    def positive(self, data: Mapping[str, Any], key: str, path: str, default: float) -> float:
        """A number > 0 (timeouts, intervals, sizes)."""
        return self.number(data, key, path, default, above=0, expected="a positive number")

    def non_negative(self, data: Mapping[str, Any], key: str, path: str, default: float) -> float:
        """A number >= 0."""
        return self.number(data, key, path, default, low=0, expected="0 or more")

    def choice(
        self,
        data: Mapping[str, Any],
        key: str,
        path: str,
        options: Collection[str],
        default: Any = "",
        *,
        sep: str = " | ",
    ) -> str:
        """A string that must be one of `options` (`sep` joins them in the problem)."""
        value = self.get(data, key, path, str, default)
        if value is None:  # required, and already reported
            return ""
        if value not in options:
            self.add(join(path, key), f"got {shown(value)}, expected one of {sep.join(options)}")
        return str(value)

    def table(
        self,
        data: object,
        path: str,
        allowed: Collection[str] | None = None,
        required: Collection[str] = (),
        *,
        expected: str = "a table",
    ) -> dict[str, Any]:
        """`data` as a table (empty, with a problem, when it is not one); unknown and missing keys recorded."""
        if not isinstance(data, dict):
            self.add(path, f"got {shown(data)}, expected {expected}")
            return {}
        if allowed is not None:
            self.known(data, path, allowed)
        for key in sorted(set(required) - set(data)):
            self.add(join(path, key), "missing")
        return data

    def section(self, data: Mapping[str, Any], key: str, path: str = "") -> dict[str, Any]:
        """The sub-table ``[key]`` (empty when absent; empty with a problem when not a table)."""
        where = join(path, key)
        return self.table(data.get(key, {}), where, expected=f"a table [{where}]")

    def known(self, data: Mapping[str, Any], path: str, allowed: Collection[str], *, listed: bool = False) -> None:
        """A problem for every key not in `allowed` (naming the allowed ones when `listed`)."""
        hint = f", expected {', '.join(allowed)}" if listed else ""
        for key in sorted(set(data) - set(allowed)):
            self.add(join(path, key), f"unknown key{hint}")


def _within(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _range(low: float | None, high: float | None, above: float | None = None) -> str:
    if above is not None:
        return f"a number above {above:g}" + (f", at most {high:g}" if high is not None else "")
    if low is not None and high is not None:
        return f"{low:g}..{high:g}"
    return f"at least {low:g}" if low is not None else f"at most {high:g}"
