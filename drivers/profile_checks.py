"""Cross-checks run on a loaded profile: the simulator section, and examples against rules.

Also home of `Checker`, which collects every problem in a file with its key path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.errors import ArgumentError
from drivers.profile_model import STATE_KEYS, FieldType, Profile, ReplySpec, SimReply
from drivers.protocol.template import EncodeError, Template, TemplateError


class Checker:
    """Collects every problem in one file, each with its key path."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, path: str, message: str) -> None:
        """Record one problem at `path`."""
        self.problems.append(f"{path}: {message}")

    def table(
        self, data: object, path: str, allowed: set[str], required: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """`data` as a table, with unknown and missing keys recorded."""
        if not isinstance(data, dict):
            self.add(path, f"expected a table, got {data!r}")
            return {}
        for key in sorted(set(data) - allowed):
            self.add(join(path, key), "unknown key")
        for key in sorted(required - set(data)):
            self.add(join(path, key), "missing")
        return data

    def get(self, data: Mapping[str, Any], key: str, path: str, kind: type, default: Any = None) -> Any:
        """`data[key]` if it is of `kind`; `default` (and a problem if present but wrong)."""
        if key not in data:
            return default
        got = data[key]
        if (kind is int and isinstance(got, bool)) or not isinstance(got, kind):
            self.add(join(path, key), f"got {got!r}, expected {kind.__name__}")
            return default
        return got

    def choice(self, data: Mapping[str, Any], key: str, path: str, options: tuple[str, ...]) -> str:
        """A string that must be one of `options`."""
        got = self.get(data, key, path, str, "")
        if got not in options:
            self.add(join(path, key), f"got {got!r}, expected one of {' | '.join(options)}")
        return str(got)

    def template(self, text: object, path: str) -> Template | None:
        """A parsed template, or None with the parse error recorded."""
        if not isinstance(text, str):
            self.add(path, f"got {text!r}, expected a template string")
            return None
        try:
            return Template.parse(text)
        except TemplateError as exc:
            self.add(path, str(exc))
            return None

    def positive(self, data: Mapping[str, Any], key: str, path: str, default: float) -> Any:
        """A number that must be > 0 (timeouts, intervals)."""
        value = self.get(data, key, path, (int, float), default)  # type: ignore[arg-type]
        if value <= 0:
            self.add(join(path, key), f"got {value!r}, expected a positive number")
            return default
        return value

    def hexbytes(self, text: object, path: str) -> bytes:
        """Bytes written as hex, or b"" with a problem recorded."""
        if isinstance(text, str):
            try:
                return bytes.fromhex(text)
            except ValueError:
                pass
        self.add(path, f"got {text!r}, expected hex bytes like '90 41 FF'")
        return b""


def join(path: str, key: str) -> str:
    """``a.b`` (or ``b`` at the top)."""
    return f"{path}.{key}" if path else key


def sim_initial(check: Checker, sim: Mapping[str, Any], fields: Mapping[str, FieldType]) -> dict[str, object]:
    """``[simulator] initial``: known state names, values the profile's fields accept."""
    initial: dict[str, object] = check.get(sim, "initial", "simulator", dict, {})
    for key, value in initial.items():
        if key not in STATE_KEYS:
            check.add(f"simulator.initial.{key}", f"unknown state; expected one of {', '.join(STATE_KEYS)}")
        elif key in fields:
            _value_fits(check, fields[key], value, f"simulator.initial.{key}")
    return initial


def sim_reply(
    check: Checker,
    sim: Mapping[str, Any],
    key: str,
    replies: Mapping[str, ReplySpec],
    fields: Mapping[str, FieldType],
) -> SimReply | None:
    """``[simulator] unknown_command`` / ``when_off``: a known reply with values that fit."""
    if key not in sim:
        return None
    path = f"simulator.{key}"
    spec = check.table(sim[key], path, {"reply", "fields"}, frozenset({"reply"}))
    name = check.get(spec, "reply", path, str, "")
    if name not in replies:
        check.add(f"{path}.reply", f"unknown reply {name!r}")
    values: dict[str, object] = check.get(spec, "fields", path, dict, {})
    for field_name, value in values.items():
        where = f"{path}.fields.{field_name}"
        if field_name not in fields:
            check.add(where, f"no [fields.{field_name}] definition")
        elif not (isinstance(value, str) and value.startswith("@") and value[1:].isdigit()):
            _value_fits(check, fields[field_name], value, where)
    return SimReply(name, values)


def _value_fits(check: Checker, ftype: FieldType, value: object, path: str) -> None:
    try:
        ftype.coerce(value)
    except ArgumentError as exc:
        check.add(path, str(exc))


def check_examples(check: Checker, data: dict[str, Any], profile: Profile) -> None:
    """Every example must come out of (commands) or match (replies) its own rule."""
    from drivers.protocol.engine import Codec

    codec = Codec(profile)
    for name, spec in data.get("commands", {}).items():
        for i, ex in enumerate(check.get(spec, "examples", f"commands.{name}", list, [])):
            path = f"commands.{name}.examples[{i}]"
            ex = check.table(ex, path, {"args", "bytes"}, frozenset({"bytes"}))
            want = check.hexbytes(ex.get("bytes"), f"{path}.bytes")
            try:
                got = codec.encode(name, ex.get("args", {}))
            except (ArgumentError, EncodeError) as exc:
                check.add(path, f"does not encode: {exc}")
                continue
            if want and got != want:
                check.add(
                    f"{path}.bytes",
                    f"profile encodes {got.hex(' ').upper()}, example says {want.hex(' ').upper()}",
                )
    for name, spec in data.get("replies", {}).items():
        for i, ex in enumerate(check.get(spec, "examples", f"replies.{name}", list, [])):
            path = f"replies.{name}.examples[{i}]"
            ex = check.table(ex, path, {"args", "bytes", "text", "fields"})
            frame = (
                ex["text"].encode("latin-1")
                if isinstance(ex.get("text"), str)
                else check.hexbytes(ex.get("bytes"), f"{path}.bytes")
            )
            parsed = codec.match_reply(profile.replies[name], frame, profile.codes(ex.get("args", {})))
            if parsed is None:
                check.add(path, f"{frame.hex(' ').upper()} does not match the reply's own rule")
            elif parsed != ex.get("fields", {}):
                check.add(f"{path}.fields", f"parsed {parsed}, example says {ex.get('fields', {})}")
