"""The one module that speaks to onvif-zeep-async (and zeep): SOAP requests with a deadline, errors translated.

Every request runs under `asyncio.timeout`; whatever the library, zeep or aiohttp raise comes out as
one of ``drivers.errors``: a camera that does not answer is `DeviceTimeout`, a refused connection
`TransportError`, a SOAP fault `DeviceRejected` (``not_authorized`` for a wrong user name or
password), an answer that is not SOAP `GarbageReceived`.  Results come back as plain dicts, lists
and strings (``zeep.helpers.serialize_object``), so no other module sees a zeep object.

The clock offset: `connect` lets the library ask GetSystemDateAndTime (without credentials, as the
ONVIF Core specification allows) and shift every WS-Security ``Created`` stamp by the difference,
so a camera whose clock is hours off still accepts the password digest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from drivers.errors import DeviceError, DeviceRejected, DeviceTimeout, GarbageReceived, TransportError
from drivers.onvif.address import OnvifAddress

# onvif.client calls logging.basicConfig(level=INFO) when imported: keep the root logger as the
# program configured it (a library must not decide what an application prints).
_root = logging.getLogger()
_kept = (list(_root.handlers), _root.level)
import zeep.exceptions  # noqa: E402
import zeep.helpers  # noqa: E402
from onvif import ONVIFCamera  # noqa: E402
from onvif.exceptions import ONVIFAuthError, ONVIFError, ONVIFTimeoutError  # noqa: E402

_root.handlers[:] = _kept[0]
_root.setLevel(_kept[1])
del _root, _kept

log = logging.getLogger(__name__)

# How many bytes of a bad answer an error carries.
LAST_BYTES = 32
# Connecting is several requests (clock, services, device information, profiles): this many deadlines.
CONNECT_REQUESTS = 4
# SOAP fault subcodes (ONVIF Core, 5.11.2) that mean the credentials were refused.
_AUTH_SUBCODES = frozenset({"NotAuthorized", "FailedAuthentication", "InvalidSecurity"})


class OnvifClient:
    """One camera's SOAP services through onvif-zeep-async; `connect` first, `close` at the end."""

    def __init__(self, address: OnvifAddress, *, device: str, timeout_s: float) -> None:
        """Nothing connects until `connect`; `timeout_s` is the deadline of each request."""
        self.address = address
        self.device = device
        self.timeout_s = timeout_s
        self._camera: ONVIFCamera | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def clock_offset_s(self) -> float:
        """The camera's clock minus ours, in seconds, as measured by GetSystemDateAndTime at `connect`."""
        diff = self._camera.dt_diff if self._camera is not None else None
        return float(diff.total_seconds()) if diff is not None else 0.0

    def has(self, service: str) -> bool:
        """Whether the camera named `service` (``media``, ``ptz``...) in GetServices / GetCapabilities."""
        if self._camera is None:
            return False
        try:
            self._camera.get_definition(service)
        except ONVIFError:
            return False
        return True

    async def connect(self) -> None:
        """GetSystemDateAndTime (clock offset), then GetServices (or GetCapabilities) for the service addresses."""
        await self.close()
        a = self.address
        self._camera = ONVIFCamera(a.host, a.port, a.user, a.password, no_cache=True, adjust_time=True)
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        try:
            await self._deadline("connect", self._camera.update_xaddrs(), self.timeout_s * CONNECT_REQUESTS)
        except BaseException:
            await self.close()
            raise
        offset = self.clock_offset_s
        if abs(offset) >= 60:
            log.info(
                "%s: the camera's clock is %+.0f s off ours; requests are stamped with its time", self.device, offset
            )

    async def request(self, service: str, operation: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call `operation` of `service` (``devicemgmt``, ``media``, ``ptz``); its answer as plain data."""
        camera = self._camera
        if camera is None:
            raise TransportError(f"{operation}: not connected", device=self.device)

        async def call() -> Any:
            client = await camera.create_onvif_service(service)
            return await getattr(client, operation)(dict(params or {}))

        answer = await self._deadline(operation, call(), self.timeout_s)
        return zeep.helpers.serialize_object(answer, dict)  # type: ignore[no-untyped-call]

    async def fetch(self, url: str, max_bytes: int, *, credentials: bool = True) -> bytes:
        """GET `url` (a snapshot), bounded; with `credentials`, HTTP digest (basic when the camera asks for it)."""
        session = self._http
        if session is None:
            raise TransportError("snapshot: not connected", device=self.device)
        digest = aiohttp.DigestAuthMiddleware(self.address.user, self.address.password)

        async def get() -> bytes:
            async with session.get(
                url, middlewares=(digest,) if credentials else (), allow_redirects=False
            ) as response:
                challenge = response.headers.get("WWW-Authenticate", "")
                if credentials and response.status == 401 and challenge.lower().startswith("basic"):
                    basic = aiohttp.BasicAuth(self.address.user, self.address.password)
                    async with session.get(url, auth=basic, allow_redirects=False) as again:
                        return await _body(again, max_bytes, self.device)
                return await _body(response, max_bytes, self.device)

        return bytes(await self._deadline("snapshot", get(), self.timeout_s))

    async def close(self) -> None:
        """Close the camera's HTTP sessions (idempotent)."""
        camera, self._camera = self._camera, None
        http, self._http = self._http, None
        try:
            async with asyncio.timeout(self.timeout_s):
                if camera is not None:
                    await camera.close()
                if http is not None:
                    await http.close()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.debug("%s: closing: %s", self.device, exc)

    async def _deadline(self, operation: str, work: Any, seconds: float) -> Any:
        try:
            async with asyncio.timeout(seconds):
                return await work
        except DeviceError:
            raise
        except TimeoutError:
            raise DeviceTimeout(f"{operation}: no answer within {seconds:g} s", device=self.device) from None
        except Exception as exc:
            raise translate(operation, exc, self.device) from exc


async def _body(response: aiohttp.ClientResponse, max_bytes: int, device: str) -> bytes:
    """The body of a snapshot answer, refusing more than `max_bytes`."""
    if response.status in (401, 403):
        # Not "not_authorized": the SOAP services took the password; only this picture is refused.
        raise DeviceRejected(
            "snapshot: the camera refused the picture (HTTP 401/403)", code="snapshot_refused", device=device
        )
    if response.status != 200:
        raise DeviceRejected(
            f"snapshot: the camera answered HTTP {response.status}", code=f"http_{response.status}", device=device
        )
    if (response.content_length or 0) > max_bytes:
        raise DeviceRejected(
            f"snapshot: {response.content_length} bytes, at most {max_bytes}", code="too_large", device=device
        )
    data = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > max_bytes:
            raise DeviceRejected(f"snapshot: more than {max_bytes} bytes", code="too_large", device=device)
    return bytes(data)


def translate(operation: str, exc: BaseException, device: str) -> DeviceError:
    """The driver error for what the library, zeep or aiohttp raised during `operation`."""
    if isinstance(exc, zeep.exceptions.Fault):
        return _fault(operation, exc, device)
    if isinstance(exc, ONVIFAuthError):
        return DeviceRejected(
            f"{operation}: the camera refused the user name or password", code="not_authorized", device=device
        )
    if isinstance(exc, ONVIFTimeoutError):
        return DeviceTimeout(f"{operation}: {exc}", device=device)
    if isinstance(exc, zeep.exceptions.TransportError):
        content = exc.content if isinstance(exc.content, bytes) else b""
        if exc.status_code in (401, 403):
            return DeviceRejected(
                f"{operation}: the camera refused the user name or password (HTTP {exc.status_code})",
                code="not_authorized",
                device=device,
            )
        if exc.status_code == 200 or content:
            return GarbageReceived(
                f"{operation}: the answer is not SOAP", device=device, last_bytes=content[:LAST_BYTES]
            )
        return DeviceRejected(f"{operation}: HTTP {exc.status_code}", code=f"http_{exc.status_code}", device=device)
    if isinstance(exc, zeep.exceptions.Error | ValueError | LookupError):
        # XMLSyntaxError, ValidationError, a missing element: an answer we cannot read.
        return GarbageReceived(f"{operation}: unreadable answer: {type(exc).__name__}: {_short(exc)}", device=device)
    if isinstance(exc, ONVIFError):
        return DeviceRejected(f"{operation}: {_short(exc)}", code="unsupported", device=device)
    if isinstance(exc, aiohttp.ClientError | OSError):
        return TransportError(f"{operation}: {type(exc).__name__}: {_short(exc)}", device=device)
    return DeviceError(f"{operation}: unexpected {type(exc).__name__}: {_short(exc)}", device=device)


def _fault(operation: str, fault: zeep.exceptions.Fault, device: str) -> DeviceRejected:
    subcodes = [getattr(q, "localname", str(q)) for q in (fault.subcodes or [])]
    reason = _short(fault.message or "") or "no reason given"
    if _AUTH_SUBCODES.intersection(subcodes) or "not authorized" in reason.lower():
        return DeviceRejected(
            f"{operation}: the camera refused the user name or password ({reason})",
            code="not_authorized",
            device=device,
        )
    code = subcodes[-1] if subcodes else "fault"
    return DeviceRejected(f"{operation}: the camera answered {code}: {reason}", code=code, device=device)


def _short(value: object, limit: int = 200) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
