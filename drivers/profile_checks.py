"""Profile-only checks on top of `drivers.checks`: templates, hex bytes, the simulator section, examples."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from drivers.checks import Checks
from drivers.errors import ArgumentError
from drivers.profile_model import (
    STATE_KEYS,
    CommandSpec,
    FieldType,
    Profile,
    ReplySpec,
    SimBehaviour,
    SimReply,
    frame_params,
)
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


def parse_sends(check: Checks, data: object, path: str, fields: Mapping[str, FieldType]) -> tuple[Template, ...]:
    """A command's ``send``: one template, or a list tried in order (an optional argument picks the frame)."""
    if not isinstance(data, list):
        template = parse_template(check, data, path)
        return () if template is None else (template,)
    if not data:
        check.add(path, "an empty list; expected at least one template")
    frames: list[Template] = []
    for i, text in enumerate(data):
        template = parse_template(check, text, f"{path}[{i}]")
        if template is None:
            return ()
        mine = set(frame_params(template))
        for j, earlier in enumerate(frames):
            theirs = set(frame_params(earlier))
            # Given exactly this frame's arguments, an earlier frame that takes them all (and has
            # defaults for the rest) is always picked first.
            if mine <= theirs and all(n in fields and fields[n].default is not None for n in theirs - mine):
                check.add(f"{path}[{i}]", f"never sent: {path}[{j}] takes the same arguments and comes first")
        frames.append(template)
    return tuple(frames)


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
    """``[simulator] initial``: known state names (or the profile's own fields), values they accept."""
    initial: dict[str, object] = check.mapping(sim, "initial", "simulator")
    for key, value in initial.items():
        if key not in STATE_KEYS and key not in fields:
            known = ", ".join(STATE_KEYS)
            check.add(f"simulator.initial.{key}", f"unknown state; expected one of {known} or a [fields] name")
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
        elif not (isinstance(value, str) and re.fullmatch(r"@\d+(:\d+)?", value)):
            _value_fits(check, fields[field_name], value, where)
    return SimReply(name, values)


def sim_behaviour(
    check: Checks,
    sim: Mapping[str, Any],
    commands: Mapping[str, CommandSpec],
    replies: Mapping[str, ReplySpec],
    fields: Mapping[str, FieldType],
) -> SimBehaviour:
    """``[simulator]`` warm-up, cool-down, standby commands, hour meters and effects, checked."""
    path = "simulator"
    warmup = check.non_negative(sim, "warmup_s", path, 0.0)
    cooldown = check.non_negative(sim, "cooldown_s", path, 0.0)
    power = fields.get("power")
    for key, state in (("warmup_s", "warming"), ("cooldown_s", "cooling")):
        if sim.get(key) and (power is None or state not in power.values):
            check.add(f"{path}.{key}", f"needs a power field with a {state!r} value")
    standby = tuple(check.array(sim, "standby_commands", path, [c for c in ("power_on", "get_power") if c in commands]))
    for i, name in enumerate(standby):
        if name not in commands:
            check.add(f"{path}.standby_commands[{i}]", f"unknown command {name!r}")
    meters = tuple(check.array(sim, "hour_meters", path))
    for i, name in enumerate(meters):
        if name not in fields or fields[name].kind != "int":
            check.add(f"{path}.hour_meters[{i}]", f"{name!r} is not an int field")
    effects: dict[str, dict[str, object]] = {}
    for name, sets in check.mapping(sim, "effects", path).items():
        where = f"{path}.effects.{name}"
        if name not in commands:
            check.add(where, f"unknown command {name!r}")
        effects[name] = dict(check.table(sets, where))
        for key, value in effects[name].items():
            if key not in fields:
                check.add(f"{where}.{key}", f"no [fields.{key}] definition")
            else:
                _value_fits(check, fields[key], value, f"{where}.{key}")
    available: dict[str, tuple[object, ...]] = {}
    for key, names in check.mapping(sim, "available", path).items():
        where = f"{path}.available.{key}"
        if key not in fields or not isinstance(names, list):
            check.add(where, f"expected a list of {key} values of a [fields.{key}]")
            continue
        for value in names:
            _value_fits(check, fields[key], value, where)
        available[key] = tuple(names)
    return SimBehaviour(
        warmup_s=warmup,
        cooldown_s=cooldown,
        when_busy=sim_reply(check, sim, "when_busy", replies, fields),
        standby_commands=standby,
        hour_meters=meters,
        hours_per_s=check.non_negative(sim, "hours_per_s", path, 0.0),
        effects=effects,
        bad_parameter=sim_reply(check, sim, "bad_parameter", replies, fields),
        command_bytes=check.integer(sim, "command_bytes", path, 0, low=0, high=64),
        available=available,
        when_failed=sim_reply(check, sim, "when_failed", replies, fields),
    )


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
