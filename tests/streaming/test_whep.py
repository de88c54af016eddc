"""WHEP egress and WHIP ingest over real HTTP (aiohttp) with real aiortc peers as the clients.

The browser side (headless Chromium) is in test_whep_browser.py.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from streaming import stamp
from streaming.encoding import AudioEncoder, VideoEncoder
from streaming.ice import IceServer, IceSettings
from streaming.rtc import Peer
from streaming.synthetic import SyntheticSource, ToneSource
from streaming.whep import WhepRefused, WhepService

ICE = IceSettings(host_addresses=("127.0.0.1",))
SIZE = (640, 360)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def has_video(peer: Peer, name: str, frames: int = 0) -> bool:
    """`peer` receives video track `name` and has decoded more than `frames` pictures of it."""
    return name in peer.incoming and peer.incoming[name].frames > frames


def has_audio(peer: Peer, name: str, frames: int = 0) -> bool:
    """`peer` receives audio track `name` and has decoded more than `frames` frames of it."""
    return name in peer.incoming_audio and peer.incoming_audio[name].frames > frames


async def until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        await asyncio.sleep(0.02)


@dataclass
class Agent:
    """An aiohttp app with the WHEP/WHIP routes, serving one `teacher` source (video + tone)."""

    base: str
    service: WhepService
    encoder: VideoEncoder
    ingested: dict[str, Peer] = field(default_factory=dict)
    ended: list[str] = field(default_factory=list)


@pytest.fixture
def teacher() -> Iterator[SyntheticSource]:
    source = SyntheticSource("teacher", SIZE, 30)
    source.start()
    yield source
    source.stop()


@pytest.fixture
async def agent(teacher: SyntheticSource) -> AsyncIterator[Agent]:
    encoder = VideoEncoder(teacher, size=SIZE, bitrate=800_000)
    tone = AudioEncoder("teacher-audio", ToneSource(440))
    holder: dict[str, Peer] = {}
    ended: list[str] = []
    service = WhepService(
        lambda name: encoder if name == "teacher" else None,
        IceSettings(host_addresses=("127.0.0.1",)),
        audio=lambda name: tone if name == "teacher" else None,
        on_ingest=holder.__setitem__,
        on_ingest_end=lambda name, peer: ended.append(name),
        max_viewers=2,
    )
    app = web.Application()
    service.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield Agent(f"http://127.0.0.1:{port}", service, encoder, holder, ended)
    finally:
        await runner.cleanup()
        encoder.close()
        tone.close()


async def post_offer(base: str, path: str, sdp: str, content_type: str = "application/sdp") -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as http, asyncio.timeout(30):
        response = await http.post(base + path, data=sdp, headers={"Content-Type": content_type})
        await response.read()
        return response


async def test_whep_viewer_plays_and_leaves(agent: Agent) -> None:
    viewer = Peer("viewer", ICE, receive_video=1, receive_audio=1)
    try:
        response = await post_offer(agent.base, "/whep/teacher", await viewer.create_offer())
        assert response.status == 201, await response.text()
        assert response.headers["Content-Type"].startswith("application/sdp")
        assert "Access-Control-Allow-Origin" not in response.headers  # no browser, no CORS
        assert "Link" not in response.headers  # no STUN/TURN configured
        location = response.headers["Location"]
        assert location.startswith("/whep/teacher/")
        await viewer.accept_answer(await response.text())
        await until(lambda: has_video(viewer, "teacher", 10), 20, "video")
        picture = viewer.incoming["teacher"].latest()
        assert picture is not None and stamp.read(picture.image) is not None
        await until(lambda: has_audio(viewer, "teacher-audio", 10), 20, "audio")
        assert agent.service.viewers == 1 and agent.encoder.subscribers == 1
        async with aiohttp.ClientSession() as http, asyncio.timeout(10):
            async with http.delete(agent.base + location) as gone:
                assert gone.status == 200
            async with http.delete(agent.base + location) as again:
                assert again.status == 404 and "no such session" in await again.text()
        assert agent.service.viewers == 0
        await until(lambda: agent.encoder.subscribers == 0, 5, "the viewer to let go of the encoder")
    finally:
        await viewer.close()


async def test_whep_refuses_bad_requests_with_the_reason(agent: Agent) -> None:
    good = Peer("probe", ICE, receive_video=1)
    try:
        offer = await good.create_offer()
        missing = await post_offer(agent.base, "/whep/nobody", offer)
        assert missing.status == 404 and "no live source 'nobody'" in await missing.text()
        wrong_type = await post_offer(agent.base, "/whep/teacher", offer, "application/json")
        assert wrong_type.status == 415 and "application/sdp" in await wrong_type.text()
        garbage = await post_offer(agent.base, "/whep/teacher", "this is not sdp")
        assert garbage.status == 400 and "not SDP" in await garbage.text()
        assert agent.service.viewers == 0
    finally:
        await good.close()
    async with aiohttp.ClientSession() as http, asyncio.timeout(10):
        async with http.options(agent.base + "/whep/teacher") as preflight:
            assert preflight.status == 204
            assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
            assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
        async with http.patch(agent.base + "/whep/teacher/xyz", data="a=candidate") as patch:
            assert patch.status == 405
        async with http.get(agent.base + "/watch/teacher") as page:
            html = await page.text()
            assert page.status == 200 and "直播" in html and "<video" in html and "muted" in html


CENTRE = "https://central.example:8443"


async def serve(service: WhepService) -> tuple[str, web.AppRunner]:
    app = web.Application()
    service.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return f"http://127.0.0.1:{port}", runner


async def test_only_the_same_origin_and_allowed_sites_may_watch(agent: Agent) -> None:
    service = WhepService(lambda name: agent.encoder if name == "teacher" else None, ICE, allowed_origins=[CENTRE])
    base, runner = await serve(service)
    viewer = Peer("viewer", ICE, receive_video=1)
    try:
        offer = await viewer.create_offer()
        async with aiohttp.ClientSession() as http, asyncio.timeout(30):
            sdp = {"Content-Type": "application/sdp"}
            evil = {**sdp, "Origin": "https://evil.example"}
            async with http.post(base + "/whep/teacher", data=offer, headers=evil) as refused:
                assert refused.status == 403 and "'https://evil.example' may not use WHEP" in await refused.text()
                assert "Access-Control-Allow-Origin" not in refused.headers
            async with http.options(base + "/whep/teacher", headers={"Origin": "https://evil.example"}) as pre:
                assert pre.status == 403 and "Access-Control-Allow-Origin" not in pre.headers
            assert service.viewers == 0
            async with http.options(base + "/whep/teacher", headers={"Origin": CENTRE}) as pre:
                assert pre.status == 204 and pre.headers["Access-Control-Allow-Origin"] == CENTRE
            async with http.post(base + "/whep/teacher", data=offer, headers={**sdp, "Origin": CENTRE}) as allowed:
                assert allowed.status == 201 and allowed.headers["Access-Control-Allow-Origin"] == CENTRE
                assert "Location" in allowed.headers["Access-Control-Expose-Headers"]
                location = allowed.headers["Location"]
            async with http.delete(base + location, headers={"Origin": "https://evil.example"}) as stranger:
                assert stranger.status == 403 and service.viewers == 1  # nor may another site hang it up
            async with http.delete(base + location, headers={"Origin": base}) as own:
                assert own.status == 200 and service.viewers == 0  # the server's own page always may
    finally:
        await viewer.close()
        await runner.cleanup()


async def test_a_received_picture_is_watched_by_its_escaped_name(agent: Agent) -> None:
    service = WhepService(lambda name: agent.encoder if name == "room-2/students" else None, ICE)
    base, runner = await serve(service)
    viewers = [Peer(f"v{n}", ICE, receive_video=1) for n in range(2)]
    try:
        first = await post_offer(base, "/whep/room-2%2Fstudents", await viewers[0].create_offer())
        assert first.status == 201 and first.headers["Location"].startswith("/whep/room-2%2Fstudents/")
        await viewers[0].accept_answer(await first.text())
        await until(lambda: has_video(viewers[0], "room-2/students", 5), 20, "the received picture, sent on")
        async with (
            aiohttp.ClientSession() as http,
            asyncio.timeout(10),
            http.delete(base + first.headers["Location"]) as gone,
        ):
            assert gone.status == 200 and service.viewers == 0
        second = await post_offer(base, "/whep/room-2%2Fstudents", await viewers[1].create_offer())
        assert second.status == 201 and service.viewers == 1
        assert await service.end_watchers("room-2/students") == 1  # the picture is gone: so are its viewers
        assert service.viewers == 0
    finally:
        for viewer in viewers:
            await viewer.close()
        await runner.cleanup()


async def test_viewer_cap_answers_503(agent: Agent) -> None:
    viewers = [Peer(f"v{n}", ICE, receive_video=1) for n in range(3)]
    try:
        statuses = []
        for viewer in viewers:
            response = await post_offer(agent.base, "/whep/teacher", await viewer.create_offer())
            statuses.append(response.status)
            if response.status == 503:
                assert "limit is 2" in await response.text()
        assert statuses == [201, 201, 503]
    finally:
        for viewer in viewers:
            await viewer.close()


async def test_viewers_without_http_share_the_cap_and_close(agent: Agent) -> None:
    """open_viewer/close_viewer (the centre's 巡课 over MQTT) and HTTP WHEP are one set of viewers."""
    viewers = [Peer(f"v{n}", ICE, receive_video=1) for n in range(4)]
    try:
        relayed = await agent.service.open_viewer("teacher", await viewers[0].create_offer())
        await viewers[0].accept_answer(relayed.answer)
        await until(lambda: has_video(viewers[0], "teacher", 5), 20, "video to the relayed viewer")
        assert (await post_offer(agent.base, "/whep/teacher", await viewers[1].create_offer())).status == 201
        full = await post_offer(agent.base, "/whep/teacher", await viewers[2].create_offer())
        assert full.status == 503 and "limit is 2" in await full.text()
        with pytest.raises(WhepRefused) as nobody:
            await agent.service.open_viewer("nobody", "v=0")
        assert nobody.value.status == 503  # the cap is checked first: no encoder is made for a full house
        assert await agent.service.close_viewer(relayed.session) is True
        assert await agent.service.close_viewer(relayed.session) is False  # already ended
        assert agent.service.viewers == 1 and [v["source"] for v in agent.service.viewer_list()] == ["teacher"]
        with pytest.raises(WhepRefused) as missing:
            await agent.service.open_viewer("nobody", await viewers[3].create_offer())
        assert missing.value.status == 404 and "no live source 'nobody'" in missing.value.reason
        with pytest.raises(WhepRefused) as huge:
            await agent.service.open_viewer("teacher", "v=0" + "x" * 70_000)
        assert huge.value.status == 413 and "at most 65536" in huge.value.reason
    finally:
        for viewer in viewers:
            await viewer.close()


async def test_viewers_arriving_together_never_exceed_the_cap(agent: Agent) -> None:
    viewers = [Peer(f"v{n}", ICE, receive_video=1) for n in range(3)]
    try:
        offers = [await viewer.create_offer() for viewer in viewers]
        opened = await asyncio.gather(
            *(agent.service.open_viewer("teacher", offer) for offer in offers), return_exceptions=True
        )
        refused = [o for o in opened if isinstance(o, WhepRefused)]
        assert len(refused) == 1 and refused[0].status == 503 and "limit is 2" in refused[0].reason
        assert agent.service.viewers == 2
    finally:
        for viewer in viewers:
            await viewer.close()


async def test_failed_viewer_session_is_closed(agent: Agent) -> None:
    viewer = Peer("leaves", ICE, receive_video=1)
    response = await post_offer(agent.base, "/whep/teacher", await viewer.create_offer())
    await viewer.accept_answer(await response.text())
    await until(lambda: has_video(viewer, "teacher", 3), 20, "video")
    assert agent.service.viewers == 1
    await viewer.close()  # gone without DELETE (tab closed, network lost): the agent notices by itself
    await until(lambda: agent.service.viewers == 0, 60, "the failed session to be closed")
    await until(lambda: agent.encoder.subscribers == 0, 5, "the encoder released")


async def test_whip_ingest_arrives_as_a_named_source(agent: Agent, teacher: SyntheticSource) -> None:
    publisher_encoder = VideoEncoder(teacher, size=SIZE, bitrate=600_000)
    publisher = Peer("browser", ICE, send={"cam": publisher_encoder, "mic": AudioEncoder("mic", ToneSource(660))})
    try:
        response = await post_offer(agent.base, "/whip/master-teacher", await publisher.create_offer())
        assert response.status == 201, await response.text()
        await publisher.accept_answer(await response.text())
        assert set(agent.ingested) == {"master-teacher"}
        received = agent.ingested["master-teacher"]
        await until(lambda: has_video(received, "cam", 10) and has_audio(received, "mic", 10), 20, "video and audio")
        second = Peer("other", ICE, send={"cam": publisher_encoder})
        try:
            taken = await post_offer(agent.base, "/whip/master-teacher", await second.create_offer())
            assert taken.status == 409 and "already publishing" in await taken.text()
        finally:
            await second.close()
        async with (
            aiohttp.ClientSession() as http,
            asyncio.timeout(10),
            http.delete(agent.base + response.headers["Location"]) as gone,
        ):
            assert gone.status == 200
        assert agent.ended == ["master-teacher"] and received.state == "closed"
    finally:
        await publisher.close()
        publisher_encoder.close()


async def test_configured_ice_servers_are_announced_in_link_headers(agent: Agent) -> None:
    stun = IceServer(("stun:127.0.0.1:3478",))  # nobody answers there: gathering waits for its timeout
    service = WhepService(lambda name: agent.encoder, IceSettings(servers=(stun,), host_addresses=("127.0.0.1",)))
    base, runner = await serve(service)
    viewer = Peer("viewer", ICE, receive_video=1)
    try:
        response = await post_offer(base, "/whep/teacher", await viewer.create_offer())
        assert response.status == 201
        assert response.headers["Link"] == '<stun:127.0.0.1:3478>; rel="ice-server"'
    finally:
        await viewer.close()
        await runner.cleanup()
