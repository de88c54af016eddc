"""A lesson.start that arrives while the agent is stopping fails cleanly instead of crashing the command."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from agent.alarms import Alarms
from agent.commands.table import Failed
from agent.config.lesson import LessonConfig
from agent.lesson.media import LessonMedia
from agent.lesson.service import LessonService
from contract.rtc import RtcMessage
from streaming.synthetic import SyntheticSource


async def test_lesson_start_while_the_service_winds_down_is_a_clear_failure() -> None:
    async def send(to: str, message: RtcMessage) -> None:
        return None

    config = LessonConfig(send=("teacher",), remotes=("room-a",))
    teacher = SyntheticSource("teacher", (320, 180), 5)
    service = LessonService(
        config, agent_id="room-main", site="school", room="教室",
        media=lambda: LessonMedia(config, {"teacher": teacher}, {"teacher": "synthetic"}), send=send,
        alarms=Alarms(lambda event: None),
    )  # fmt: skip
    running = asyncio.create_task(service.run(), name="test.lesson")
    await asyncio.sleep(0.05)  # its task group is up
    running.cancel()  # the agent stops ...
    await asyncio.sleep(0)  # ... and the service's task group is winding down its tasks
    try:
        with pytest.raises(Failed, match="not running"):
            await service.start("zhuandi", (), ())  # ... as a technician's lesson.start comes in
        assert service.lesson is None
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await running
