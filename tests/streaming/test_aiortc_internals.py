"""The private aiortc/aioice internals streaming relies on are still there and still take what we pass.

aiortc and aioice are pinned to one minor (pyproject.toml) because `streaming.rtc`/`streaming.ice` reach past their
public API in a few places.  When an upgrade moves one of these, this file fails first, naming the
internal and what depends on it, instead of a lesson silently losing keyframes or host addresses.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator

import aioice
import aioice.ice
import pytest
from aiortc import RTCPeerConnection, RTCRtpTransceiver
from aiortc import sdp as aiortc_sdp
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender

from streaming import ice


def moved(internal: str, used_by: str, why: str) -> str:
    """The failure message: which internal, who needs it, what went wrong."""
    return f"aiortc/aioice internal {internal} changed ({why}); {used_by} depends on it: fix it before upgrading"


@pytest.fixture
async def transceiver() -> AsyncIterator[RTCRtpTransceiver]:
    """A real, unconnected video transceiver: the objects our Peer reaches into."""
    pc = RTCPeerConnection()
    try:
        yield pc.addTransceiver("video", direction="sendrecv")
    finally:
        await pc.close()


def test_get_host_addresses_is_the_hook_aioice_calls() -> None:
    internal, user = "aioice.ice.get_host_addresses", "streaming.ice.install_host_address_hook"
    hook = getattr(aioice.ice, "get_host_addresses", None)
    assert callable(hook), moved(internal, user, "it is gone")
    try:  # aioice's own signature, even once our hook wraps it: aioice calls it by keyword, the hook by position
        inspect.signature(hook).bind(use_ipv4=True, use_ipv6=False)
        inspect.signature(hook).bind(True, False)
    except TypeError as exc:
        raise AssertionError(moved(internal, user, f"it no longer takes use_ipv4/use_ipv6: {exc}")) from exc
    # Replacing the module attribute only works while Connection looks it up by that global name.
    source = inspect.getsource(aioice.ice.Connection.gather_candidates)
    assert "get_host_addresses(" in source, moved(internal, user, "Connection.gather_candidates no longer calls it")


async def test_the_host_address_hook_chooses_what_ice_offers() -> None:
    # aioice never offers 127.0.0.1 by itself: a loopback-only candidate list proves the hook took effect.
    ice.install_host_address_hook()
    connection = aioice.Connection(ice_controlling=True)
    try:
        with ice.offering(("127.0.0.1",)):
            await connection.gather_candidates()
        hosts = {c.host for c in connection.local_candidates}
    finally:
        await connection.close()
    assert hosts == {"127.0.0.1"}, moved("aioice.ice.get_host_addresses", "IceSettings.host_addresses", f"{hosts}")


def test_receiver_send_rtcp_pli_takes_a_media_ssrc() -> None:
    internal, user = "RTCRtpReceiver._send_rtcp_pli", "Peer.request_keyframe"
    method = getattr(RTCRtpReceiver, "_send_rtcp_pli", None)
    assert callable(method), moved(internal, user, "it is gone")
    assert inspect.iscoroutinefunction(method), moved(internal, user, "it is no longer a coroutine function")
    try:
        inspect.signature(method).bind(object(), 1234)
    except TypeError as exc:
        raise AssertionError(moved(internal, user, f"it no longer takes (media_ssrc): {exc}")) from exc


async def test_sender_send_keyframe_is_what_a_pli_calls(transceiver: RTCRtpTransceiver) -> None:
    internal, user = "RTCRtpSender._send_keyframe", "Peer._attach (keyframes from the shared encoder)"
    assert callable(getattr(transceiver.sender, "_send_keyframe", None)), moved(internal, user, "it is gone")
    try:
        inspect.signature(RTCRtpSender._send_keyframe).bind(transceiver.sender)
    except TypeError as exc:
        raise AssertionError(moved(internal, user, f"it now takes arguments: {exc}")) from exc
    # We replace it on the instance: that only works while the RTCP handler calls it through `self`.
    source = inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert "self._send_keyframe()" in source, moved(internal, user, "a PLI/FIR no longer reaches it")


async def test_the_ice_connection_behind_a_receiver(transceiver: RTCRtpTransceiver) -> None:
    internal, user = "receiver.transport.transport._connection._nominated", "Peer.route"
    ice_transport = transceiver.receiver.transport.transport
    connection = getattr(ice_transport, "_connection", None)
    assert isinstance(connection, aioice.Connection), moved(internal, user, f"_connection is {connection!r}")
    nominated = getattr(connection, "_nominated", None)
    assert isinstance(nominated, dict), moved(internal, user, f"_nominated is {nominated!r}")


def test_a_nominated_pair_names_both_candidate_types() -> None:
    internal, user = "aioice.ice.CandidatePair.local_candidate/remote_candidate", "Peer.route"
    pair = aioice.ice.CandidatePair
    assert isinstance(inspect.getattr_static(pair, "local_candidate", None), property), moved(internal, user, "gone")
    assert "remote_candidate" in inspect.signature(pair.__init__).parameters, moved(internal, user, "gone")
    assert "type" in inspect.signature(aioice.Candidate.__init__).parameters, moved(internal, user, "no .type")


def test_track_id_comes_from_the_private_id() -> None:
    class Named(MediaStreamTrack):
        kind = "video"

        async def recv(self) -> None:
            raise NotImplementedError

    track = Named()
    track._id = "teacher"
    assert track.id == "teacher", moved("MediaStreamTrack._id", "_PacketTrack (the source name as msid)", "ignored")


def test_sdp_parser_gives_media_kind_and_direction() -> None:
    internal, user = "aiortc.sdp.SessionDescription.parse", "Peer.accept_offer"
    sdp = (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtpmap:96 H264/90000\r\n"
    )
    parsed = aiortc_sdp.SessionDescription.parse(sdp)
    media = [(m.kind, m.direction) for m in parsed.media]
    assert media == [("video", "recvonly")], moved(internal, user, f"parsed media {media}")
