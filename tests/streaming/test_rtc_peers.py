"""WebRTC peers in one process on loopback: encode once for many receivers, two-way named tracks,
keyframe requests routed to the shared encoder, bad SDP refused, clean close.

Real aiortc, real libx264 and decoders; ICE is limited to 127.0.0.1 with no STUN server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import numpy as np
import pytest

from streaming import stamp
from streaming.encoding import AudioEncoder, VideoEncoder
from streaming.ice import IceServer, IceSettings
from streaming.remote import RemoteVideo
from streaming.rtc import Peer, RtcError
from streaming.synthetic import SyntheticSource, ToneSource

ICE = IceSettings(host_addresses=("127.0.0.1",))
SIZE = (640, 360)


async def connect(offerer: Peer, answerer: Peer) -> None:
    """Offer/answer exchanged directly, as the MQTT signalling would carry them."""
    offer = await offerer.create_offer()
    answer = await answerer.accept_offer(offer)
    await offerer.accept_answer(answer)


def has_video(peer: Peer, name: str, frames: int = 0) -> bool:
    """`peer` receives video track `name` and has decoded more than `frames` pictures of it."""
    return name in peer.incoming and peer.incoming[name].frames > frames


def has_audio(peer: Peer, name: str, frames: int = 0) -> bool:
    """`peer` receives audio track `name` and has decoded more than `frames` frames of it."""
    return name in peer.incoming_audio and peer.incoming_audio[name].frames > frames


async def until(condition: object, timeout: float, what: str) -> None:
    """Await until `condition()` holds, or fail saying `what` did not happen."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        await asyncio.sleep(0.02)


async def watch_stamps(videos: list[RemoteVideo], seconds: float) -> list[list[tuple[float, int]]]:
    """Poll each received picture for `seconds`: per video, (arrival, counter) of every new stamp read."""
    seen: list[list[tuple[float, int]]] = [[] for _ in videos]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for video, out in zip(videos, seen, strict=True):
            frame = video.latest()
            read = None if frame is None else stamp.read(frame.image)
            if read is not None and (not out or out[-1][1] != read[0]):
                out.append((time.monotonic(), read[0]))
        await asyncio.sleep(0.01)
    return seen


@pytest.fixture
def teacher() -> Iterator[SyntheticSource]:
    source = SyntheticSource("teacher", SIZE, 30)
    source.start()
    yield source
    source.stop()


async def test_one_encode_feeds_three_receivers_in_order(teacher: SyntheticSource, peers: list[Peer]) -> None:
    encoder = VideoEncoder(teacher, size=SIZE, fps=30, bitrate=800_000)
    for n in range(3):
        sender = Peer(f"remote{n}", ICE, send={"teacher": encoder})
        receiver = Peer("main", ICE)
        peers += [sender, receiver]
        await connect(sender, receiver)
    receivers = peers[1::2]
    await until(lambda: all(has_video(r, "teacher") for r in receivers), 20, "video")
    assert encoder.subscribers == 3
    before, started = int(encoder.stats()["frames_encoded"]), time.monotonic()  # type: ignore[call-overload]
    seen = await watch_stamps([r.incoming["teacher"] for r in receivers], 4.0)
    elapsed = time.monotonic() - started
    encoded = int(encoder.stats()["frames_encoded"]) - before  # type: ignore[call-overload]
    for stamps in seen:
        counters = [c for _, c in stamps]
        assert len(counters) >= 30, f"only {len(counters)} distinct stamped pictures in 4 s"
        assert all(b > a for a, b in zip(counters, counters[1:], strict=False)), "counters went backwards"
        stalls = [b - a for (a, _), (b, _) in zip(stamps, stamps[1:], strict=False)]
        assert max(stalls) < 1.0, f"a stall of {max(stalls):.2f} s"
    # one encode at 30 fps, not one per receiver (3 receivers would make it ~90 fps)
    assert encoded <= 30 * elapsed * 1.3 + 10, f"{encoded} frames encoded in {elapsed:.1f} s"
    assert all(s.frames_sent > 0 for s in peers[0::2])
    stats = await peers[1].stats()
    assert stats.state == "connected" and stats.frames_received > 0 and stats.to_dict()["peer_id"] == "main"
    await peers[0].stats()
    await asyncio.sleep(1.0)  # bitrates are measured between two calls
    sent = await peers[0].stats()
    assert sent.bitrate_out_kbps > 50 and sent.rtt_ms is not None and sent.loss < 0.05
    assert (await peers[1].stats()).fps_in > 10


async def test_two_way_named_tracks(teacher: SyntheticSource, peers: list[Peer]) -> None:
    courseware = SyntheticSource("courseware", (640, 360), 5, color=(200, 120, 40))
    students = SyntheticSource("students", SIZE, 30)
    courseware.start()
    students.start()
    try:
        encoders = {
            "teacher": VideoEncoder(teacher, size=SIZE, bitrate=600_000),
            "courseware": VideoEncoder(courseware, size=(640, 360), fps=5, bitrate=300_000),
            "audio": AudioEncoder("audio", ToneSource(440)),
        }
        main = Peer("main", ICE, send=encoders, receive_video=1, receive_audio=1)
        remote = Peer(
            "remote",
            ICE,
            send={
                "students": VideoEncoder(students, size=SIZE, bitrate=600_000),
                "mic": AudioEncoder("mic", ToneSource(660, level=0.3)),
            },
        )
        peers += [main, remote]
        states: list[str] = []
        main.on_state(states.append)
        await connect(main, remote)
        await until(lambda: has_video(remote, "teacher", 3) and has_video(remote, "courseware", 3), 20, "video")
        await until(lambda: has_video(main, "students", 3), 20, "video back")
        await until(lambda: has_audio(main, "mic", 10) and has_audio(remote, "audio", 10), 20, "audio both ways")
        assert set(remote.incoming) == {"teacher", "courseware"} and set(main.incoming) == {"students"}
        await until(lambda: main.incoming_audio["mic"].feed.buffered >= 24000, 20, "half a second of sound")
        sound = main.incoming_audio["mic"].feed.read(24000)[0]
        peak_hz = np.argmax(np.abs(np.fft.rfft(sound))) * 48000 / len(sound)
        assert abs(peak_hz - 660) < 10  # the remote's microphone tone, through Opus both ways
        slides = remote.incoming["courseware"].latest()
        assert slides is not None and abs(int(slides.image[180, 320, 0]) - 200) < 20  # the solid courseware colour
        assert stamp.read(main.incoming["students"].latest().image) is not None  # type: ignore[union-attr]
        assert set(main.track_names.values()) == {"students", "mic"}
        assert "connected" in states
        assert main.incoming["students"].frozen_for() < 5
    finally:
        courseware.stop()
        students.stop()


async def test_keyframe_request_from_one_receiver_reaches_all(teacher: SyntheticSource, peers: list[Peer]) -> None:
    encoder = VideoEncoder(teacher, size=SIZE, bitrate=600_000, gop_s=600)  # no periodic IDR during the test
    receivers = []
    for n in range(2):
        sender, receiver = Peer(f"s{n}", ICE, send={"teacher": encoder}), Peer(f"r{n}", ICE)
        peers += [sender, receiver]
        receivers.append(receiver)
        await connect(sender, receiver)
    await until(lambda: all(has_video(r, "teacher", 5) for r in receivers), 20, "video")
    await asyncio.sleep(0.5)  # the join keyframes are out
    keyframes = int(encoder.stats()["keyframes"])  # type: ignore[call-overload]
    await receivers[0].request_keyframe("teacher")
    await until(lambda: int(encoder.stats()["keyframes"]) > keyframes, 5, "a keyframe after the PLI")  # type: ignore[call-overload]
    after = int(encoder.stats()["keyframes"])  # type: ignore[call-overload]
    assert after - keyframes == 1
    with pytest.raises(RtcError, match="no incoming track 'students'"):
        await receivers[0].request_keyframe("students")


@pytest.mark.parametrize(
    ("sdp", "message"),
    [
        ("hello", "is not SDP"),
        ("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 H264/90000\r\n", "refused"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "no audio or video"),
        ("v=0\r\nm=video nine UDP/TLS/RTP/SAVPF 96\r\n", "not valid SDP"),
    ],
)
async def test_bad_offer_is_refused_with_the_reason(sdp: str, message: str, peers: list[Peer]) -> None:
    peer = Peer("remote", ICE)
    peers.append(peer)
    with pytest.raises(RtcError, match=message) as caught:
        await peer.accept_offer(sdp)
    assert "peer remote" in str(caught.value)


async def test_answer_without_offer_and_bad_ice_settings_are_refused(peers: list[Peer]) -> None:
    peer = Peer("x", ICE, receive_video=1)
    peers.append(peer)
    with pytest.raises(RtcError, match="made no offer"):
        await peer.accept_answer("v=0\r\n")
    with pytest.raises(RtcError, match="nothing to send or receive"):
        await Peer("empty", ICE).create_offer()
    with pytest.raises(ValueError, match="needs username"):
        IceServer(("turn:turn.example:3478?transport=udp",))
    with pytest.raises(ValueError, match="not stun"):
        IceServer(("http://example",))
    assert IceServer.from_dict({"urls": "stun:stun.example:3478"}).urls == ("stun:stun.example:3478",)


async def test_closing_a_peer_releases_the_encoder(teacher: SyntheticSource) -> None:
    encoder = VideoEncoder(teacher, size=SIZE, bitrate=600_000)
    sender, receiver = Peer("s", ICE, send={"teacher": encoder}), Peer("r", ICE)
    states: list[str] = []
    sender.on_state(states.append)
    try:
        await connect(sender, receiver)
        await until(lambda: has_video(receiver, "teacher", 3), 20, "video")
        assert encoder.subscribers == 1 and encoder.running
    finally:
        await sender.close()
        await sender.close()  # idempotent
    assert sender.state == "closed" and states[-1] == "closed"
    assert encoder.subscribers == 0
    await until(lambda: not encoder.running, 5, "the encoder thread to stop")
    frozen = receiver.incoming["teacher"]
    await until(lambda: receiver.state in ("failed", "closed") or frozen.frozen_for() > 0.5, 15, "a freeze")
    await receiver.close()
    with pytest.raises(RtcError, match="closed"):
        await sender.create_offer()


async def test_muting_the_shared_audio_silences_every_receiver(peers: list[Peer]) -> None:
    sound = AudioEncoder("audio", ToneSource(440, level=0.1))
    try:
        receivers = [Peer(f"room-{n}", ICE, receive_audio=1) for n in range(2)]
        senders = [Peer(f"main-to-{n}", ICE, send={"audio": sound}) for n in range(2)]
        peers.extend([*receivers, *senders])
        for sender, receiver in zip(senders, receivers, strict=True):
            await connect(sender, receiver)

        def levels() -> list[float]:
            return [r.incoming_audio["audio"].level if "audio" in r.incoming_audio else -1.0 for r in receivers]

        await until(lambda: min(levels()) > 0.03, 20, "the tone at both receivers")  # 0.1 peak: RMS ~0.07
        assert sound.subscribers == 2  # one encoder for both
        sound.mute(True)
        await until(lambda: max(levels()) < 0.002, 10, "silence at both receivers")
        before = [r.incoming_audio["audio"].frames for r in receivers]

        def flowing() -> bool:
            return all(r.incoming_audio["audio"].frames > n + 25 for r, n in zip(receivers, before, strict=True))

        await until(flowing, 10, "silent packets still flowing (a muted room is not a frozen link)")
        assert max(levels()) < 0.002 and sound.stats()["muted"] is True
        sound.mute(False)
        await until(lambda: min(levels()) > 0.03, 10, "the tone back at both receivers")
    finally:
        sound.close()
