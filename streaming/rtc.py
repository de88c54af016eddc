"""WebRTC peers for live lessons: with `streaming.ice`, the only module that imports aiortc and aioice.

A `Peer` is one RTCPeerConnection to one remote (another classroom's agent, or a browser).
What it sends comes from shared encoders (`streaming.encoding`): each outgoing track yields the
encoder's packets, so aiortc only packetises them and a source is encoded once whatever the
number of peers.  What it receives becomes a `RemoteVideo` or a `RemoteAudio`
(`streaming.remote`, re-exported here), keyed by the sender's track id, which our peers set to
the source name (`teacher`, `courseware`, ...).

aiortc does not trickle: `create_offer` and `accept_offer` return complete SDP, candidates
included.  Every aiortc and aioice failure is translated into `RtcError` here.  What ICE is told
(servers, host addresses, relay only) is `streaming.ice`'s, re-exported here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiortc import (
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc import sdp as aiortc_sdp
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.packet import Packet

from streaming.encoding import AudioEncoder, PacketQueue, QueueClosed, VideoEncoder
from streaming.errors import StreamingError
from streaming.ice import IceSettings, install_host_address_hook, offering
from streaming.remote import LinkTally, PeerStats, RemoteAudio, RemoteVideo

log = logging.getLogger(__name__)


NEGOTIATION_TIMEOUT_S = 20.0  # gathering with an unreachable STUN/TURN server gives up well before this
CLOSE_TIMEOUT_S = 10.0


class RtcError(StreamingError):
    """A WebRTC negotiation failed or was given bad input; the message says which peer and what."""


class _PacketTrack(MediaStreamTrack):
    """An outgoing track that yields a shared encoder's packets (aiortc only packetises them)."""

    def __init__(self, name: str, encoder: VideoEncoder | AudioEncoder) -> None:
        super().__init__()
        self.kind = encoder.kind
        self._id = name  # becomes the msid track id: the receiver learns the source name
        self.encoder = encoder
        self._queue: PacketQueue | None = None
        self.sent = 0

    async def recv(self) -> Packet:
        # Subscribe at the first read, i.e. once the connection is up: an idle peer costs no encoding.
        if self.readyState != "live":
            raise MediaStreamError
        if self._queue is None:
            self._queue = self.encoder.subscribe()
        try:
            packet = await self._queue.get()
        except QueueClosed as exc:
            raise MediaStreamError from exc
        self.sent += 1
        return packet

    def stop(self) -> None:
        super().stop()
        queue, self._queue = self._queue, None
        if queue is not None:
            self.encoder.unsubscribe(queue)


def _codec_preferences(kind: str) -> list[object]:
    """The codecs our pre-encoded packets are in: H.264 (with its retransmission codec) or Opus."""
    wanted = ("video/h264", "video/rtx") if kind == "video" else ("audio/opus",)
    capabilities = RTCRtpSender.getCapabilities(kind)
    assert capabilities is not None
    return [c for c in capabilities.codecs if c.mimeType.lower() in wanted]


def _parse_sdp(peer_id: str, sdp: str, what: str) -> aiortc_sdp.SessionDescription:
    """Parse with aiortc's parser, with its exceptions turned into a message that names the peer and the problem."""
    if not isinstance(sdp, str) or not sdp.strip().startswith("v=0"):
        raise RtcError(f"peer {peer_id}: the {what} is not SDP (it must start with 'v=0')")
    try:
        parsed = aiortc_sdp.SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises whatever the bad line provokes
        raise RtcError(f"peer {peer_id}: the {what} is not valid SDP: {exc!r}") from exc
    if not any(m.kind in ("audio", "video") for m in parsed.media):
        raise RtcError(f"peer {peer_id}: the {what} has no audio or video section")
    return parsed


class Peer:
    """One RTCPeerConnection to one remote agent or browser, sending shared encoders' packets."""

    def __init__(
        self,
        peer_id: str,
        ice: IceSettings,
        *,
        send: Mapping[str, VideoEncoder | AudioEncoder] | None = None,
        receive_video: int = 0,
        receive_audio: int = 0,
    ) -> None:
        """`send` maps source names (the track ids the remote sees) to encoders; nothing connects yet."""
        if receive_video < 0 or receive_audio < 0:
            raise RtcError(f"peer {peer_id}: receive_video/receive_audio must not be negative")
        install_host_address_hook()
        self.peer_id = peer_id
        self.ice = ice
        self._tracks = {name: _PacketTrack(name, encoder) for name, encoder in (send or {}).items()}
        self._receive = {"video": receive_video, "audio": receive_audio}
        self._pc = RTCPeerConnection(configuration=ice.configuration())
        self._pc.on("connectionstatechange", self._state_changed)
        self._pc.on("track", self._track_arrived)
        self.incoming: dict[str, RemoteVideo] = {}
        self.incoming_audio: dict[str, RemoteAudio] = {}
        self.track_names: dict[str, str] = {}  # mid -> name of what arrives on it
        self._receivers: dict[str, RTCRtpReceiver] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._hooks: list[Callable[[str], None]] = []
        self._last_sample: tuple[float, int, int] | None = None  # (time, bytes in, bytes out)
        self.state = "new"
        self._closed = False

    def on_state(self, hook: Callable[[str], None]) -> None:
        """Call `hook(state)` on every state change ("connecting", "connected", "failed", "closed")."""
        self._hooks.append(hook)

    def _set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        log.info("peer %s: %s", self.peer_id, state)
        for hook in list(self._hooks):
            try:
                hook(state)
            except Exception:  # a broken hook must not break the connection
                log.exception("peer %s: state hook failed", self.peer_id)

    def _state_changed(self) -> None:
        if not self._closed:
            self._set_state(self._pc.connectionState)

    def _attach(self, transceiver: RTCRtpTransceiver, track: _PacketTrack) -> None:
        transceiver.setCodecPreferences(_codec_preferences(track.kind))  # type: ignore[arg-type]
        # A receiver's keyframe request (PLI/FIR) reaches the sender's `_send_keyframe`, which only
        # flags aiortc's own per-peer encoder.  Our packets come from the shared encoder, so the
        # request goes there instead (an instance attribute, for this sender only).
        setattr(transceiver.sender, "_send_keyframe", track.encoder.request_keyframe)  # noqa: B010

    async def _describe(self, description: RTCSessionDescription) -> str:
        """Set the local description (gathering candidates on the configured addresses); the complete SDP."""
        try:
            with offering(self.ice.host_addresses):
                async with asyncio.timeout(NEGOTIATION_TIMEOUT_S):
                    await self._pc.setLocalDescription(description)
        except TimeoutError as exc:
            limit = NEGOTIATION_TIMEOUT_S
            raise RtcError(f"peer {self.peer_id}: gathering ICE candidates took over {limit} s") from exc
        local = self._pc.localDescription
        if local is not None and "a=candidate" in local.sdp:
            return str(local.sdp)
        if self.ice.relay_only:  # aioice drops the TURN client's error: name what to check instead
            turn = self.ice.turn_url
            raise RtcError(
                f"peer {self.peer_id}: no relay candidate from the TURN server {turn} (relay only): "
                "check its username and credential, and that it is reachable"
            )
        raise RtcError(f"peer {self.peer_id}: no ICE candidate (host addresses {self.ice.host_addresses or 'all'})")

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise RtcError(f"peer {self.peer_id}: cannot {what}, the peer is closed")

    async def create_offer(self) -> str:
        """Offer our send tracks (sendonly) and `receive_video`/`receive_audio` recvonly slots."""
        self._check_open("create an offer")
        if self._pc.signalingState != "stable" or self._pc.localDescription is not None:
            raise RtcError(f"peer {self.peer_id}: an offer was already made")
        if not self._tracks and not any(self._receive.values()):
            raise RtcError(f"peer {self.peer_id}: nothing to send or receive")
        for track in self._tracks.values():
            self._attach(self._pc.addTransceiver(track, direction="sendonly"), track)
        for kind, count in self._receive.items():
            for _ in range(count):
                self._pc.addTransceiver(kind, direction="recvonly")
        offer = await self._pc.createOffer()
        return await self._describe(offer)

    async def accept_offer(self, sdp: str) -> str:
        """Answer a remote offer: our send tracks go on its recvonly/sendrecv sections of their kind."""
        self._check_open("accept an offer")
        if self._pc.remoteDescription is not None or self._pc.localDescription is not None:
            raise RtcError(f"peer {self.peer_id}: this peer already negotiated")
        parsed = _parse_sdp(self.peer_id, sdp, "offer")
        pending = {kind: [t for t in self._tracks.values() if t.kind == kind] for kind in ("audio", "video")}
        # aiortc binds the offer's sections to existing transceivers of the same kind in order, so
        # creating them in the offer's order decides which section carries which of our tracks.
        for media in parsed.media:
            if media.kind not in pending:
                continue
            remote_receives = (media.direction or "sendrecv") in ("recvonly", "sendrecv")
            if remote_receives and pending[media.kind]:
                track = pending[media.kind].pop(0)
                direction = "sendrecv" if media.direction in (None, "sendrecv") else "sendonly"
                self._attach(self._pc.addTransceiver(track, direction=direction), track)
            else:
                self._pc.addTransceiver(media.kind, direction="recvonly")
        await self._remote(sdp, "offer")
        answer = await self._pc.createAnswer()
        return await self._describe(answer)

    async def accept_answer(self, sdp: str) -> None:
        """Apply the remote answer to our offer; media starts flowing once ICE and DTLS connect."""
        self._check_open("accept an answer")
        if self._pc.signalingState != "have-local-offer":
            raise RtcError(f"peer {self.peer_id}: got an answer but made no offer (state {self._pc.signalingState})")
        _parse_sdp(self.peer_id, sdp, "answer")
        await self._remote(sdp, "answer")

    async def _remote(self, sdp: str, kind: str) -> None:
        try:
            async with asyncio.timeout(NEGOTIATION_TIMEOUT_S):
                await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        except TimeoutError as exc:
            raise RtcError(f"peer {self.peer_id}: applying the {kind} took over {NEGOTIATION_TIMEOUT_S} s") from exc
        except Exception as exc:  # aiortc raises ValueError, OperationError, InvalidStateError, ...
            raise RtcError(f"peer {self.peer_id}: the {kind} was refused: {exc}") from exc

    def _track_arrived(self, track: MediaStreamTrack) -> None:
        transceiver = next((t for t in self._pc.getTransceivers() if t.receiver.track is track), None)
        name = track.id
        if name in self.incoming or name in self.incoming_audio:  # two tracks with one id: keep both
            name = f"{name}#{transceiver.mid if transceiver else len(self.track_names)}"
        if transceiver is not None and transceiver.mid is not None:
            self.track_names[transceiver.mid] = name
            self._receivers[name] = transceiver.receiver
        if track.kind == "video":
            video = RemoteVideo(name)
            self.incoming[name] = video
            reader = self._read(track, video.push)
        else:
            audio = RemoteAudio(name)
            self.incoming_audio[name] = audio
            reader = self._read(track, audio.push)
        self._readers[name] = asyncio.create_task(reader, name=f"peer[{self.peer_id}].recv[{name}]")

    async def _read(self, track: MediaStreamTrack, push: Callable[[Any], None]) -> None:
        """Hand every decoded frame to `push` until the track ends (the task is the Peer's; close cancels it)."""
        while True:
            try:
                # A silent sender is not an error here: the lesson watches `frozen_for()`.
                async with asyncio.timeout(5.0):
                    frame = await track.recv()
            except TimeoutError:
                continue
            except MediaStreamError:
                return
            push(frame)

    async def request_keyframe(self, name: str) -> None:
        """Ask the sender of incoming track `name` for a keyframe (RTCP PLI)."""
        receiver = self._receivers.get(name)
        if receiver is None:
            raise RtcError(f"peer {self.peer_id}: no incoming track {name!r} (have {sorted(self._receivers)})")
        for source in receiver.getSynchronizationSources():
            async with asyncio.timeout(5.0):
                await receiver._send_rtcp_pli(source.source)  # aiortc has no public PLI call

    def route(self) -> tuple[str, str] | None:
        """The candidate types (local, remote) of the pair ICE chose, e.g. ("relay", "host"); None before."""
        for transceiver in self._pc.getTransceivers():
            connection = transceiver.receiver.transport.transport._connection  # aiortc exposes no selected pair
            pair = next(iter(connection._nominated.values()), None)
            if pair is not None:
                return pair.local_candidate.type, pair.remote_candidate.type
        return None

    @property
    def frames_sent(self) -> int:
        """Video packets (frames) handed to the remote so far."""
        return sum(t.sent for t in self._tracks.values() if t.kind == "video")

    async def stats(self) -> PeerStats:
        """State, frame counters, RTT, loss, bitrates since the previous call, incoming fps."""
        link = LinkTally()
        if not self._closed:
            async with asyncio.timeout(5.0):
                link.add(await self._pc.getStats())
        now = time.monotonic()
        rate_in = rate_out = 0.0
        if self._last_sample is not None and now > self._last_sample[0]:
            span = now - self._last_sample[0]
            rate_in = max(0, link.bytes_in - self._last_sample[1]) * 8 / span / 1000
            rate_out = max(0, link.bytes_out - self._last_sample[2]) * 8 / span / 1000
        self._last_sample = (now, link.bytes_in, link.bytes_out)
        return PeerStats(
            peer_id=self.peer_id,
            state=self.state,
            frames_sent=self.frames_sent,
            frames_received=sum(v.frames for v in self.incoming.values()),
            rtt_ms=round(max(link.rtts) * 1000, 1) if link.rtts else None,
            loss=round(link.loss(), 4),
            bitrate_in_kbps=round(rate_in, 1),
            bitrate_out_kbps=round(rate_out, 1),
            fps_in=round(sum(v.health().fps for v in self.incoming.values()), 1),
        )

    async def close(self) -> None:
        """Close the connection, stop the readers, let go of the encoders (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for track in self._tracks.values():
            track.stop()  # unsubscribes now, even if aiortc's sender never started
        readers = list(self._readers.values())
        for reader in readers:
            reader.cancel()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self._pc.close()
                await asyncio.gather(*readers, return_exceptions=True)
        except TimeoutError:
            log.warning("peer %s: closing took over %s s", self.peer_id, CLOSE_TIMEOUT_S)
        for video in self.incoming.values():
            video.connected = False
        self._set_state("closed")
