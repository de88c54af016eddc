"""A lesson through a TURN relay: a real coturn on loopback, two peers that may use only its relay.

Schools behind NAT set ``[lesson] ice_transport_policy = "relay"`` so that media goes through
their coturn when direct paths are blocked.  Here both peers are relay-only: the receiver must
decode the sender's burned-in counter, ICE must have chosen a relay pair, and coturn must have
carried the bytes.  Wrong TURN credentials fail at once with a message that says what to check.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streaming import stamp
from streaming.encoding import VideoEncoder
from streaming.ice import IceServer, IceSettings
from streaming.rtc import Peer, RtcError
from streaming.synthetic import SyntheticSource

SIZE = (640, 360)
USER, PASSWORD, REALM = "agent", "turn-secret", "classroom.test"

# The coturn config the docs show (docs/sfu.md, "NAT and TURN"), with loopback addresses: a
# school's server listens on its own address.  coturn refuses peers on 127.x unless told
# otherwise, and on loopback both relay addresses are 127.0.0.1.
TURN_CONF = """\
listening-ip=127.0.0.1
relay-ip=127.0.0.1
listening-port={port}
min-port={min_port}
max-port={max_port}
lt-cred-mech
user={user}:{password}
realm={realm}
fingerprint
no-tls
no-dtls
no-cli
no-rfc5780
no-multicast-peers
allow-loopback-peers
userdb={dir}/turndb
pidfile={dir}/turnserver.pid
log-file={dir}/turn.log
simple-log
no-stdout-log
verbose
"""


@dataclass(frozen=True)
class Turn:
    """A running coturn: its URL and its log."""

    url: str
    log: Path

    def ice(self, password: str = PASSWORD) -> IceSettings:
        """Relay-only ICE through this server (the host address is configured, and must not be offered)."""
        server = IceServer((self.url,), USER, password)
        return IceSettings(servers=(server,), host_addresses=("127.0.0.1",), relay_only=True)

    def text(self) -> str:
        """The server's log so far."""
        return self.log.read_text(errors="replace")


def free_udp_port() -> int:
    """A UDP port nobody on loopback uses now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def turn(tmp_path: Path) -> Iterator[Turn]:
    """coturn's turnserver with its own config, data and log in tmp, stopped after the test."""
    binary = shutil.which("turnserver") or "/usr/bin/turnserver"
    if not Path(binary).exists():
        pytest.skip("coturn's turnserver is not installed (scripts/system-deps --test installs it)")
    port = free_udp_port()
    config = tmp_path / "turnserver.conf"
    values = {"port": port, "min_port": 41000, "max_port": 41100, "dir": tmp_path}
    config.write_text(TURN_CONF.format(**values, user=USER, password=PASSWORD, realm=REALM))
    log = tmp_path / "turn.log"
    process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not (log.exists() and f"UDP listener opened on: 127.0.0.1:{port}" in log.read_text(errors="replace")):
            assert process.poll() is None, f"turnserver exited with {process.returncode}: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "turnserver did not open its UDP listener within 15 s"
            time.sleep(0.05)
        yield Turn(f"turn:127.0.0.1:{port}?transport=udp", log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture
def teacher() -> Iterator[SyntheticSource]:
    source = SyntheticSource("teacher", SIZE, 15)
    source.start()
    yield source
    source.stop()


async def until(condition: object, timeout: float, what: str) -> None:
    """Await until `condition()` holds, or fail saying `what` did not happen."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        await asyncio.sleep(0.05)


async def counters_seen(peer: Peer, name: str, seconds: float) -> list[int]:
    """The distinct burned-in counters `peer` decodes from `name` during `seconds`, in arrival order."""
    seen: list[int] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        frame = peer.incoming[name].latest()
        read = None if frame is None else stamp.read(frame.image)
        if read is not None and (not seen or seen[-1] != read[0]):
            seen.append(read[0])
        await asyncio.sleep(0.01)
    return seen


def relayed_bytes(log: str) -> int:
    """The bytes coturn says its relay addresses received from peers for our user (its "peer usage" reports)."""
    usage = re.findall(rf"peer usage: realm=<{REALM}>, username=<{USER}>, rp=\d+, rb=(\d+)", log)
    return sum(int(received) for received in usage)


async def test_a_lesson_flows_through_the_turn_relay(turn: Turn, teacher: SyntheticSource, peers: list[Peer]) -> None:
    encoder = VideoEncoder(teacher, size=SIZE, fps=15, bitrate=600_000)
    main = Peer("main", turn.ice(), send={"teacher": encoder})
    remote = Peer("remote", turn.ice())
    peers += [main, remote]
    offer = await main.create_offer()
    answer = await remote.accept_offer(offer)
    await main.accept_answer(answer)
    for sdp in (offer, answer):  # the configured host address and loopback are never offered
        candidates = [line for line in sdp.splitlines() if line.startswith("a=candidate")]
        assert candidates and all(" typ relay" in c for c in candidates), candidates
    await until(lambda: "teacher" in remote.incoming and remote.incoming["teacher"].frames > 3, 30, "video via TURN")
    counters = await counters_seen(remote, "teacher", 3.0)
    assert len(counters) >= 10, f"only {len(counters)} distinct stamped pictures in 3 s"
    assert all(b > a for a, b in zip(counters, counters[1:], strict=False)), f"counters went backwards: {counters}"
    assert main.route() == ("relay", "relay") and remote.route() == ("relay", "relay")
    assert main.state == remote.state == "connected"
    for peer in (main, remote):
        await peer.close()
    # coturn's own account: its relay addresses carried the video, not just ICE checks (~1 kB);
    # an allocation's usage is logged when it ends, i.e. after the peers' close
    await until(lambda: relayed_bytes(turn.text()) > 50_000, 15, "coturn reporting the relayed video")


async def test_wrong_turn_credentials_fail_with_a_clear_message(
    turn: Turn, teacher: SyntheticSource, peers: list[Peer]
) -> None:
    encoder = VideoEncoder(teacher, size=SIZE, fps=15, bitrate=600_000)
    main = Peer("main", turn.ice(password="wrong"), send={"teacher": encoder})
    remote = Peer("remote", turn.ice(password="wrong"))
    peers += [main, remote]
    async with asyncio.timeout(30):  # a bound, not a measurement: gathering must give up by itself
        with pytest.raises(RtcError, match="no relay candidate from the TURN server") as offering:
            await main.create_offer()
    assert turn.url in str(offering.value) and "username and credential" in str(offering.value)
    assert "peer main" in str(offering.value)
    assert "user agent credentials are incorrect" in turn.text()  # coturn was reached, and refused them
    good = Peer("good", turn.ice(), send={"teacher": encoder})
    peers.append(good)
    async with asyncio.timeout(30):
        with pytest.raises(RtcError, match="no relay candidate"):
            await remote.accept_offer(await good.create_offer())


def test_relay_only_needs_a_turn_server() -> None:
    with pytest.raises(ValueError, match="relay_only needs a TURN server"):
        IceSettings(servers=(IceServer(("stun:stun.school:3478",)),), relay_only=True)
    assert IceSettings().configuration().iceTransportPolicy.value == "all"
    relay = IceSettings(servers=(IceServer(("turn:t:3478",), "u", "p"),), relay_only=True)
    assert relay.configuration().iceTransportPolicy.value == "relay" and relay.turn_url == "turn:t:3478"
