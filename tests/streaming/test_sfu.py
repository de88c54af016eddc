"""Publishing through a real Janus VideoRoom (Debian's janus 1.1.2), started by the test with its own config.

Runs in a loopback-only network namespace (scripts/loopback-ns).  Janus never gathers ICE
candidates on a loopback interface, so the fixture adds a veth pair *inside* that namespace
(10.254.0.1 on `sfu0`, nothing else attached: every packet stays in the namespace), limits
Janus's ICE to it, and our peers offer the same address.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psutil
import pytest

from central.mosquitto import free_port
from streaming import stamp
from streaming.encoding import VideoEncoder
from streaming.rtc import IceSettings, RemoteVideo
from streaming.sfu import JanusSession, Jsep, SfuError, SfuPublisher, SfuSubscriber, check_reply, sdp_tracks
from streaming.synthetic import SyntheticSource

JANUS_LIBS = Path("/usr/lib/x86_64-linux-gnu/janus")
LINK, ADDRESS = "sfu0", "10.254.0.1"
ICE = IceSettings(host_addresses=(ADDRESS,))
OTHER_PLUGINS = "audiobridge duktape echotest lua nosip recordplay sip streaming textroom videocall voicemail"
OTHER_TRANSPORTS = "mqtt nanomsg pfunix rabbitmq websockets"


def janus_config(folder: Path, port: int) -> dict[str, str]:
    """The files of a Janus that serves only the VideoRoom over HTTP on 127.0.0.1, ICE on `lo`, no STUN."""
    plugins = ",".join(f"libjanus_{name}.so" for name in OTHER_PLUGINS.split())
    transports = ",".join(f"libjanus_{name}.so" for name in OTHER_TRANSPORTS.split())
    return {
        "janus.jcfg": f"""general: {{
    configs_folder = "{folder}"
    plugins_folder = "{JANUS_LIBS}/plugins"
    transports_folder = "{JANUS_LIBS}/transports"
    events_folder = "{JANUS_LIBS}/events"
    loggers_folder = "{JANUS_LIBS}/loggers"
    debug_level = 4
}}
media: {{
    rtp_port_range = "20000-20999"
}}
nat: {{
    ice_enforce_list = "{LINK}"
    ignore_mdns = true
}}
plugins: {{ disable = "{plugins}" }}
transports: {{ disable = "{transports}" }}
loggers: {{ disable = "libjanus_jsonlog.so" }}
events: {{ broadcast = false }}
""",
        "janus.transport.http.jcfg": f"""general: {{
    json = "plain"
    base_path = "/janus"
    http = true
    ip = "127.0.0.1"
    port = {port}
    https = false
}}
admin: {{ admin_http = false, admin_https = false }}
""",
        "janus.plugin.videoroom.jcfg": "general: {\n}\n",
    }


class LocalJanus:
    """Janus in the foreground with its own config folder, HTTP API on a free loopback port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/janus"
        self.log = folder / "janus.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, text in janus_config(self.folder, self.port).items():
            (self.folder / name).write_text(text)
        command = ["janus", "-F", str(self.folder), "-C", str(self.folder / "janus.jcfg"), "-o"]
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"janus did not start: {self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        info = json.dumps({"janus": "info", "transaction": "ready?"}).encode()
        try:
            with urllib.request.urlopen(urllib.request.Request(self.url, data=info), timeout=1) as response:
                return bool(json.load(response).get("janus") == "server_info")
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture
def media_link() -> Iterator[str]:
    """A veth pair inside the loopback-only namespace, `ADDRESS` on `LINK`; removed afterwards."""
    if set(psutil.net_if_addrs()) != {"lo"}:
        pytest.skip("the SFU test adds a network link: only inside a loopback-only namespace (scripts/loopback-ns)")
    steps = [
        ["ip", "link", "add", LINK, "type", "veth", "peer", "name", f"{LINK}peer"],
        ["ip", "addr", "add", f"{ADDRESS}/32", "dev", LINK],
        ["ip", "link", "set", f"{LINK}peer", "up"],
        ["ip", "link", "set", LINK, "up"],
    ]
    try:
        for step in steps:
            subprocess.run(step, check=True, capture_output=True, timeout=10)
        yield ADDRESS
    finally:
        subprocess.run(["ip", "link", "del", LINK], capture_output=True, timeout=10)


@pytest.fixture
def janus(tmp_path: Path, media_link: str) -> Iterator[LocalJanus]:
    if shutil.which("janus") is None:
        pytest.skip("janus is not installed: apt-get install janus (scripts/system-deps --test)")
    server = LocalJanus(tmp_path / "janus")
    server.start()
    try:
        yield server
    finally:
        server.stop()


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
