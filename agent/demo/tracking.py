"""The demo's auto-tracking: room-102's teacher camera follows the rendered teacher walking the podium.

Its "teacher" picture becomes a virtual PTZ camera over the synthetic podium scene, driven by the
room's simulated VISCA camera, and a ``[[tracking]]`` table makes that camera follow; the room's
classroom page shows the switch and what the camera follows, and the live lesson sends its picture.
"""

from __future__ import annotations

from typing import Any

TRACKING_ROOM = "room-102"


def with_tracking(agent_id: str, config: dict[str, Any]) -> dict[str, Any]:
    """`config` with auto-tracking added when it is the tracking room's (unchanged otherwise)."""
    if agent_id != TRACKING_ROOM:
        return config
    sources = {**config.get("sources", {}), "teacher": "ptz:camera?scene=podium"}
    tracking = {
        "camera": "camera",
        "role": "teacher",
        "source": "teacher",
        "home_preset": 1,
        "manual_pause_s": 10,  # the demo's technician turns the camera by hand once: back to tracking soon
        "zones": {"podium": [0.0, 0.2, 0.82, 1.0], "blackboard": [0.12, 0.2, 0.66, 1.0], "door": [0.82, 0.2, 1.0, 1.0]},
    }
    return {**config, "sources": sources, "tracking": [tracking]}


def tracking_line(agent_id: str, page: str) -> str:
    """What the demo prints about it."""
    return f"  {agent_id}'s teacher camera follows the walking teacher by itself (auto-tracking): {page}"
