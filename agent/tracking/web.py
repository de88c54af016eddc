"""The tracking cameras' pictures on the local API: ``GET /page/tracking/{camera}.jpg``.

The classroom page shows each tracking camera's analysed picture with its zones and target
drawn, a few times a second, so a teacher sees what it follows and a technician sees where the
zones fall.  The page's gate (PIN for other devices) covers it like every page route.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiohttp import web

from agent.tracking.service import TrackingService
from agent.web.api import WebPart


def tracking_web_part(services: Mapping[str, TrackingService]) -> WebPart:
    """The snapshot route over the tracking services (by camera id)."""

    async def snapshot(request: web.Request) -> web.Response:
        service = services.get(request.match_info["camera"])
        if service is None:
            raise web.HTTPNotFound(text="no tracking camera by that name")
        data = await asyncio.to_thread(service.snapshot)
        if data is None:
            raise web.HTTPServiceUnavailable(text="no picture yet", headers={"Retry-After": "1"})
        return web.Response(body=data, content_type="image/jpeg", headers={"Cache-Control": "no-store"})

    def add_routes(app: web.Application) -> None:
        app.router.add_get("/page/tracking/{camera}.jpg", snapshot)

    return add_routes
