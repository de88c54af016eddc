"""ICE settings for WebRTC peers: STUN/TURN servers, the host addresses offered, relay only.

With `streaming.rtc`, the only module that imports aiortc and aioice: this one holds what ICE
is told (the RTCConfiguration) and the one hook that chooses which host addresses aioice offers.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import aioice.ice
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer, RTCIceTransportPolicy

__all__ = ["IceServer", "IceSettings", "install_host_address_hook", "offering"]

_ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


@dataclass(frozen=True)
class IceServer:
    """One STUN (`stun:host:port`) or TURN (`turn:host:port?transport=udp|tcp`, coturn) server."""

    urls: tuple[str, ...]
    username: str = ""
    credential: str = ""

    def __post_init__(self) -> None:
        """Refuse URLs that are not STUN/TURN, and TURN without credentials."""
        if not self.urls:
            raise ValueError("ice server: urls is empty")
        for url in self.urls:
            if not url.startswith(_ICE_SCHEMES) or len(url.split(":")) < 2 or not url.split(":")[1]:
                raise ValueError(f"ice server: url {url!r} is not stun:host[:port] or turn:host[:port][?transport=..]")
            if url.startswith(("turn:", "turns:")) and not (self.username and self.credential):
                raise ValueError(f"ice server: {url!r} is a TURN server and needs username and credential")

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> IceServer:
        """From config: {"urls": str | [str], "username": str, "credential": str}."""
        raw = data.get("urls", ())
        urls = (raw,) if isinstance(raw, str) else tuple(str(u) for u in raw) if isinstance(raw, list | tuple) else ()
        unknown = set(data) - {"urls", "username", "credential"}
        if unknown:
            raise ValueError(f"ice server: unknown keys {sorted(unknown)}")
        return cls(urls, str(data.get("username", "")), str(data.get("credential", "")))

    def to_dict(self) -> dict[str, object]:
        """For config and JSON."""
        return {"urls": list(self.urls), "username": self.username, "credential": self.credential}


@dataclass(frozen=True)
class IceSettings:
    """STUN/TURN servers (none: no STUN at all), host addresses ICE may offer (none: all but loopback), relay only.

    `relay_only` is the "relay" iceTransportPolicy: only the TURN server's relay address is offered,
    so media goes through it (schools behind NAT whose direct paths are blocked).
    """

    servers: tuple[IceServer, ...] = ()
    host_addresses: tuple[str, ...] = ()
    relay_only: bool = False

    def __post_init__(self) -> None:
        """Refuse relay_only without a TURN server: ICE would have no candidate at all."""
        if self.relay_only and not self.turn_url:
            raise ValueError("ice settings: relay_only needs a TURN server (a turn: or turns: url) in servers")

    @property
    def turn_url(self) -> str:
        """The TURN server aiortc uses (it takes only the first one), or ""."""
        return next((u for s in self.servers for u in s.urls if u.startswith(("turn:", "turns:"))), "")

    def configuration(self) -> RTCConfiguration:
        """The RTCConfiguration: always explicit, so aiortc never adds its default public STUN server."""
        servers = [RTCIceServer(list(s.urls), s.username or None, s.credential or None) for s in self.servers]
        policy = RTCIceTransportPolicy.RELAY if self.relay_only else RTCIceTransportPolicy.ALL
        return RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE, iceTransportPolicy=policy)


# aioice offers every address but 127.0.0.1 and has no setting to choose: a school PC has
# several NICs (only one reaches the other classrooms) and the tests run on loopback.  Its
# only hook is the module function `get_host_addresses`, called while candidates are gathered
# inside `setLocalDescription`; `Peer` wraps that call in `offering(...)`, so two
# peers with different settings in one process each get their own addresses.
_HOST_ADDRESSES: ContextVar[tuple[str, ...]] = ContextVar("ice_host_addresses", default=())


def install_host_address_hook() -> None:
    """Replace `aioice.ice.get_host_addresses` once per process (idempotent)."""
    current = aioice.ice.get_host_addresses
    if getattr(current, "classroom_agent_hook", False):
        return

    @functools.wraps(current)  # keeps aioice's signature visible (tests/streaming/test_aiortc_internals.py)
    def configured(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        chosen = _HOST_ADDRESSES.get()
        if not chosen:
            return current(use_ipv4, use_ipv6)
        return [a for a in chosen if (use_ipv6 if ":" in a else use_ipv4)]

    configured.classroom_agent_hook = True  # type: ignore[attr-defined]
    aioice.ice.get_host_addresses = configured


@contextmanager
def offering(addresses: tuple[str, ...]) -> Iterator[None]:
    """Within this block, ICE gathering in this context offers only `addresses` (none: aioice's own choice)."""
    token = _HOST_ADDRESSES.set(addresses)
    try:
        yield
    finally:
        _HOST_ADDRESSES.reset(token)
