"""The lesson's part of the local API: the incoming pictures as video and PNG snapshots, and WHEP/WHIP.

``GET /api/lesson/pictures`` lists the pictures coming in (``<agent>/<source>``) with their
frame counts and a ``stream`` token that changes when a picture arrives anew (a renegotiated
link); ``GET /api/lesson/pictures/<agent>/<source>.png`` is the newest one, lossless, so a
technician (or a test) sees exactly what arrived.  ``GET /api/lesson/sounds`` gives each
incoming sound's frames and level (0 = silence: that classroom is muted or its microphone is
dead).  ``POST /whep/<agent>%2F<source>`` plays a received picture as video: one encoder per
picture, made for its first viewer and closed, with its viewers' sessions, once the picture is
gone.  The media stack loads on the first request.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from agent.lesson.media import LessonMedia
from agent.lesson.service import LessonService
from agent.web.api import WebPart

if TYPE_CHECKING:
    from streaming.whep import WhepService

log = logging.getLogger(__name__)

RETIRE_EVERY_S = 1.0


def lesson_web_part(lesson: LessonService, *, allowed_origins: Iterable[str] = ()) -> WebPart:
    """Routes for the lesson on the agent's local API; `allowed_origins` may use WHEP/WHIP from their pages."""

    async def pictures(request: web.Request) -> web.Response:
        out = {
            name: {"frames": int(getattr(video, "frames", 0)), "stream": f"{id(video):x}"}
            for name, video in lesson.pictures().items()
        }
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

    async def sounds(request: web.Request) -> web.Response:
        out = {name: {"frames": a.frames, "level": round(a.level, 4)} for name, a in _sounds(lesson).items()}
        return _json({"sounds": out})

    def add(app: web.Application) -> None:
        app.router.add_get("/api/lesson/sounds", sounds)
        app.router.add_get("/api/lesson/pictures", pictures)
        app.router.add_get("/api/lesson/pictures/{agent}/{source}.png", picture)
        _add_whep(app, lesson, tuple(allowed_origins))

    return add


def _sounds(lesson: LessonService) -> dict[str, Any]:
    """Incoming sounds as ``<agent>/<track>`` -> `streaming.remote.RemoteAudio` (like `LessonService.pictures`)."""
    return {
        f"{s.agent}/{name}": audio
        for s in lesson.sessions()
        for name, audio in getattr(s.peer, "incoming_audio", {}).items()
    }


def _png(image: Any) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise web.HTTPInternalServerError(text="cannot encode the picture")
    return bytes(data)


def _add_whep(app: web.Application, lesson: LessonService, allowed_origins: tuple[str, ...]) -> None:
    """Mount WHEP (``/whep/<source>``, ``/watch/<source>``) and WHIP (``/whip/<name>``) on the room's encoders."""
    from streaming.whep import WhepService

    media = lesson.media

    def video(name: str) -> Any:
        """A local source's encoder, else a received picture's (sent on as it arrived)."""
        local = media.video_or_none(name)
        if local is not None:
            return local
        picture = lesson.pictures().get(name)
        return None if picture is None else media.picture_encoder(name, picture)

    service = WhepService(
        video,
        media.ice(),
        audio=media.audio_or_none,
        on_ingest=lesson.ingest,
        on_ingest_end=lesson.ingest_end,
        allowed_origins=allowed_origins,
    )
    service.attach(app)

    async def retiring(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_retire_pictures(lesson, media, service), name="lesson_web.retire-pictures")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    app.cleanup_ctx.append(retiring)


async def _retire_pictures(lesson: LessonService, media: LessonMedia, service: WhepService) -> None:
    """Close the encoders (and end the viewers) of received pictures that are gone: the peer or the lesson ended."""
    while True:
        await asyncio.sleep(RETIRE_EVERY_S)
        gone, closing = media.retire(lesson.pictures())
        for name in gone:
            ended = await service.end_watchers(name)
            log.info("received picture %r is gone: its encoder closed, %d viewer(s) ended", name, ended)
        for encoder in closing:
            await asyncio.to_thread(encoder.close)


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False, allow_nan=False), status=status, content_type="application/json"
    )
