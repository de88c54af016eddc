"""An RTSP camera whose address is asked for every time it connects (an ONVIF camera's GetStreamUri).

The address comes from elsewhere (the agent's device service asks the camera), through a callable
that returns a `concurrent.futures.Future`: the reader thread waits for it in short slices, so that
`stop` is never held up by a camera that does not answer, and a failure is one more outage that the
reader retries with backoff.  After each reconnect the address is asked for again: a camera that
rebooted may have changed it.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable

from drivers.backoff import Backoff
from streaming.reconnect import SourceUnavailable
from streaming.rtsp import RtspSource

Resolve = Callable[[], "concurrent.futures.Future[str]"]
# How often the wait for an address looks at `stopping`.
WAIT_SLICE_S = 0.2


class ResolvedRtspSource(RtspSource):
    """An `RtspSource` whose URL `resolve` gives anew before every connection; `url` is the last one."""

    def __init__(
        self,
        name: str,
        where: str,
        resolve: Resolve,
        *,
        resolve_timeout_s: float = 30.0,
        timeout_s: float = 5.0,
        backoff: Backoff | None = None,
    ) -> None:
        """`where` names the camera in messages (the URL, which carries a password, never does)."""
        super().__init__(name, "", timeout_s=timeout_s, backoff=backoff)
        self.where = where
        self.resolve = resolve
        self.resolve_timeout_s = resolve_timeout_s
        self.resolved = 0  # how many times an address was obtained

    def _read(self) -> None:
        self.url = self._address()
        self.resolved += 1
        super()._read()

    def _address(self) -> str:
        """The camera's stream address now; SourceUnavailable when it cannot be had in time."""
        future = self.resolve()
        deadline = time.monotonic() + self.resolve_timeout_s
        while True:
            try:
                return future.result(timeout=WAIT_SLICE_S)
            except TimeoutError:
                if self.stopping or time.monotonic() >= deadline:
                    future.cancel()
                    raise SourceUnavailable(
                        f"{self.where}: no stream address within {self.resolve_timeout_s:g} s"
                    ) from None
            except concurrent.futures.CancelledError:
                raise SourceUnavailable(f"{self.where}: asking for the stream address was cancelled") from None
            except Exception as exc:
                raise SourceUnavailable(f"{self.where}: no stream address: {exc}") from exc
