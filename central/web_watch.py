"""巡课 on the dashboard: WHEP relayed to a classroom's agent over the command channel.

The agent's local API listens on loopback behind the school's NAT, so the browser cannot reach
its WHEP endpoint.  The dashboard speaks WHEP to the browser instead and relays the signalling
as commands (authenticated, ACL'd, and in the command audit log under the user's name):

- ``POST /whep/{agent_id}/{source}`` (``application/sdp``): ``media.watch`` -> ``201`` with the
  answer and ``Location: /whep/{agent_id}/{source}/{session}``
- ``DELETE /whep/{agent_id}/{source}/{session}``: ``media.unwatch``

Any logged-in user may watch (watching is not commanding).  Media then flows browser <-> agent
directly by ICE (the school's LAN, or the agent's TURN server).  Errors carry the reason in
plain text: 404/400 with the agent's own refusal, 504 when the agent is offline or silent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from aiohttp import web

from central.errors import CentralError
from central.web_auth import USER_KEY
from contract.errors import BrokerError

log = logging.getLogger(__name__)

MAX_SDP_BYTES = 64 * 1024
# The agent answers after its ICE gathering (bounded at 20 s there); a later reply is useless.
WATCH_TIMEOUT_S = 25.0
UNWATCH_TIMEOUT_S = 10.0


class WatchFleet(Protocol):
    """What the relay reads from the fleet database (`central.fleetdb.FleetDB`)."""

    def agent(self, agent_id: str) -> Any:
        """One agent, None when unknown."""


class WatchSender(Protocol):
    """Sends a command and waits for its reply (`central.sender.CommandSender`)."""

    async def send(
        self, agent_id: str, name: str, args: dict[str, Any], by: str, *, timeout: float = 10.0, ttl: float = 60.0
    ) -> dict[str, Any]:
        """The outcome: ``{"id", "status", "result" | "error"}``."""


def refusal(agent_id: str, outcome: Mapping[str, Any]) -> tuple[int, str] | None:
    """The HTTP status and reason for an outcome that is not a success (None for a success)."""
    status, error = outcome.get("status"), str(outcome.get("error") or "")
    if status == "succeeded":
        return None
    if status == "rejected":
        if error.startswith("unknown command"):
            return 404, f"{agent_id} cannot stream live: no [lesson] in its config, or an agent too old for 巡课"
        return (404 if error.startswith(("source:", "session:", "unknown agent")) else 400), error
    if status in ("timeout", "expired"):
        return 504, error or f"{agent_id} did not answer in time"
    return 503, error or f"{agent_id}: {status}"


def _fail(status: int, reason: str) -> web.Response:
    return web.Response(status=status, text=reason + "\n", headers={"Cache-Control": "no-store"})


def _offline(agent: Mapping[str, Any]) -> str:
    """Why an agent cannot answer now ("" when it is online)."""
    if agent.get("state") == "online":
        return ""
    since = f" since {agent['since']}" if agent.get("since") else ""
    return f"{agent['agent_id']} is {agent.get('state') or 'not connected'}{since}: it cannot answer"


async def _read_offer(request: web.Request) -> str | web.Response:
    """The SDP offer of the body, or the response that says what was wrong with it."""
    kind = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if kind != "application/sdp":
        return _fail(415, f"expected Content-Type application/sdp, got {kind or 'none'!r}")
    body = await request.content.read(MAX_SDP_BYTES + 1)
    if len(body) > MAX_SDP_BYTES:
        return _fail(413, f"offer is over {MAX_SDP_BYTES} bytes (an SDP offer is a few KB)")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return _fail(400, "offer is not UTF-8 text")


def add_watch_routes(app: web.Application, db: WatchFleet, sender: WatchSender) -> None:
    """Add the 巡课 WHEP relay to the dashboard `app` (its login middleware guards them)."""

    async def watch(request: web.Request) -> web.Response:
        agent_id, source = request.match_info["agent_id"], request.match_info["source"]
        agent = db.agent(agent_id)
        if agent is None:
            return _fail(404, f"no agent {agent_id!r}")
        offer = await _read_offer(request)
        if isinstance(offer, web.Response):
            return offer
        if why := _offline(agent):
            return _fail(504, why)
        args = {"source": source, "offer": offer}
        outcome = await _send(sender, agent_id, "media.watch", args, request[USER_KEY], WATCH_TIMEOUT_S)
        if (refused := refusal(agent_id, outcome)) is not None:
            log.info("watch %s/%s by %s refused: %s", agent_id, source, request[USER_KEY], refused[1])
            return _fail(*refused)
        result = outcome.get("result")
        if not isinstance(result, dict) or not isinstance(result.get("session"), str) or not result.get("answer"):
            return _fail(502, f"{agent_id} answered media.watch without a session and an answer: {result!r}"[:300])
        session, answer = result["session"], str(result["answer"])
        location = f"{request.raw_path.split('?')[0].rstrip('/')}/{session}"
        headers = {"Location": location, "ETag": f'"{session}"', "Cache-Control": "no-store"}
        return web.Response(status=201, text=answer, content_type="application/sdp", headers=headers)

    async def unwatch(request: web.Request) -> web.Response:
        agent_id, session = request.match_info["agent_id"], request.match_info["session"]
        agent = db.agent(agent_id)
        if agent is None:
            return _fail(404, f"no agent {agent_id!r}")
        if why := _offline(agent):
            return _fail(504, why)
        args = {"session": session}
        outcome = await _send(sender, agent_id, "media.unwatch", args, request[USER_KEY], UNWATCH_TIMEOUT_S)
        if (refused := refusal(agent_id, outcome)) is not None:
            return _fail(*refused)
        return web.Response(status=200, headers={"Cache-Control": "no-store"})

    async def no_trickle(request: web.Request) -> web.Response:
        return web.Response(status=405, text="trickle ICE is not supported\n", headers={"Allow": "DELETE"})

    app.router.add_post("/whep/{agent_id}/{source}", watch)
    app.router.add_delete("/whep/{agent_id}/{source}/{session}", unwatch)
    app.router.add_patch("/whep/{agent_id}/{source}/{session}", no_trickle)


async def _send(
    sender: WatchSender, agent_id: str, name: str, args: dict[str, Any], by: str, timeout: float
) -> dict[str, Any]:
    """The agent's reply; a broker that is down is an outcome too (``timeout``: nobody could answer)."""
    try:
        # A watch that arrives after the browser gave up would open a session nobody plays.
        return await sender.send(agent_id, name, args, by, timeout=timeout, ttl=timeout)
    except (CentralError, BrokerError) as exc:
        log.warning("%s to %s by %s not sent: %s", name, agent_id, by, exc)
        return {"status": "timeout", "error": f"not sent: {exc}"}
    except ValueError as exc:  # the agent vanished from fleet.db meanwhile
        return {"status": "rejected", "error": str(exc)}
