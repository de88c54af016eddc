"""OnvifDriver: an ONVIF camera behind the `drivers.driver.Driver` protocol (calls, polling, health).

One lock serialises the camera's requests.  The first call (or the poll loop) connects: the clock
offset, the service addresses, GetDeviceInformation (make, model, firmware, serial: kept in the
state) and GetProfiles.  A request that times out or whose connection fails drops the connection
and marks the camera offline; the poll loop reconnects with backoff, and the camera is online again
as soon as it answers.  A refused password is offline too, with an error that says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from drivers.backoff import Backoff
from drivers.device import Health, Result
from drivers.errors import (
    DeviceError,
    DeviceRejected,
    DeviceTimeout,
    DriverError,
    GarbageReceived,
    ProfileError,
    TransportError,
    error_code,
)
from drivers.onvif.address import OnvifAddress
from drivers.onvif.client import OnvifClient
from drivers.onvif.commands import HANDLERS, QUERIES, identity
from drivers.onvif.media import (
    MediaProfile,
    choose,
    media_uri,
    ptz_profile,
    read_profiles,
    same_host,
    with_credentials,
)
from drivers.onvif.ptz import PresetCache
from drivers.profile_model import Profile
from drivers.protocol.engine import Reply

log = logging.getLogger(__name__)

# Reply fields that describe an answer, not the camera's state.
_NOT_STATE = frozenset({"presets", "address"})
# The largest snapshot the driver fetches (a 4K JPEG is well under this).
SNAPSHOT_MAX_BYTES = 8 * 1024 * 1024
_LOST = (DeviceTimeout, TransportError, GarbageReceived)
# A camera clock this far off ours is reported in the state (``clock_offset_s``); less is noise.
CLOCK_SHOWN_S = 60

Work = Callable[[OnvifClient], Awaitable[dict[str, object]]]


class OnvifDriver:
    """One ONVIF camera: the profile's vocabulary over SOAP, its state polled, its media URIs on request."""

    def __init__(
        self,
        profile: Profile,
        address: OnvifAddress,
        *,
        device_id: str = "",
        poll_interval: float | None = None,
        timeout_s: float | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        """Nothing connects until a call or `run`; ProfileError for a command this driver cannot do."""
        unknown = sorted(set(profile.commands) - set(HANDLERS))
        if unknown:
            raise ProfileError(f"{profile.path}: commands {', '.join(unknown)}: the onvif driver has no such command")
        self.profile = profile
        self.address = address
        self.id = device_id or f"{profile.id}@{address.netloc}"
        self.poll_interval = profile.poll_interval_s if poll_interval is None else poll_interval
        self.timeout_s = profile.transport.timeout_ms / 1000 if timeout_s is None else timeout_s
        self.backoff = backoff or Backoff()
        self.health = Health()
        self.profiles: tuple[MediaProfile, ...] = ()
        self.ptz: MediaProfile | None = None
        self.presets: PresetCache | None = None
        self._client: OnvifClient | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._connected_before = False
        self._online_fields: dict[str, object] = {}

    async def call(self, command: str, args: Mapping[str, object] | None = None) -> Result:
        """Run one command of the vocabulary; ArgumentError before anything is sent, else DeviceError subclasses."""
        spec = self.profile.command(command)
        values = self.profile.resolve_args(spec, args or {})
        handler = HANDLERS[command]
        timeout = spec.timeout_ms / 1000
        fields = await self._run(lambda client: handler(self, client, values), timeout)
        kind = "value" if command in QUERIES else "completion"
        answer = {k: v for k, v in fields.items() if v is not None}  # None only clears a state field
        return Result(command, (Reply(kind, command, answer, b""),))

    async def poll(self) -> dict[str, object]:
        """The profile's poll commands (GetStatus); a camera without PTZ is asked GetSystemDateAndTime instead."""
        await self._run(self._poll_once, self.timeout_s)
        return dict(self.health.state)

    async def _poll_once(self, client: OnvifClient) -> dict[str, object]:
        if self.ptz is None:
            await client.request("devicemgmt", "GetSystemDateAndTime")
            return {}
        fields: dict[str, object] = {}
        for command in self.profile.poll_commands:
            try:
                fields |= await HANDLERS[command](self, client, {})
            except DeviceRejected as exc:
                if exc.code == "not_authorized":
                    raise
                log.info("%s: %s", self.id, exc)
        return fields

    async def run(self, on_update: Callable[[Health], Awaitable[None]] | None = None) -> None:
        """Poll until cancelled (sooner when `poll_soon` asks); while the camera is offline, reconnect with backoff."""
        while True:
            try:
                await self.poll()
            except DeviceError as exc:
                if self.health.online:  # a refused query of a camera that answers: it stays online
                    log.info("%s: %s", self.id, exc)
            delay = self.poll_interval if self.health.online else self.backoff.next_delay()
            if on_update is not None:
                await on_update(self.health)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()

    def poll_soon(self) -> None:
        """Poll now rather than at the next interval (after a command: the state it changed is reported)."""
        self._wake.set()

    async def close(self) -> None:
        """Let go of the connection."""
        async with self._lock:
            await self._drop()
        self.health.online = False

    async def stream_uri(self, selector: str = "") -> str:
        """The RTSP URI (with the camera's credentials) of media profile `selector`: ``main``, ``sub`` or a token."""

        async def work(client: OnvifClient) -> dict[str, object]:
            token = choose(self.profiles, selector).token
            setup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
            answer = await client.request("media", "GetStreamUri", {"StreamSetup": setup, "ProfileToken": token})
            uri = media_uri(answer, "GetStreamUri", ("rtsp", "rtsps"), self.id)
            return {"uri": with_credentials(uri, self.address.user, self.address.password, self.address.host)}

        return str((await self._run(work, self.timeout_s, keep=False))["uri"])

    async def snapshot(self, selector: str = "", max_bytes: int = SNAPSHOT_MAX_BYTES) -> bytes:
        """A still picture (JPEG, as the camera makes it) of media profile `selector`, via GetSnapshotUri."""
        image = b""

        async def work(client: OnvifClient) -> dict[str, object]:
            nonlocal image
            token = choose(self.profiles, selector).token
            answer = await client.request("media", "GetSnapshotUri", {"ProfileToken": token})
            uri = media_uri(answer, "GetSnapshotUri", ("http", "https"), self.id)
            image = await client.fetch(uri, max_bytes, credentials=same_host(uri, self.address.host))
            return {}

        await self._run(work, self.timeout_s * 2, keep=False)
        return image

    async def _run(self, work: Work, timeout_s: float, *, keep: bool = True) -> dict[str, object]:
        """`work` on a connected client, under the lock; a lost camera is dropped (and offline)."""
        async with self._lock:
            try:
                client = await self._connect()
                client.timeout_s = max(self.timeout_s, timeout_s)
                fields = await work(client)
            except _LOST as exc:
                await self._drop(exc)
                raise
            except DeviceRejected as exc:
                if exc.code == "not_authorized":
                    await self._drop(exc)
                raise
            finally:
                if self._client is not None:
                    self._client.timeout_s = self.timeout_s
        state = {k: v for k, v in fields.items() if k not in _NOT_STATE} if keep else {}
        self._online(self._online_fields | state)
        return fields

    async def _connect(self) -> OnvifClient:
        """The connected client, connecting first when there is none (the lock is held)."""
        if self._client is not None:
            return self._client
        client = OnvifClient(self.address, device=self.id, timeout_s=self.timeout_s)
        try:
            await client.connect()
            info = identity(await client.request("devicemgmt", "GetDeviceInformation"))
            profiles = (
                read_profiles(await client.request("media", "GetProfiles"), self.id) if client.has("media") else ()
            )
        except BaseException:
            await client.close()
            raise
        self._client, self.profiles, self.presets = client, profiles, None
        self.ptz = ptz_profile(profiles) if client.has("ptz") else None
        if self._connected_before:
            self.health.reconnects += 1
        self._connected_before = True
        self.health.state.update(info)
        offset = round(client.clock_offset_s)  # a camera clock minutes or hours off shows on the dashboard
        self._online_fields = {"clock_offset_s": offset if abs(offset) >= CLOCK_SHOWN_S else None}
        log.info("%s: connected to %s %s at %s", self.id, info.get("make", "?"), info.get("model", "?"), self.address)
        return client

    async def _drop(self, error: DriverError | None = None) -> None:
        """Close the connection; with an error, the camera is offline for it."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        if error is not None:
            if self.health.online:
                log.warning("%s: offline: %s", self.id, error)
            self.health.online = False
            self.health.last_error, self.health.error_code = str(error), error_code(error)

    def _online(self, fields: Mapping[str, object]) -> None:
        if not self.health.online:
            log.info("%s: online", self.id)
        self.health.online = True
        self.health.last_error = self.health.error_code = ""
        self.backoff.reset()
        for key, value in fields.items():  # None: no longer known (preset after a move), so not reported
            if value is None:
                self.health.state.pop(key, None)
            else:
                self.health.state[key] = value

    def require_ptz(self, command: str) -> MediaProfile:
        """The PTZ media profile; DeviceRejected when the camera has none."""
        if self.ptz is None:
            raise DeviceRejected(f"{command}: the camera offers no PTZ", code="unsupported", device=self.id)
        return self.ptz

    def profile_state(self) -> dict[str, Any]:
        """The media profiles as plain data (tokens, sizes, encodings), for discovery and messages."""
        return {p.token: {"name": p.name, "width": p.width, "height": p.height, "ptz": p.ptz} for p in self.profiles}
