"""Delivering a recording with HTTP(S) PUT: ``URL/NAME.mp4``, then ``URL/NAME.sha256`` and ``URL/NAME.json``.

A server that takes ``Content-Range`` on PUT gets the file in chunks (``bytes A-B/SIZE`` each) and
an interrupted delivery continues from what ``HEAD`` says the server has.  Whether it does is found
out, not assumed: a server that refuses ``Content-Range`` (RFC 9110 asks for 400) or ignores it (a
``HEAD`` after the second chunk shows the file did not grow) gets the whole file in one PUT, now
and on every later attempt (agent.db keeps the answer).  Without ``HEAD`` nothing can be resumed or
checked, so the whole file is sent.  Basic authentication (``username``/``password``) or a bearer
``token``; ``https://`` checks the certificate against the system's CAs or ``ca_file``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote, unquote

import aiohttp

from agent.config.delivery import DeliveryTarget
from agent.recording.sidecar import Job
from agent.recording.transfer import DeliveryError, Progress, server_text

log = logging.getLogger(__name__)

BLOCK = 256 * 1024
MIN_RATE = 32 * 1024  # bytes/s: a chunk's PUT may take its size at this rate beyond the timeout
RANGE_REFUSED = (400, 409, 411, 416, 501)  # a ranged PUT the server will not (or not there) take
MAX_REPOSITION = 3  # a server that keeps disagreeing about the position gets the whole file


class HttpTransport:
    """Delivers jobs to one ``http://`` or ``https://`` target."""

    def __init__(self, target: DeliveryTarget) -> None:
        """Nothing is opened until `deliver`."""
        self.target = target

    def where(self, job: Job) -> str:
        """The recording's URL."""
        return self.target.url + quote(job.name)

    async def deliver(self, job: Job, progress: Progress) -> None:
        """Put the recording (resumed where the server supports it), check its size, put the sidecars."""
        target = self.target
        headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
        auth = aiohttp.BasicAuth(target.username, target.password, "utf-8") if target.username else None
        context = ssl.create_default_context(cafile=str(target.ca_file) if target.ca_file else None)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=target.timeout_s, sock_read=target.timeout_s)
        connector = aiohttp.TCPConnector(ssl=context if target.scheme == "https" else False)
        async with aiohttp.ClientSession(headers=headers, auth=auth, timeout=timeout, connector=connector) as http:
            url = self.where(job)
            have = await self._size(http, url, progress)
            if have != job.size:
                ranged = have is not None and job.size > target.chunk_bytes and progress.ranges != 0
                start = have if have is not None and have < job.size else 0
                if not (ranged and await self._ranged(http, url, job, progress, start)):
                    await self._whole(http, url, job, progress)
                have = await self._size(http, url, progress)
                if have is not None and have != job.size:
                    raise DeliveryError(f"{job.name}: the server has {have} bytes after the PUT, expected {job.size}")
            progress.moved(job.size)
            for name, content in job.sidecars():
                status, text = await self._put(http, target.url + quote(name), content, {})
                if not 200 <= status < 300:
                    raise self._refused(target.url + quote(name), "PUT", status, text)

    async def _ranged(self, http: aiohttp.ClientSession, url: str, job: Job, progress: Progress, start: int) -> bool:
        """Send from `start` in ranged chunks; False (ranges now 0) when the server turns out not to honour them."""
        offset, verified, repositioned = start, progress.ranges == 1, 0
        progress.moved(offset)
        while offset < job.size:
            chunk = await asyncio.to_thread(_read, job.path, offset, self.target.chunk_bytes)
            if not chunk:
                raise DeliveryError(f"{job.path}: ends at {offset} bytes, the index says {job.size}", retry=False)
            last = offset + len(chunk) - 1
            status, text = await self._put(http, url, chunk, {"Content-Range": f"bytes {offset}-{last}/{job.size}"})
            if status in RANGE_REFUSED and not verified:
                log.info("%s: %s refuses Content-Range on PUT (%d): sending whole files", self.target.name, url, status)
                progress.ranges = 0
                return False
            if status in RANGE_REFUSED and (repositioned := repositioned + 1) <= MAX_REPOSITION:
                have = await self._size(http, url, progress)  # it has another length than we thought
                offset = have if have is not None and have <= job.size else 0
                continue
            if not 200 <= status < 300:
                raise self._refused(url, "PUT", status, text)
            written, offset = offset, last + 1
            progress.moved(offset)
            if not verified:
                have = await self._size(http, url, progress)
                if have != offset:  # it took the chunk as the whole file (or cannot say)
                    log.info("%s: %s ignores Content-Range on PUT: sending whole files", self.target.name, url)
                    progress.ranges = 0
                    return False
                if written > 0:  # a chunk that did not start the file was appended: ranges work
                    verified, progress.ranges = True, 1
        return True

    async def _whole(self, http: aiohttp.ClientSession, url: str, job: Job, progress: Progress) -> None:
        """The whole file in one PUT, streamed from the disk."""
        progress.moved(0)

        async def body() -> AsyncIterator[bytes]:
            offset = 0
            while offset < job.size:
                block = await asyncio.to_thread(_read, job.path, offset, BLOCK)
                if not block:
                    raise DeliveryError(f"{job.path}: ends at {offset} bytes, the index says {job.size}", retry=False)
                offset += len(block)
                progress.moved(offset)
                yield block

        status, text = await self._put(http, url, body(), {}, job.size)
        if not 200 <= status < 300:
            raise self._refused(url, "PUT", status, text)

    async def _put(
        self, http: aiohttp.ClientSession, url: str, data: object, headers: dict[str, str], size: int | None = None
    ) -> tuple[int, str]:
        """One PUT with a deadline that grows with its size: the status and the start of the answer."""
        length = size if size is not None else len(data) if isinstance(data, bytes) else 0
        headers = {**headers, "Content-Length": str(length)}
        try:
            async with (
                asyncio.timeout(self.target.timeout_s + length / MIN_RATE),
                http.put(url, data=data, headers=headers) as response,
            ):
                return response.status, (await response.content.read(1024)).decode("utf-8", "replace")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise self._network(url, "PUT", exc) from exc

    async def _size(self, http: aiohttp.ClientSession, url: str, progress: Progress) -> int | None:
        """What ``HEAD`` says the server has: its Content-Length, 0 when none, None when it cannot say."""
        try:
            async with asyncio.timeout(self.target.timeout_s), http.head(url, allow_redirects=False) as response:
                status, length = response.status, response.headers.get("Content-Length", "")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise self._network(url, "HEAD", exc) from exc
        progress.moved()
        if status in (404, 410):
            return 0
        if status in (405, 501):  # no HEAD here
            return None
        if not 200 <= status < 300:
            raise self._refused(url, "HEAD", status, "")
        return int(length) if length.isdigit() and len(length) <= 18 else None

    def _refused(self, url: str, method: str, status: int, text: str) -> DeliveryError:
        hint = "; check username and password (or token)" if status in (401, 403) else ""
        said = f": {server_text(text, self.target)}" if text.strip() else ""
        return DeliveryError(f"{unquote(url)}: {method} refused ({status}){said}{hint}")

    def _network(self, url: str, method: str, exc: BaseException) -> DeliveryError:
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            why = f"TLS certificate not trusted ({exc.certificate_error}): set ca_file to the server's CA"
        else:
            why = f"{type(exc).__name__}: {server_text(str(exc), self.target)}"
        return DeliveryError(f"{unquote(url)}: {method}: {why}")


def _read(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(length)
