"""Publishing through a real Janus VideoRoom (Debian's janus 1.1.2), started by the test with its own config.

Runs in a loopback-only network namespace (scripts/loopback-ns); see tests/janus_fixture.py for
how Janus and our peers find each other there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from janus_fixture import ICE, LocalJanus, janus, media_link

from central.mosquitto import free_port
from streaming import stamp
from streaming.encoding import AudioEncoder, VideoEncoder
from streaming.janus import JanusSession, Jsep, SfuError, check_reply
from streaming.remote import RemoteVideo
from streaming.sfu import SfuPublisher, SfuSubscriber, sdp_tracks
from streaming.synthetic import SyntheticSource, ToneSource

__all__ = ["janus", "media_link"]  # fixtures


@pytest.fixture
async def teacher() -> AsyncIterator[VideoEncoder]:
    """A stamped 640x360 test pattern at 30 fps and its one encoder."""
    source = SyntheticSource("teacher", size=(640, 360), fps=30)
    source.start()
    try:
        yield VideoEncoder(source, size=(640, 360), fps=30, bitrate=800_000)
    finally:
        source.stop()


async def counters(video: RemoteVideo, seconds: float) -> list[int]:
    """The burned-in frame counters of the pictures `video` decodes over `seconds`."""
    seen: list[int] = []
    last_index = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = await asyncio.to_thread(video.wait_newer, last_index, 0.5)
        if frame is None or frame.index == last_index:
            continue
        last_index = frame.index
        stamped = stamp.read(frame.image)
        if stamped is not None:
            seen.append(stamped[0])
    return seen


async def first_video(subscriber: SfuSubscriber, timeout: float = 20.0) -> RemoteVideo:
    """The subscriber's (only) incoming video once it has decoded a picture."""
    async with asyncio.timeout(timeout):
        while True:
            videos = list(subscriber.incoming.values())
            if videos and videos[0].latest() is not None:
                return videos[0]
            await asyncio.sleep(0.1)


async def test_two_subscribers_decode_the_counter_the_publisher_encodes_once(
    janus: LocalJanus, teacher: VideoEncoder
) -> None:
    async with SfuPublisher(janus.url, 1234, "room-101", ICE, {"teacher": teacher}) as publisher:
        async with (
            SfuSubscriber(janus.url, 1234, "room-101", ICE) as first,
            SfuSubscriber(janus.url, 1234, "room-101", ICE) as second,
        ):
            assert set(first.names.values()) == {"teacher"}, first.names
            videos = await asyncio.gather(first_video(first), first_video(second))
            encoded_before = teacher.stats()["frames_encoded"]
            started = time.monotonic()
            seen = await asyncio.gather(*(counters(video, 3.0) for video in videos))
            elapsed = time.monotonic() - started
            encoded = int(teacher.stats()["frames_encoded"]) - int(encoded_before)
            subscribers = teacher.stats()["subscribers"]
        assert publisher.feed != 0
    for counts in seen:
        # 3 s at 30 fps: ~90 pictures, in order (the encoder repeats a picture when the source is late)
        assert len(set(counts)) > 20, counts
        assert counts == sorted(counts), counts
    # Two receivers, one encoder feeding one peer (the SFU): about 30 fps of encoding, never 60.
    assert subscribers == 1
    assert encoded <= 30 * elapsed * 1.25 + 5, (encoded, elapsed)


async def test_sound_goes_through_the_sfu_with_the_pictures(janus: LocalJanus, teacher: VideoEncoder) -> None:
    sound = AudioEncoder("audio", ToneSource(440.0))
    try:
        async with (
            SfuPublisher(janus.url, 4321, "room-101", ICE, {"teacher": teacher, "audio": sound}),
            SfuSubscriber(janus.url, 4321, "room-101", ICE) as listener,
        ):
            assert sorted(listener.names.values()) == ["audio", "teacher"], listener.names
            async with asyncio.timeout(20):
                while not listener.incoming_audio or listener.incoming_audio["audio"].frames < 50:
                    await asyncio.sleep(0.1)  # 50 Opus frames: one second of the tone, relayed by Janus
            await first_video(listener)
            assert int(sound.stats()["subscribers"]) == 1
    finally:
        sound.close()


async def test_subscribing_to_a_missing_room_names_janus_error(janus: LocalJanus) -> None:
    with pytest.raises(SfuError, match=r"No such room \(999\)") as error:
        async with SfuSubscriber(janus.url, 999, "room-101", ICE):
            pass
    assert error.value.code == 426


async def test_publishing_to_a_missing_room_is_refused_when_creation_is_off(
    janus: LocalJanus, teacher: VideoEncoder
) -> None:
    with pytest.raises(SfuError, match="room 77 does not exist"):
        async with SfuPublisher(janus.url, 77, "room-101", ICE, {"teacher": teacher}, create_room=False):
            pass
    assert teacher.stats()["subscribers"] == 0


async def test_a_room_without_h264_is_refused_clearly(janus: LocalJanus, teacher: VideoEncoder) -> None:
    async with JanusSession(janus.url) as session:  # a room as a hand-written config would make it: VP8 only
        handle = await session.attach()
        await session.message(handle, {"request": "create", "room": 8, "videocodec": "vp8"})
        with pytest.raises(SfuError, match=r"publish in room 8: Janus disabled streams \['0'\] .*H.264"):
            async with SfuPublisher(janus.url, 8, "room-101", ICE, {"teacher": teacher}, create_room=False):
                pass
    assert teacher.stats()["subscribers"] == 0


async def test_subscribing_to_an_absent_publisher_says_who_is_there(janus: LocalJanus, teacher: VideoEncoder) -> None:
    async with SfuPublisher(janus.url, 5, "room-101", ICE, {"teacher": teacher}):
        with pytest.raises(SfuError, match=r"no publisher 'room-999' in room 5 \(publishing: 'room-101'\)"):
            async with SfuSubscriber(janus.url, 5, "room-999", ICE, timeout_s=2):
                pass


async def test_janus_down_gives_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/janus"
    with pytest.raises(SfuError, match=rf"SFU {url}: create session: cannot reach Janus"):
        async with SfuSubscriber(url, 1234, "room-101", ICE, timeout_s=3):
            pass


def test_janus_replies_are_translated() -> None:
    with pytest.raises(SfuError, match="Janus error 458: No such session 9") as error:
        check_reply({"janus": "error", "error": {"code": 458, "reason": "No such session 9"}}, "keepalive")
    assert error.value.code == 458
    plugin_error = {"janus": "event", "plugindata": {"data": {"error_code": 436, "error": "User ID 7 exists"}}}
    with pytest.raises(SfuError, match="VideoRoom error 436: User ID 7 exists"):
        check_reply(plugin_error, "join")
    with pytest.raises(SfuError, match="malformed jsep"):
        Jsep.from_dict({"type": "offer"})


def test_source_names_come_from_the_offer_msid() -> None:
    offer = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 97\r\na=mid:0\r\na=msid:agent teacher\r\n"
    offer += "m=video 9 UDP/TLS/RTP/SAVPF 97\r\na=mid:1\r\na=msid:agent courseware\r\n"
    assert sdp_tracks(offer) == {"0": "teacher", "1": "courseware"}
