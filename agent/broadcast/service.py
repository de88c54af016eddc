"""The broadcast service: ``broadcast.start`` / ``broadcast.stop``, one live push of the room's programme at a time.

The programme is the composed picture with the room's sound (`agent.recording.programme`): a
broadcast of the picture being recorded takes the recording's encoder, so the lesson is encoded
once.  The push (`streaming.push.Push`) keeps itself going: when the platform goes away it is
retried with backoff while the lesson goes on; `run` turns its state into the
``broadcast_interrupted`` alarm (raised while the platform gets nothing, cleared when it gets
the picture again) and, when the programme itself ends (its encoder failed), ``broadcast_failed``.
``broadcast.start`` fails (nothing keeps running) when the first connection does.  Only the
redacted URL ever leaves this module.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.alarms import Alarms
from agent.commands.table import Failed, Rejected
from agent.config.broadcast import BroadcastConfig
from agent.config.site import RecordingConfig
from agent.lesson.pictures import recordable
from agent.recording.owned import OwnedWork, in_thread
from agent.recording.programme import Picture, Programmes, encoder_settings

if TYPE_CHECKING:
    from streaming.programme import ProgrammeEncoder
    from streaming.push import Push
    from streaming.source import Source

log = logging.getLogger(__name__)

__all__ = ["BroadcastService"]

WATCH_S = 1.0
USER = "broadcast"
INTERRUPTED = "broadcast_interrupted"
FAILED = "broadcast_failed"


@dataclass
class _Active:
    """The broadcast on air."""

    target: str
    push: Push
    encoder: ProgrammeEncoder
    layout: str
    sources: tuple[str, ...]
    since: float = field(default_factory=time.monotonic)


class BroadcastService:
    """Owns the room's one live broadcast: its push, its share of the programme, its alarms."""

    def __init__(
        self,
        config: BroadcastConfig | None,
        recording: RecordingConfig | None,
        sources: Mapping[str, Source],
        programmes: Programmes,
        alarms: Alarms,
    ) -> None:
        """`programmes` is the recording service's (a broadcast of the same picture shares its encoder)."""
        self.config = config
        self.recording = recording
        self.sources = sources
        self.programmes = programmes
        self.alarms = alarms
        self._active: _Active | None = None
        self._lock = asyncio.Lock()
        self._work = OwnedWork("broadcast")

    @property
    def targets(self) -> tuple[str, ...]:
        """The configured targets' names."""
        return tuple(self.config.targets) if self.config is not None else ()

    def target(self) -> str | None:
        """The target on air now, or None."""
        return self._active.target if self._active is not None else None

    async def run(self) -> None:
        """Turn the push's state into alarms until cancelled; then end the broadcast cleanly."""
        try:
            while True:
                await self._watch()
                await asyncio.sleep(WATCH_S)
        finally:
            await self._work.see_through()
            if self._active is not None:
                log.info("agent stopping while broadcasting to %s: ending the push", self._active.target)
                await self._end(self._active)

    async def start(self, target: str, layout: str = "", sources: Sequence[str] = ()) -> dict[str, Any]:
        """Push the programme to `target`; Failed (with nothing left running) when the first connection fails."""
        return await self._work.run("start", self._start(target, layout, tuple(sources)))

    async def stop(self) -> dict[str, Any]:
        """End the broadcast (the platform gets the end of the stream)."""
        return await self._work.run("stop", self._stop())

    def telemetry(self) -> dict[str, Any]:
        """``{active, target, url (redacted), state, since, seconds, gaps, down_s, last_gap, encoder, shared}``."""
        active = self._active
        if active is None:
            return {"active": False, "target": ""}
        users = self.programmes.users(active.encoder)
        return {
            "active": True, **active.push.stats(), "seconds": round(time.monotonic() - active.since, 1),
            "layout": active.layout, "sources": list(active.sources), "encoder": active.encoder.name,
            "shared": [u for u in users if u != USER],
        }  # fmt: skip

    async def _start(self, target: str, layout: str, sources: tuple[str, ...]) -> dict[str, Any]:
        async with self._lock:
            config = self._config()
            if target not in config.targets:
                raise Rejected(f"target: got {target!r}, expected one of {', '.join(config.targets)}")
            if self._active is not None:
                raise Rejected(f"already broadcasting to {self._active.target}; broadcast.stop first")
            layout = layout or config.layout
            roles = self._roles(config, sources)
            settings = encoder_settings(self.recording, config, for_broadcast=True)
            picture = Picture(layout, roles, config.corner, config.audio, settings)
            encoder = await in_thread(lambda: self.programmes.acquire(picture, USER, f"broadcast[{target}]"))
            try:
                push = await self._connect(target, encoder)
            except BaseException:
                await in_thread(lambda: self.programmes.release(encoder, USER))
                raise
            self._active = _Active(target, push, encoder, layout, roles)
            for code in (INTERRUPTED, FAILED):
                self.alarms.clear(code, target)
            shared = [u for u in self.programmes.users(encoder) if u != USER]
            log.info("broadcasting to %s (%s) from programme %s", target, push.target.redacted, encoder.name)
            return {
                "target": target, "url": push.target.redacted, "layout": layout, "sources": list(roles),
                "encoder": encoder.name, "shared": shared,
            }  # fmt: skip

    async def _connect(self, target: str, encoder: ProgrammeEncoder) -> Push:
        """A push to `target` from `encoder`, connected once; Failed saying why not."""
        from streaming.push import Push

        config = self._config()
        assert encoder.codecs is not None
        push = Push(
            target, config.targets[target], encoder.codecs, request_keyframe=encoder.request_keyframe,
            connect_s=config.connect_s, stall_s=config.stall_s,
        )  # fmt: skip
        encoder.attach(push)
        push.start()
        if await in_thread(lambda: push.wait_first(config.connect_s + 5.0)):
            return push
        encoder.detach(push)
        await in_thread(push.stop)
        why = push.error or f"no connection within {config.connect_s:g} s"
        raise Failed(f"cannot broadcast to {target} ({push.target.redacted}): {why}")

    def _roles(self, config: BroadcastConfig, sources: tuple[str, ...]) -> tuple[str, ...]:
        if not sources:
            return config.sources
        for name in sources:
            if not recordable(self.sources, name):
                raise Rejected(f"sources: got {name!r}, expected one of {', '.join(self.sources)}")
        return sources

    def _config(self) -> BroadcastConfig:
        if self.config is None:
            raise Rejected("broadcasting is not configured: add [broadcast] with its targets to the site config")
        return self.config

    async def _stop(self) -> dict[str, Any]:
        async with self._lock:
            active = self._active
            if active is None:
                raise Rejected("not broadcasting")
            stats = await self._end(active)
            return {
                "target": active.target, "seconds": round(time.monotonic() - active.since, 1),
                "gaps": stats["gaps"], "down_s": stats["down_s"], "bytes_sent": stats["bytes_sent"],
            }  # fmt: skip

    async def _end(self, active: _Active) -> dict[str, Any]:
        """Stop the push (its trailer goes out), let go of the programme, clear the alarms."""
        self._active = None
        active.encoder.detach(active.push)
        await in_thread(active.push.stop)
        await in_thread(lambda: self.programmes.release(active.encoder, USER))
        self.alarms.clear(INTERRUPTED, active.target, f"live broadcast to {active.target} ended")
        log.info("broadcast to %s ended", active.target)
        return active.push.stats()

    async def _watch(self) -> None:
        """The push's state as alarms; a push that ended by itself (the programme failed) ends the broadcast."""
        active = self._active
        if active is None or self._lock.locked():
            return
        stats = active.push.stats()
        target = active.target
        if not active.push.running:
            async with self._lock:
                if self._active is active:
                    await self._end(active)
            why = f"live broadcast to {target} ended by itself: {stats['last_error']}"
            self.alarms.raise_(FAILED, "critical", why, target)
            return
        if stats["state"] == "live":
            gap = stats.get("last_gap")
            seconds = gap.get("seconds", 0) if isinstance(gap, Mapping) else 0
            self.alarms.clear(INTERRUPTED, target, f"live broadcast to {target} resumed after {seconds} s")
        elif stats["state"] == "retrying":
            message = f"live broadcast to {target} ({stats['url']}) interrupted: {stats['last_error']}; retrying"
            self.alarms.raise_(INTERRUPTED, "warning", message, target)
