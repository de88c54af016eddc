"""Recordings uploaded by agents: resumable, checksummed, never duplicated, kept in a recordings store.

The protocol (JSON answers; every request carries ``Authorization: Bearer TOKEN``, the agent's own
upload token, not a dashboard login):

- ``POST /api/uploads`` ``{agent_id, recording_id, lesson, size, sha256, started?, fresh?}`` ->
  ``{upload_id, offset, size, state, error}``.  The same agent and recording id always get the
  same upload back, with the offset the centre has confirmed, so a restarted agent resumes there.
  ``fresh: true`` (the agent starts this recording's upload over: a technician's ``upload.retry``)
  discards whatever was received of an unfinished upload and takes the announced size and
  checksum: offset 0, state ``uploading``, resets counted from 0 again.  A complete upload is kept.
- ``PUT /api/uploads/{upload_id}?offset=N`` with a chunk (at most 8 MiB) and ``X-Chunk-SHA256`` ->
  the new offset.  ``N`` must be the confirmed offset (409 with the confirmed one otherwise) and
  the chunk must match its checksum (400).  The chunk is appended and fsynced before the offset
  is confirmed.  The last chunk completes the upload: the whole file's SHA-256 is checked, the
  file moves into the recordings store and a row goes into fleet.db's ``recordings``; state
  ``complete``, or ``failed`` (file kept aside in ``.failed/``) when the checksum does not match.
- ``GET /api/uploads/{upload_id}`` -> the same shape as the POST.
- ``POST /api/uploads/{upload_id}/reset`` on a ``failed`` upload: the centre discards what it
  received (the partial and the copy kept aside), the offset goes back to 0, the state to
  ``uploading`` and ``resets`` counts up; the agent decides how many resets it asks for.
- ``GET /recordings/{id}`` (dashboard login): the received MP4, with HTTP ranges for the player.

Agents are registered once with `Uploads.register_agent` (or ``classroom-central upload-token``);
an unregistered agent or a wrong token is refused with 403 and says so.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from central.upload_store import Upload, UploadRefused, UploadRequest, Uploads
from websession import BodyError, read_json_object

MAX_CHUNK = 8 * 2**20
READ_CHUNK_S = 120.0
UPLOADS_KEY = web.AppKey("uploads", Uploads)
AGENT_PATH = "/api/uploads"


def is_agent_path(path: str) -> bool:
    """The agents' routes: token-authenticated, not behind the dashboard login."""
    return path == AGENT_PATH or path.startswith(AGENT_PATH + "/")


def add_routes(app: web.Application, uploads: Uploads) -> None:
    """The agents' upload routes and the dashboard's ``GET /recordings/{id}``."""
    app[UPLOADS_KEY] = uploads
    app.router.add_post(AGENT_PATH, _begin)
    app.router.add_put(AGENT_PATH + "/{upload_id}", _put)
    app.router.add_get(AGENT_PATH + "/{upload_id}", _get)
    app.router.add_post(AGENT_PATH + "/{upload_id}/reset", _reset)
    app.router.add_get("/recordings/{id:\\d+}", _play)


def _refused(exc: UploadRefused) -> web.Response:
    # the refusal's message wins over the upload's own (often empty) ``error`` in `extra`
    return web.json_response({**exc.extra, "error": str(exc)}, status=exc.status)


def _token(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    if not (token.isascii() and token.isprintable()):  # ours are URL-safe base64; undecodable bytes arrive escaped
        raise UploadRefused(403, "Authorization: the bearer token must be printable ASCII (the agent's [upload] token)")
    return token


def _owned(request: web.Request) -> Upload:
    uploads = request.app[UPLOADS_KEY]
    upload = uploads.get(request.match_info["upload_id"])
    if upload is None:
        raise UploadRefused(404, f"no upload {request.match_info['upload_id']!r}: POST /api/uploads again")
    uploads.authenticate(upload.agent_id, _token(request))
    return upload


async def _begin(request: web.Request) -> web.Response:
    try:
        try:
            body = await read_json_object(request)
        except BodyError as exc:
            raise UploadRefused(exc.status, str(exc)) from None
        announced = UploadRequest.from_dict(body)
        request.app[UPLOADS_KEY].authenticate(announced.agent_id, _token(request))
        upload = await request.app[UPLOADS_KEY].begin(announced)
    except UploadRefused as exc:
        return _refused(exc)
    return web.json_response(upload.to_dict())


async def _put(request: web.Request) -> web.Response:
    try:
        upload = _owned(request)
        try:
            offset = int(request.query["offset"])
        except (KeyError, ValueError):
            raise UploadRefused(400, "?offset=N: expected the byte offset of the chunk") from None
        length = request.content_length
        if length is None:
            raise UploadRefused(411, "Content-Length: required")
        if length > MAX_CHUNK:
            raise UploadRefused(413, f"chunk of {length} bytes: at most {MAX_CHUNK}")
        async with asyncio.timeout(READ_CHUNK_S):
            chunk = await request.content.readexactly(length)
        upload = await request.app[UPLOADS_KEY].append(upload, offset, chunk, request.headers.get("X-Chunk-SHA256", ""))
    except UploadRefused as exc:
        return _refused(exc)
    return web.json_response(upload.to_dict())


async def _reset(request: web.Request) -> web.Response:
    try:
        upload = await request.app[UPLOADS_KEY].reset(_owned(request))
    except UploadRefused as exc:
        return _refused(exc)
    return web.json_response(upload.to_dict())


async def _get(request: web.Request) -> web.Response:
    try:
        return web.json_response(_owned(request).to_dict())
    except UploadRefused as exc:
        return _refused(exc)


async def _play(request: web.Request) -> web.StreamResponse:
    path = request.app[UPLOADS_KEY].recording_path(int(request.match_info["id"]))
    if path is None:
        return web.json_response({"error": "no such recording"}, status=404)
    return web.FileResponse(path, headers={"Content-Type": "video/mp4"})
