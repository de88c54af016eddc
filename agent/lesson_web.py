"""The lesson's part of the local API: the incoming pictures as PNG snapshots, and WHEP/WHIP.

``GET /api/lesson/pictures`` lists the pictures coming in (``<agent>/<source>``) with their
frame counts; ``GET /api/lesson/pictures/<agent>/<source>.png`` is the newest one, lossless, so
a technician (or a test) sees exactly what arrived.  The media stack loads on the first request.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from agent.http_api import WebPart
from agent.lesson import LessonService

log = logging.getLogger(__name__)


def lesson_web_part(lesson: LessonService) -> WebPart:
    """Routes for the lesson on the agent's local API."""

    async def pictures(request: web.Request) -> web.Response:
        out = {name: {"frames": int(getattr(video, "frames", 0))} for name, video in lesson.pictures().items()}
        return _json({"pictures": out})

    async def picture(request: web.Request) -> web.Response:
        name = f"{request.match_info['agent']}/{request.match_info['source']}"
        video = lesson.pictures().get(name)
        frame = video.latest() if video is not None else None
        if frame is None:
            known = ", ".join(sorted(lesson.pictures())) or "none"
            return _json({"error": f"no picture {name!r} has arrived (incoming: {known})"}, 404)
        body = await asyncio.to_thread(_png, frame.image)
        return web.Response(body=body, content_type="image/png", headers={"X-Frame-Index": str(frame.index)})

    def add(app: web.Application) -> None:
        app.router.add_get("/api/lesson/pictures", pictures)
        app.router.add_get("/api/lesson/pictures/{agent}/{source}.png", picture)
        _add_whep(app, lesson)

    return add


def _png(image: Any) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise web.HTTPInternalServerError(text="cannot encode the picture")
    return bytes(data)


def _add_whep(app: web.Application, lesson: LessonService) -> None:
    """Mount WHEP (``/whep/<source>``, ``/watch/<source>``) and WHIP (``/whip/<name>``) on the room's encoders."""
    from streaming.whep import WhepService

    media = lesson.media
    service = WhepService(
        media.video_or_none,
        media.ice(),
        audio=media.audio_or_none,
        on_ingest=lesson.ingest,
        on_ingest_end=lesson.ingest_end,
    )
    service.attach(app)


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, ensure_ascii=False), status=status, content_type="application/json")
