"""Profile-only checks on top of `drivers.checks`: templates, hex bytes, the simulator section, examples."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.checks import Checks
from drivers.errors import ArgumentError
from drivers.profile_model import STATE_KEYS, FieldType, Profile, ReplySpec, SimReply
from drivers.protocol.template import EncodeError, Template, TemplateError


def parse_template(check: Checks, text: object, path: str) -> Template | None:
    """A parsed template, or None with the parse error recorded."""
    if not isinstance(text, str):
        check.add(path, f"got {text!r}, expected a template string")
        return None
    try:
        return Template.parse(text)
    except TemplateError as exc:
        check.add(path, str(exc))
        return None


def parse_hex(check: Checks, text: object, path: str) -> bytes:
    """Bytes written as hex, or b"" with a problem recorded."""
    if isinstance(text, str):
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    check.add(path, f"got {text!r}, expected hex bytes like '90 41 FF'")
    return b""


def sim_initial(check: Checks, sim: Mapping[str, Any], fields: Mapping[str, FieldType]) -> dict[str, object]:
    """``[simulator] initial``: known state names, values the profile's fields accept."""
    initial: dict[str, object] = check.mapping(sim, "initial", "simulator")
    for key, value in initial.items():
        if key not in STATE_KEYS:
            check.add(f"simulator.initial.{key}", f"unknown state; expected one of {', '.join(STATE_KEYS)}")
        elif key in fields:
            _value_fits(check, fields[key], value, f"simulator.initial.{key}")
    return initial


def sim_reply(
    check: Checks,
    sim: Mapping[str, Any],
    key: str,
    replies: Mapping[str, ReplySpec],
    fields: Mapping[str, FieldType],
) -> SimReply | None:
    """``[simulator] unknown_command`` / ``when_off``: a known reply with values that fit."""
    if key not in sim:
        return None
    path = f"simulator.{key}"
    spec = check.table(sim[key], path, {"reply", "fields"}, {"reply"})
    name = check.text(spec, "reply", path)
    if name not in replies:
        check.add(f"{path}.reply", f"unknown reply {name!r}")
    values: dict[str, object] = check.mapping(spec, "fields", path)
    for field_name, value in values.items():
        where = f"{path}.fields.{field_name}"
        if field_name not in fields:
            check.add(where, f"no [fields.{field_name}] definition")
        elif not (isinstance(value, str) and value.startswith("@") and value[1:].isdigit()):
            _value_fits(check, fields[field_name], value, where)
    return SimReply(name, values)


def _value_fits(check: Checks, ftype: FieldType, value: object, path: str) -> None:
    try:
        ftype.coerce(value)
    except ArgumentError as exc:
        check.add(path, str(exc))


def check_examples(check: Checks, data: dict[str, Any], profile: Profile) -> None:
    """Every example must come out of (commands) or match (replies) its own rule."""
    from drivers.protocol.engine import Codec

    codec = Codec(profile)
    for name, spec in data.get("commands", {}).items():
        for i, ex in enumerate(check.array(spec, "examples", f"commands.{name}")):
            path = f"commands.{name}.examples[{i}]"
            ex = check.table(ex, path, {"args", "bytes"}, {"bytes"})
            want = parse_hex(check, ex.get("bytes"), f"{path}.bytes")
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
        for i, ex in enumerate(check.array(spec, "examples", f"replies.{name}")):
            path = f"replies.{name}.examples[{i}]"
            ex = check.table(ex, path, {"args", "bytes", "text", "fields"})
            frame = (
                ex["text"].encode("latin-1")
                if isinstance(ex.get("text"), str)
                else parse_hex(check, ex.get("bytes"), f"{path}.bytes")
            )
            parsed = codec.match_reply(profile.replies[name], frame, profile.codes(ex.get("args", {})))
            if parsed is None:
                check.add(path, f"{frame.hex(' ').upper()} does not match the reply's own rule")
            elif parsed != ex.get("fields", {}):
                check.add(f"{path}.fields", f"parsed {parsed}, example says {ex.get('fields', {})}")
