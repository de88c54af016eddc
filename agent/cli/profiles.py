"""``classroom-agent profiles list|show|encode|decode``."""

from __future__ import annotations

import argparse
import json

from contract.args import parse_assignments
from drivers.errors import ArgumentError
from drivers.profile import find_profile, profile_ids
from drivers.profile_model import CommandSpec, FieldType, Profile
from drivers.protocol.engine import Codec, Framer, Request


def run(args: argparse.Namespace) -> int:
    """Dispatch one ``profiles`` action."""
    if args.action == "list":
        return _list()
    profile = find_profile(args.id)
    if args.action == "show":
        print(describe(profile))
        return 0
    codec = Codec(profile)
    if args.action == "encode":
        print(codec.encode(args.command, parse_assignments(args.args)).hex(" ").upper())
        return 0
    replies = decode(profile, args.command, "".join(args.hex))
    final = dict(replies[-1])
    if len(replies) > 1:
        final["replies"] = replies
    print(json.dumps(final, ensure_ascii=False, allow_nan=False))
    return 0


def _list() -> int:
    rows = [("ID", "KIND", "CONFIDENCE", "CONTROL", "NAME")]
    for pid in profile_ids():
        p = find_profile(pid)
        rows.append((pid, p.kind, p.provenance.confidence, _ports(p), p.name))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[4])
    return 0


def _ports(p: Profile) -> str:
    if not p.framed:  # a driver of its own (onvif: SOAP over HTTP): no serial line, no frames
        return f"{p.driver} driver, tcp {p.transport.tcp_port}" if p.transport.tcp_port else f"{p.driver} driver"
    s = p.transport.serial
    parts = [f"serial {s.baud} {s.bytesize}{s.parity}{s.stopbits}"] if s is not None else []
    if p.transport.tcp_port:
        login = f" ({p.transport.login} login)" if p.transport.login else ""
        parts.append(f"tcp {p.transport.tcp_port}{login}")
    if p.transport.udp_port:
        parts.append(
            f"udp {p.transport.udp_port}"
            + (f" ({p.transport.udp_encapsulation})" if p.transport.udp_encapsulation else "")
        )
    return ", ".join(parts)


def _type(f: FieldType, broadcast: bool = False) -> str:
    if f.kind == "text":
        text = f"text up to {f.max} characters"
    else:
        text = "|".join(f.values) if f.kind == "enum" else f"{f.min}..{f.max}"
    if broadcast and f.broadcast is not None:
        text += f"|0x{f.broadcast:02X}=all"
    return text + (f" (default {f.default})" if f.default is not None else "")


def _command_line(p: Profile, c: CommandSpec) -> str:
    """``zoom_tele [speed=0..7]  -> ack, completion  # doc``: optional arguments in brackets."""
    params = []
    for n in c.params:
        text = f"{n}={_type(p.fields[n], c.broadcast)}"
        params.append(f"[{text}]" if n in c.optional else text)
    replies = ", ".join(p.replies[r].kind for r in c.replies) or ("no reply" if p.framed else p.driver)
    notes = [c.doc] if c.doc else []
    if c.broadcast:
        notes.append("may be broadcast: then no reply")
    line = f"    {c.name} {' '.join(params)}".rstrip() + f"  -> {replies}"
    return line + (f"  # {'; '.join(notes)}" if notes else "")


def describe(p: Profile) -> str:
    """A technician's view of a profile."""
    lines = [
        f"{p.id}: {p.name} ({p.kind})",
        f"  source: {p.provenance.document} [{p.provenance.confidence}]",
    ]
    if p.provenance.url:
        lines.append(f"  url: {p.provenance.url}")
    if p.provenance.notes:
        lines.append(f"  notes: {p.provenance.notes}")
    lines += [
        f"  control: {_ports(p)}",
        f"  polls every {p.poll_interval_s:g} s: {', '.join(p.poll_commands) or '-'}",
        "  commands:",
    ]
    lines += [_command_line(p, c) for c in p.commands.values()]
    if p.provenance.unsourced:
        lines.append(f"  not sourced (no code published, so no command): {', '.join(p.provenance.unsourced)}")
    return "\n".join(lines)


def decode(profile: Profile, command: str, hex_text: str) -> list[dict[str, object]]:
    """Parse reply bytes for `command`; ArgumentError when they are not hex or not a reply."""
    try:
        data = bytes.fromhex(hex_text)
    except ValueError:
        raise ArgumentError(f"malformed hex {hex_text!r}") from None
    spec = profile.command(command)
    codec = Codec(profile)
    request = Request(spec, {}, b"", {})
    out = []
    for frame, garbage in Framer(profile.reply_frame, profile.checksum).feed(data):
        reply = None if garbage else codec.parse(request, frame)
        if reply is None:
            raise ArgumentError(f"{frame.hex(' ').upper()} is not a reply {profile.id} {command} expects")
        out.append(reply.to_dict())
    if not out:
        raise ArgumentError(f"{data.hex(' ').upper()} is not a complete reply frame")
    return out
