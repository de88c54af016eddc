"""Every shipped profile replays its transcript: encoder, reply parser and simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.profile import find_profile, profile_ids
from drivers.protocol.engine import ControllerProtocol, Reply
from drivers.sim.model import Simulator
from drivers.transcript import load_transcript, transcript_path

# A transcript is bytes sent and bytes received, replayed through the frame engine.  A profile
# spoken by a driver of its own (onvif: SOAP over HTTP) has no frames for the engine to replay: its
# driver's tests run it against its simulator over real sockets instead (tests/drivers/<driver>/).
NO_FRAMES = "spoken by the {driver} driver, not the frame engine: tests/drivers/{driver}/ runs it against its simulator"
FRAMED = [pid for pid in profile_ids() if find_profile(pid).framed]
PROFILES = [
    pid
    if pid in FRAMED
    else pytest.param(pid, marks=pytest.mark.skip(reason=NO_FRAMES.format(driver=find_profile(pid).driver)))
    for pid in profile_ids()
]


def test_every_profile_ships_a_transcript() -> None:
    """A profile without a transcript is a profile nobody checked."""
    assert FRAMED
    for pid in FRAMED:
        path = transcript_path(find_profile(pid).path)
        assert path.is_file(), f"{pid}: no transcript at {path}"
        assert load_transcript(path).exchanges, f"{pid}: empty transcript"


@pytest.mark.parametrize("pid", PROFILES)
def test_controller_replays_transcript(pid: str) -> None:
    """The profile encodes each request byte for byte and parses each reply as recorded."""
    profile = find_profile(pid)
    proto = ControllerProtocol(profile)
    for i, ex in enumerate(load_transcript(transcript_path(profile.path)).exchanges):
        request = proto.send(ex.command, ex.args)
        assert request.frame == ex.send, f"exchange {i} ({ex.command}): encoded {request.frame.hex(' ')}"
        events = proto.feed(ex.reply)
        assert all(isinstance(e, Reply) for e in events), f"exchange {i}: {events}"
        got = [e.to_dict() for e in events if isinstance(e, Reply)]
        assert got == list(ex.expect), f"exchange {i} ({ex.command})"


@pytest.mark.parametrize("pid", PROFILES)
def test_simulator_answers_as_transcript(pid: str) -> None:
    """The simulator, started fresh, answers every recorded request with the recorded bytes."""
    profile = find_profile(pid)
    sim = Simulator(profile, clock=lambda: 0.0)
    for i, ex in enumerate(load_transcript(transcript_path(profile.path)).exchanges):
        assert b"".join(sim.feed(ex.send)) == ex.reply, f"exchange {i} ({ex.command})"


def test_every_driver_profile_has_its_driver_tests() -> None:
    """The profiles left out above are not left unchecked: their driver has tests of its own."""
    root = Path(__file__).parent
    for pid in profile_ids():
        driver = find_profile(pid).driver
        if driver != "engine":
            assert list((root / driver).glob("test_driver*.py")), f"{pid}: no tests/drivers/{driver}/test_driver*.py"
