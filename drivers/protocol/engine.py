"""The sans-IO protocol engine: profile-driven encoding, framing and reply parsing.

Nothing here touches a port, a socket or the event loop: bytes in, frames and replies out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from drivers.errors import ArgumentError
from drivers.profile_model import CommandSpec, FrameRule, Profile, ReplySpec
from drivers.protocol.template import Checksum, EncodeError, Raw, Template


@dataclass(frozen=True, slots=True)
class Reply:
    """A parsed reply: its kind (ack, completion, value, error) and named fields."""

    kind: str
    name: str
    fields: Mapping[str, object]
    frame: bytes

    def to_dict(self) -> dict[str, object]:
        """The JSON shape the CLI prints: ``{"kind": ..., <fields>}``."""
        return {"kind": self.kind, **self.fields}


@dataclass(frozen=True, slots=True)
class Unrecognised:
    """Bytes that are not a reply we know: line noise, a wrong baud rate, a booting device."""

    frame: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class Request:
    """An encoded command, remembering the arguments its replies are matched against."""

    command: CommandSpec
    args: Mapping[str, object]
    frame: bytes
    codes: Mapping[str, Raw] = field(default_factory=dict)
    broadcast: bool = False  # sent to every device at once: nothing answers, nothing is awaited

    @property
    def expects_reply(self) -> bool:
        """Whether the device layer waits for an answer to this request."""
        return bool(self.command.replies) and not self.broadcast


class Codec:
    """Stateless, profile-driven encoding and matching, for both ends of the line."""

    def __init__(self, profile: Profile) -> None:
        """Bind to one profile."""
        self.profile = profile

    def request(self, command: str, args: Mapping[str, object]) -> Request:
        """Encode `command` with `args`; ArgumentError names any bad argument."""
        spec = self.profile.command(command)
        template, values = self.profile.pick(spec, args)
        codes = self.profile.codes(values)
        if template is None:
            raise ArgumentError(f"{command}: profile {self.profile.id} is spoken by the {self.profile.driver} driver")
        try:
            frame = template.build(codes, self.profile.checksum)
        except EncodeError as exc:
            raise ArgumentError(f"{command}: {exc}") from exc
        return Request(spec, values, frame, codes, broadcast=bool(self.profile.broadcast_fields(values)))

    def encode(self, command: str, args: Mapping[str, object]) -> bytes:
        """The frame bytes for `command` with `args`."""
        return self.request(command, args).frame

    def match_reply(self, reply: ReplySpec, frame: bytes, known: Mapping[str, Raw]) -> dict[str, object] | None:
        """The user-facing fields of `frame` read as `reply`, or None if it is not one."""
        if reply.template is not None:
            raw = reply.template.match(frame, known, self.profile.checksum, self.profile.fold_case)
        else:
            raw = self._match_regex(reply, frame, known)
        if raw is None:
            return None
        fields = self.profile.fields
        # A code packed into part of a byte ({socket+0x40}) outside its range means this is
        # some other reply (a VISCA completion 90 51 FF is not an ack from socket 0x11).
        # Measured values (a position beyond the documented range) are reported as they are.
        coded = reply.template.coded_names if reply.template is not None else frozenset()
        if any(k in coded and fields[k].kind == "int" and not fields[k].knows(v) for k, v in raw.items()):
            return None
        return {k: fields[k].name_of(v) for k, v in raw.items()}

    def _match_regex(self, reply: ReplySpec, frame: bytes, known: Mapping[str, Raw]) -> dict[str, Raw] | None:
        assert reply.regex is not None
        flags = re.IGNORECASE if self.profile.fold_case else 0
        m = re.fullmatch(reply.regex.pattern, frame.decode("latin-1"), flags | re.DOTALL)
        if m is None:
            return None
        out: dict[str, Raw] = {}
        for name, text in m.groupdict().items():
            ftype = self.profile.fields[name]
            code = text if ftype.kind == "text" else _text_code(ftype.values, text)
            if code is None:
                return None
            if name in known:
                if known[name] != code:
                    return None
            else:
                out[name] = code
        return out

    def parse(self, request: Request | None, frame: bytes) -> Reply | None:
        """Read `frame` as one of the replies `request` may get (any reply if None)."""
        if request is None:
            candidates = tuple(self.profile.replies.values())
            known: Mapping[str, Raw] = {}
        else:
            candidates = self.profile.replies_for(request.command)
            known = request.codes
        for spec in candidates:
            fields = self.match_reply(spec, frame, known)
            if fields is not None:
                return Reply(spec.kind, spec.name, fields, frame)
        return None

    def match_request(self, frame: bytes) -> tuple[str, dict[str, object]] | None:
        """The command and arguments a controller sent (the simulator's side)."""
        fields = self.profile.fields
        for spec in self.profile.commands.values():
            for template in spec.templates:
                raw = template.match(frame, {}, self.profile.checksum, self.profile.fold_case)
                if raw is not None and all(fields[k].knows(v) for k, v in raw.items()):
                    return spec.name, {k: fields[k].name_of(v) for k, v in raw.items()}
        return None

    def build_reply(self, reply: ReplySpec, values: Mapping[str, object]) -> bytes:
        """Write a reply frame from user-facing values (the simulator's side)."""
        if reply.template is None:
            raise ArgumentError(f"reply {reply.name} is a regex; a simulator needs a match template")
        used = {k: v for k, v in values.items() if k in reply.template.names}
        return _build(reply.template, self.profile.codes(used), self.profile.checksum)


def _build(template: Template, codes: Mapping[str, Raw], checksum: Checksum | None) -> bytes:
    try:
        return template.build(codes, checksum)
    except EncodeError as exc:
        raise ArgumentError(str(exc)) from exc


def _text_code(values: Mapping[str, Raw], text: str) -> Raw | None:
    if not values:
        try:
            return int(text, 10)
        except ValueError:
            return None
    for code in values.values():
        if isinstance(code, str) and code.lower() == text.lower():
            return code
        if isinstance(code, int) and text.isdigit() and int(text) == code:
            return code
    return text


def is_final(reply: Reply, command: CommandSpec, profile: Profile) -> bool:
    """Whether `reply` ends the exchange for `command` (an ack may be followed by more)."""
    if reply.kind != "ack":
        return True
    later = {profile.replies[n].kind for n in command.replies}
    return not later & {"completion", "value"}


class Framer:
    """Cuts one direction's byte stream into frames by a profile's frame rule.

    It never keeps more than one frame's worth (the rule's `max_size`) past a `feed`: bytes
    that cannot belong to a frame any more are returned as garbage, and cutting resumes at
    the first place a frame could still start.
    """

    def __init__(self, rule: FrameRule, checksum: Checksum | None = None) -> None:
        """Bind to a rule; `checksum` lets size/length framing resynchronise on bad frames."""
        self.rule = rule
        self.checksum = checksum if checksum is not None and checksum.end == -1 else None
        # A check byte just before the end marker may equal it (NEC's BCC can be 0D).
        tail = -1 - len(rule.end)
        self.end_check = checksum if checksum is not None and rule.end and checksum.end == tail else None
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[bytes, bool]]:
        """Add bytes; return ``(frame, is_garbage)`` pairs for everything now complete."""
        self.buffer += data
        out: list[tuple[bytes, bool]] = []
        while True:
            item = self._next()
            if item is None:
                return out
            out.append(item)

    def _next(self) -> tuple[bytes, bool] | None:
        rule, buf = self.rule, self.buffer
        if rule.start:
            at = buf.find(rule.start)
            if at < 0:
                keep = len(rule.start) - 1
                if len(buf) > keep:
                    return self._take(len(buf) - keep, garbage=True)
                return None
            if at > 0:
                return self._take(at, garbage=True)
        if rule.end:
            # With a start marker, the end must come within one frame: look no further.
            at = buf.find(rule.end, len(rule.start), rule.max_size if rule.start else len(buf))
            if at < 0:
                if len(buf) < rule.max_size:
                    return None  # the frame may still end
                if rule.start:
                    return self._take(len(rule.start), garbage=True)  # a false start: resync on the next
                # Only the last max_size - 1 bytes can still begin a frame: the rest is noise.
                return self._take(len(buf) - rule.max_size + 1, garbage=True)
            size = at + len(rule.end)
            if size > rule.max_size:
                # Too long to be one frame: the head is noise, the tail may still be a reply.
                return self._take(size - rule.max_size, garbage=True)
            if self.end_check is not None and not self._checks(size):
                longer = size + len(rule.end)
                if len(buf) < longer:
                    return None  # the marker may be the check byte: wait for one more
                if buf[size:longer] == rule.end and self._checks(longer):
                    size = longer
            return self._take(size, garbage=False)
        size = rule.size
        if not size:
            if len(buf) <= rule.length_offset:
                return None
            size = buf[rule.length_offset] + rule.length_add
            if size > rule.max_size or size <= rule.length_offset:
                return self._take(len(rule.start), garbage=True)
        if len(buf) < size:
            return None
        if self.checksum is not None:
            frame = bytes(buf[:size])
            if frame[-1] != self.checksum.compute(frame, size - 1):
                return self._take(len(rule.start), garbage=True)
        return self._take(size, garbage=False)

    def _checks(self, size: int) -> bool:
        assert self.end_check is not None
        frame = bytes(self.buffer[:size])
        at = size + self.end_check.end
        return at >= 0 and frame[at] == self.end_check.compute(frame, at)

    def _take(self, n: int, garbage: bool) -> tuple[bytes, bool]:
        chunk = bytes(self.buffer[:n])
        del self.buffer[:n]
        return chunk, garbage


class ControllerProtocol:
    """The controller's end of one device line: one request out, its replies in."""

    def __init__(self, profile: Profile) -> None:
        """Start with nothing pending."""
        self.profile = profile
        self.codec = Codec(profile)
        self.framer = Framer(profile.reply_frame, profile.checksum)
        self.pending: Request | None = None

    def send(self, command: str, args: Mapping[str, object]) -> Request:
        """Encode a command and make it the pending one."""
        self.pending = self.codec.request(command, args)
        return self.pending

    def feed(self, data: bytes) -> list[Reply | Unrecognised]:
        """Bytes from the device in; replies (and what could not be read) out."""
        events: list[Reply | Unrecognised] = []
        for frame, garbage in self.framer.feed(data):
            if garbage:
                events.append(Unrecognised(frame, "bytes outside any frame"))
                continue
            events.extend(self._read(frame))
        return events

    @property
    def buffered(self) -> int:
        """How many received bytes wait for the rest of their frame (at most one frame's worth)."""
        return len(self.framer.buffer)

    def flush(self) -> Unrecognised | None:
        """At a deadline: bytes still waiting for the rest of a frame are noise."""
        left = bytes(self.framer.buffer)
        self.framer.buffer.clear()
        return Unrecognised(left, "incomplete frame at the deadline") if left else None

    def _read(self, frame: bytes) -> list[Reply | Unrecognised]:
        # Noise in front of a terminator-framed reply sticks to it; try later starts.
        for skip in range(len(frame)):
            reply = self.codec.parse(self.pending, frame[skip:])
            if reply is not None:
                head = [Unrecognised(frame[:skip], "noise before a reply")] if skip else []
                return [*head, reply]
        return [Unrecognised(frame, "matches no reply this command expects")]
