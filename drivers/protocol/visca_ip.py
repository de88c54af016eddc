"""VISCA over IP, sans-IO: the 8-byte header, sequence numbers and control messages.

Header (big-endian): payload type (2 bytes), payload length (2), sequence number (4).
Types: 0x0100 VISCA command, 0x0110 inquiry, 0x0111 reply, 0x0120 device setting,
0x0200 control command, 0x0201 control reply.  Control payload 01 is RESET (sequence to 0);
0F 01 / 0F 02 report a sequence-number / message error.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

COMMAND = 0x0100
INQUIRY = 0x0110
REPLY = 0x0111
SETTING = 0x0120
CONTROL = 0x0200
CONTROL_REPLY = 0x0201

RESET = b"\x01"
SEQUENCE_ERROR = b"\x0f\x01"
MESSAGE_ERROR = b"\x0f\x02"

_HEADER = struct.Struct(">HHI")


@dataclass(frozen=True, slots=True)
class Datagram:
    """One VISCA-over-IP message."""

    type: int
    sequence: int
    payload: bytes

    def __bytes__(self) -> bytes:
        """The wire form: header then payload."""
        return _HEADER.pack(self.type, len(self.payload), self.sequence) + self.payload

    @classmethod
    def parse(cls, data: bytes) -> Datagram:
        """Read one datagram; ValueError when the header is malformed."""
        if len(data) < _HEADER.size + 1:
            raise ValueError(f"datagram of {len(data)} bytes is shorter than a header and payload")
        kind, length, sequence = _HEADER.unpack_from(data)
        payload = data[_HEADER.size :]
        if length != len(payload) or not 1 <= length <= 16:
            raise ValueError(f"header says {length} payload bytes, datagram has {len(payload)}")
        return cls(kind, sequence, payload)


def payload_type(packet: bytes) -> int:
    """The type a controller should use for a VISCA packet: inquiry (``8x 09 ...``) or command."""
    return INQUIRY if len(packet) > 1 and packet[1] == 0x09 else COMMAND


class SequenceCounter:
    """The controller's sequence numbers: one per new message, wrapping at 2**32."""

    def __init__(self) -> None:
        """Start at 0, as after a RESET."""
        self.value = 0

    def reset(self) -> int:
        """The sequence number a RESET carries; numbering restarts after it."""
        self.value = 0
        return 0

    def next(self) -> int:
        """The number for the next new message."""
        self.value = (self.value + 1) & 0xFFFFFFFF
        return self.value
