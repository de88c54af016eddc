"""Devices that talk too much: floods of noise over real TCP, a real pty and real UDP on loopback.

A fake camera pushing hundreds of MiB once took the agent to 1.15 GB and a 677 MB log. Here each
flood is tens of MiB; what must hold is that the buffers stay small, the log stays small, another
device keeps answering meanwhile, and the flooding device answers again once the flood stops.
"""

from __future__ import annotations

import pytest

from drivers.profile import find_profile
from drivers.profile_model import Profile
from drivers.protocol.engine import ControllerProtocol, Reply


@pytest.fixture
def visca() -> Profile:
    return find_profile("sony-visca")


def test_a_reply_right_after_a_long_unterminated_run_is_still_read(visca: Profile) -> None:
    proto = ControllerProtocol(visca)
    proto.send("get_power", {})
    noise = bytes(range(0xFF)) * 4112  # ~1 MiB that never carries the FF terminator
    largest = visca.reply_frame.max_size
    for at in range(0, len(noise), 4096):
        piece = noise[at : at + 4096]
        if at + 4096 >= len(noise):
            piece += bytes.fromhex("90 50")  # the reply starts in the same read as the last noise
        proto.feed(piece)
        assert len(proto.framer.buffer) < largest  # never more than one frame's worth kept
    events = proto.feed(bytes.fromhex("02 FF"))
    replies = [e for e in events if isinstance(e, Reply)]
    assert [r.to_dict() for r in replies] == [{"kind": "value", "power": "on"}]
