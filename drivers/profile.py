"""Hardware profiles: TOML files loaded into frozen dataclasses, validated at load.

The format is documented in ``hardware_profiles/README.md``.  Every problem in a file is
reported at once, each as ``file: key.path: what is wrong``; a profile whose examples do not
match its own rules does not load.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from drivers.checks import Checks
from drivers.errors import ArgumentError, ProfileError
from drivers.profile_checks import (
    check_examples,
    parse_hex,
    parse_sends,
    parse_template,
    sim_behaviour,
    sim_initial,
    sim_reply,
)
from drivers.profile_model import (
    CONFIDENCE,
    DRIVERS,
    ENCAPSULATIONS,
    FIELD_TYPES,
    KINDS,
    LOGINS,
    PARITIES,
    REPLY_KINDS,
    CommandSpec,
    FieldType,
    FrameRule,
    Profile,
    Provenance,
    ReplySpec,
    SerialDefaults,
    TransportDefaults,
    frame_params,
)
from drivers.protocol.template import Checksum, Template

__all__ = ["Profile", "find_profile", "load_profile", "load_profile_text", "profile_ids", "profiles_dir"]


_TOP = {"profile", "provenance", "transport", "framing", "poll", "fields", "commands", "replies", "simulator"}


def load_profile_text(text: str, source: str) -> Profile:
    """Parse and validate one profile's TOML text; `source` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML: {exc}") from exc
    check = Checks()
    check.table(data, "", _TOP, frozenset({"profile", "provenance", "commands"}))
    profile = _build(check, data, source)
    if check.problems:
        raise ProfileError("\n".join(f"{source}: {p}" for p in check.problems))
    return profile


def load_profile(path: str | Path) -> Profile:
    """Load one profile file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror}") from exc
    return load_profile_text(text, str(path))


def profiles_dir() -> Path:
    """The shipped ``hardware_profiles`` folder (package data)."""
    return Path(str(resources.files("hardware_profiles")))


def profile_ids() -> list[str]:
    """Ids of every shipped profile, sorted."""
    return sorted(p.stem for p in profiles_dir().glob("*.toml") if "." not in p.stem)


def find_profile(profile_id: str) -> Profile:
    """Load a shipped profile by id, or a profile file by path."""
    if profile_id.endswith(".toml") or "/" in profile_id:
        return load_profile(profile_id)
    path = profiles_dir() / f"{profile_id}.toml"
    if not path.is_file():
        raise ArgumentError(f"unknown profile {profile_id!r}; known: {', '.join(profile_ids())}")
    return load_profile(path)


def _build(check: Checks, data: dict[str, Any], source: str) -> Profile:
    head = check.table(
        data.get("profile", {}),
        "profile",
        {"id", "name", "kind", "driver", "text", "fold_case", "error_replies"},
        frozenset({"id", "name", "kind"}),
    )
    pid = check.text(head, "id", "profile")
    if pid and Path(source).suffix == ".toml" and Path(source).stem != pid:
        check.add("profile.id", f"got {pid!r}, expected the file name {Path(source).stem!r}")
    driver = check.choice(head, "driver", "profile", DRIVERS) if "driver" in head else "engine"
    fields = _fields(check, data.get("fields", {}))
    if driver == "engine" and "framing" not in data:
        check.add("framing", "missing")
    elif driver != "engine" and "framing" in data:
        check.add("framing", f"got a [framing] table, expected none (the {driver} driver frames its own messages)")
    checksum, request, reply = (
        _framing(check, data.get("framing", {})) if driver == "engine" else (None, FrameRule(), FrameRule())
    )
    replies = _replies(check, data.get("replies", {}), fields)
    errors = tuple(check.array(head, "error_replies", "profile"))
    for i, name in enumerate(errors):
        if name not in replies:
            check.add(f"profile.error_replies[{i}]", f"unknown reply {name!r}")
    transport = _transport(check, data.get("transport", {}))
    commands = _commands(check, data.get("commands", {}), fields, replies, transport.timeout_ms, driver)
    if checksum is None:
        for path, template in _templates(commands, replies):
            if "checksum" in template.names:
                check.add(path, "uses {checksum} but [framing] has no checksum rule")
    provenance = _provenance(check, data.get("provenance", {}))
    for i, name in enumerate(provenance.unsourced):
        if not isinstance(name, str):
            check.add(f"provenance.unsourced[{i}]", f"got {name!r}, expected a command name")
        elif name in commands:
            check.add(f"provenance.unsourced[{i}]", f"{name!r} is a command of this profile; list only those left out")
    poll = check.table(data.get("poll", {}), "poll", {"interval_s", "commands"})
    poll_commands = tuple(check.array(poll, "commands", "poll"))
    for i, name in enumerate(poll_commands):
        if name not in commands:
            check.add(f"poll.commands[{i}]", f"unknown command {name!r}")
    sim = check.table(data.get("simulator", {}), "simulator", _SIM_KEYS)
    profile = Profile(
        id=pid,
        name=check.text(head, "name", "profile"),
        kind=check.choice(head, "kind", "profile", KINDS),
        path=source,
        driver=driver,
        fold_case=check.flag(head, "fold_case", "profile", False),
        text=check.flag(head, "text", "profile", False),
        provenance=provenance,
        transport=transport,
        request_frame=request,
        reply_frame=reply,
        checksum=checksum,
        fields=fields,
        commands=commands,
        replies=replies,
        error_replies=errors,
        poll_commands=poll_commands,
        poll_interval_s=float(check.positive(poll, "interval_s", "poll", 10)),
        sim_unknown=sim_reply(check, sim, "unknown_command", replies, fields),
        sim_when_off=sim_reply(check, sim, "when_off", replies, fields),
        sim_initial=sim_initial(check, sim, fields),
        sim=sim_behaviour(check, sim, commands, replies, fields),
    )
    if not check.problems:
        check_examples(check, data, profile)
    return profile


_SIM_KEYS = {
    "unknown_command",
    "when_off",
    "initial",
    "warmup_s",
    "cooldown_s",
    "when_busy",
    "standby_commands",
    "hour_meters",
    "hours_per_s",
    "effects",
    "bad_parameter",
    "command_bytes",
    "available",
    "when_failed",
}


def _fields(check: Checks, data: object) -> dict[str, FieldType]:
    out: dict[str, FieldType] = {}
    for name, spec in check.table(data, "fields").items():
        path = f"fields.{name}"
        spec = check.table(
            spec, path, {"type", "min", "max", "values", "default", "doc", "broadcast"}, frozenset({"type"})
        )
        kind = check.choice(spec, "type", path, FIELD_TYPES)
        values = check.mapping(spec, "values", path)
        for key, code in values.items():
            if isinstance(code, bool) or not isinstance(code, (int, str)):
                check.add(f"{path}.values.{key}", f"got {code!r}, expected an int or a string code")
        if kind == "enum" and not values:
            check.add(f"{path}.values", "an enum needs at least one value")
        ftype = FieldType(
            name=name,
            kind=kind,
            min=check.integer(spec, "min", path, 0),
            max=check.integer(spec, "max", path, 128 if kind == "text" else 255),
            values=values,
            default=spec.get("default"),
            doc=check.text(spec, "doc", path),
            broadcast=check.integer(spec, "broadcast", path, 0) if "broadcast" in spec else None,
        )
        if ftype.broadcast is not None and (kind != "int" or ftype.min <= ftype.broadcast <= ftype.max):
            check.add(f"{path}.broadcast", "expected an int field's code outside min..max (it addresses every device)")
        if ftype.kind == "int" and ftype.min > ftype.max:
            check.add(f"{path}.min", f"{ftype.min} is above max {ftype.max}")
        if ftype.default is not None:
            try:
                ftype.coerce(ftype.default)
            except ArgumentError as exc:
                check.add(f"{path}.default", str(exc))
        out[name] = ftype
    return out


def _framing(check: Checks, data: object) -> tuple[Checksum | None, FrameRule, FrameRule]:
    spec = check.table(data, "framing", {"checksum", "request", "reply"}, frozenset({"request", "reply"}))
    checksum = None
    if "checksum" in spec:
        cs = check.table(spec["checksum"], "framing.checksum", {"type", "start", "end"}, frozenset({"type"}))
        kind = check.choice(cs, "type", "framing.checksum", ("sum8", "xor8", "none"))
        if kind != "none":
            checksum = Checksum(
                kind,
                check.integer(cs, "start", "framing.checksum", 0),
                check.integer(cs, "end", "framing.checksum", 0),
            )
    return (
        checksum,
        _frame_rule(check, spec.get("request", {}), "framing.request"),
        _frame_rule(check, spec.get("reply", {}), "framing.reply"),
    )


def _frame_rule(check: Checks, data: object, path: str) -> FrameRule:
    spec = check.table(data, path, {"start", "end", "size", "length", "max_size"})
    start = parse_hex(check, spec["start"], f"{path}.start") if "start" in spec else b""
    end = parse_hex(check, spec["end"], f"{path}.end") if "end" in spec else b""
    size = check.integer(spec, "size", path, 0)
    if size < 0:
        check.add(f"{path}.size", f"got {size}, expected a frame size in bytes")
    offset, add = -1, 0
    if "length" in spec:
        length = check.table(spec["length"], f"{path}.length", {"offset", "add"}, frozenset({"offset", "add"}))
        offset = check.integer(length, "offset", f"{path}.length", -1)
        add = check.integer(length, "add", f"{path}.length", 0)
    if sum(bool(x) for x in (end, size, offset >= 0)) != 1:
        check.add(path, "give exactly one of end, size, length")
    if (size or offset >= 0) and not start:
        check.add(f"{path}.start", "size and length framing need start bytes to resynchronise on")
    return FrameRule(start, end, size, offset, add, check.integer(spec, "max_size", path, 256))


def _replies(check: Checks, data: object, fields: Mapping[str, FieldType]) -> dict[str, ReplySpec]:
    out: dict[str, ReplySpec] = {}
    for name, spec in check.table(data, "replies").items():
        path = f"replies.{name}"
        spec = check.table(spec, path, {"kind", "match", "regex", "examples", "doc"}, frozenset({"kind"}))
        kind = check.choice(spec, "kind", path, REPLY_KINDS)
        template, regex = None, None
        if ("match" in spec) == ("regex" in spec):
            check.add(path, "give exactly one of match, regex")
        elif "match" in spec:
            template = parse_template(check, spec["match"], f"{path}.match")
        else:
            try:
                regex = re.compile(check.text(spec, "regex", path))
            except re.error as exc:
                check.add(f"{path}.regex", f"does not compile: {exc}")
        reply = ReplySpec(name, kind, template, regex)
        if template is not None or regex is not None:
            _known_names(check, reply.names, fields, f"{path}.{'match' if template else 'regex'}")
        out[name] = reply
    return out


def _known_names(check: Checks, names: tuple[str, ...], fields: Mapping[str, FieldType], path: str) -> None:
    for name in names:
        if name != "checksum" and name not in fields:
            check.add(path, f"field {{{name}}} has no [fields.{name}] definition")


def _transport(check: Checks, data: object) -> TransportDefaults:
    path = "transport"
    keys = {"serial", "tcp_port", "udp_port", "udp_encapsulation", "timeout_ms", "gap_ms", "login", "idle_close_s"}
    spec = check.table(data, path, keys)
    encapsulation = check.text(spec, "udp_encapsulation", path)
    if encapsulation and encapsulation not in ENCAPSULATIONS:
        check.add(
            f"{path}.udp_encapsulation",
            f"got {encapsulation!r}, expected one of {' | '.join(ENCAPSULATIONS)}",
        )
    login = check.choice(spec, "login", path, LOGINS) if "login" in spec else ""
    tcp_port = check.integer(spec, "tcp_port", path, 0)
    if login and not tcp_port:
        check.add(f"{path}.login", f"a {login} login needs a tcp_port")
    return TransportDefaults(
        serial=_serial(check, spec.get("serial", {}), f"{path}.serial"),
        tcp_port=tcp_port,
        udp_port=check.integer(spec, "udp_port", path, 0),
        udp_encapsulation=encapsulation,
        timeout_ms=int(check.positive(spec, "timeout_ms", path, 1000)),
        gap_ms=max(0, check.integer(spec, "gap_ms", path, 0)),
        login=login,
        idle_close_s=check.non_negative(spec, "idle_close_s", path, 0.0),
    )


def _serial(check: Checks, data: object, path: str) -> SerialDefaults | None:
    """``serial = { baud = ... }``, or ``serial = false`` for a device controlled over the network only."""
    if data is False:
        return None
    ser = check.table(data, path, {"baud", "bytesize", "parity", "stopbits"})
    return SerialDefaults(
        baud=check.integer(ser, "baud", path, 9600),
        bytesize=check.integer(ser, "bytesize", path, 8),
        parity=check.choice(ser, "parity", path, PARITIES, "N"),
        stopbits=check.integer(ser, "stopbits", path, 1),
    )


_FRAMED_COMMAND_KEYS = {"send", "replies", "timeout_ms", "retry", "doc", "examples", "broadcast"}
_DRIVER_COMMAND_KEYS = {"params", "timeout_ms", "doc"}


def _commands(
    check: Checks,
    data: object,
    fields: Mapping[str, FieldType],
    replies: Mapping[str, ReplySpec],
    timeout_ms: int,
    driver: str,
) -> dict[str, CommandSpec]:
    """Commands: a `send` template for the frame engine; for a driver of its own, the `params` it takes."""
    out: dict[str, CommandSpec] = {}
    framed = driver == "engine"
    for name, spec in check.table(data, "commands").items():
        path = f"commands.{name}"
        keys = _FRAMED_COMMAND_KEYS if framed else _DRIVER_COMMAND_KEYS
        spec = check.table(spec, path, keys, frozenset({"send"} if framed else set()))
        frames = parse_sends(check, spec.get("send"), f"{path}.send", fields) if framed else ()
        if framed and not frames:
            continue
        if frames:
            params = tuple(dict.fromkeys(n for t in frames for n in frame_params(t)))
        else:
            params = tuple(check.array(spec, "params", path))
        _known_names(check, params, fields, f"{path}.{'send' if framed else 'params'}")
        reply_names = tuple(check.array(spec, "replies", path))
        for i, rname in enumerate(reply_names):
            if rname not in replies:
                check.add(f"{path}.replies[{i}]", f"unknown reply {rname!r}")
        broadcast = check.flag(spec, "broadcast", path, False)
        if broadcast and not any(fields[n].broadcast is not None for n in params if n in fields):
            check.add(f"{path}.broadcast", "none of its fields has a broadcast value")
        out[name] = CommandSpec(
            name=name,
            send=frames[0] if frames else None,
            replies=reply_names,
            params=params,
            timeout_ms=int(check.positive(spec, "timeout_ms", path, timeout_ms)),
            retry=check.flag(spec, "retry", path, True),
            doc=check.text(spec, "doc", path),
            alternatives=frames[1:],
            broadcast=broadcast,
        )
    return out


def _provenance(check: Checks, data: object) -> Provenance:
    path = "provenance"
    keys = {"document", "url", "confidence", "notes", "unsourced"}
    spec = check.table(data, path, keys, frozenset({"document", "confidence"}))
    return Provenance(
        document=check.text(spec, "document", path),
        confidence=check.choice(spec, "confidence", path, CONFIDENCE),
        url=check.text(spec, "url", path),
        notes=check.text(spec, "notes", path),
        unsourced=tuple(check.array(spec, "unsourced", "provenance")),
    )


def _templates(commands: Mapping[str, CommandSpec], replies: Mapping[str, ReplySpec]) -> list[tuple[str, Template]]:
    out = [(f"commands.{name}.send", t) for name, c in commands.items() for t in c.templates]
    out += [(f"replies.{name}.match", r.template) for name, r in replies.items() if r.template is not None]
    return out
