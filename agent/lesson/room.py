"""One classroom as both sides of a lesson see it: who it is, its config, its media and its signalling.

The leading lesson (`agent.lesson.leading`) and the joined lesson (`agent.lesson.joined`) each
hold the service's one `Room` instead of inheriting from a common base: it loads the media stack
on first use, sends signalling replies within a deadline and audits refusals without flooding.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from agent.alarms import Alarms
from agent.config.lesson import LessonConfig
from agent.lesson.health import RefusalLog, WatchRules
from agent.lesson.media import LessonMedia
from agent.lesson.peer import Send
from contract import now_iso
from contract.errors import BrokerError
from contract.rtc import RtcMessage

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 5.0
REFUSAL_AUDIT_S = 600.0  # one audit event per refused agent per this long (a leader re-offers every few seconds)


class Room:
    """The pieces of one classroom every part of its lessons shares."""

    def __init__(
        self,
        config: LessonConfig,
        *,
        agent_id: str,
        site: str,
        room: str,
        media: Callable[[], LessonMedia],
        send: Send,
        alarms: Alarms,
    ) -> None:
        """`media` builds the media stack on first use; `send` delivers signalling to an agent."""
        self.config = config
        self.agent_id = agent_id
        self.site = site
        self.room = room
        self._make_media = media
        self._media: LessonMedia | None = None
        self.send = send
        self.alarms = alarms
        self.rules = WatchRules(
            config.keyframe_after_s,
            config.renegotiate_after_s,
            config.loss_alarm,
            config.rtt_alarm_ms,
            config.degraded_after_s,
        )
        self.refusals = RefusalLog(REFUSAL_AUDIT_S)

    @property
    def media(self) -> LessonMedia:
        """The media stack (loaded on first use)."""
        if self._media is None:
            self._media = self._make_media()
        return self._media

    @property
    def loaded(self) -> LessonMedia | None:
        """The media stack if it was ever loaded (presence and status must not load it)."""
        return self._media

    async def reply(self, agent: str, message: RtcMessage) -> None:
        """Send `message` to `agent` within SEND_TIMEOUT_S; a failure is logged, never raised."""
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await self.send(agent, message)
        except BrokerError as exc:
            log.warning("%s", exc)
        except TimeoutError:
            log.warning("cannot send %s to %s: no acknowledgement within %g s", message.type, agent, SEND_TIMEOUT_S)

    async def reject(self, agent: str, message: RtcMessage, reason: str) -> None:
        """Refuse `message` from `agent`, saying why (with its lesson and seq, so it reaches the right offer)."""
        log.warning("rejected %s from %s: %s", message.type, agent, reason)
        await self.reply(agent, RtcMessage("reject", message.lesson, now_iso(), reason=reason, seq=message.seq))

    def audit_refusal(self, kind: str, site: str, agent: str, reason: str) -> None:
        """Audit a refusal once per agent per REFUSAL_AUDIT_S, counting those in between (they re-offer)."""
        count = self.refusals.note(f"{kind} {site}/{agent}", time.monotonic())
        if count:
            again = f" ({count} times since the last report)" if count > 1 else ""
            self.alarms.log(kind, f"{reason}{again}", peer=agent, site=site, reason=reason, count=count)
