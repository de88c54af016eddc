"""A recording's picture: which configured sources a layout shows, and the director of the ``directed`` one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.config.site import RecordingConfig

if TYPE_CHECKING:
    from streaming.director import Director


def layout_sources(config: RecordingConfig, layout_name: str) -> tuple[str, ...]:
    """The configured sources in role order, as many as the layout takes."""
    from streaming.compose import LAYOUTS

    most = LAYOUTS.get(layout_name, (0, len(config.sources)))[1]
    return config.sources[:most]


def director_for(config: RecordingConfig | None) -> Director | None:
    """The director the ``directed`` layout follows (its override outlives a single recording)."""
    if config is None or config.director is None:
        return None
    from streaming.director import Director, Rule

    rules = [Rule(when, show) for when, show in config.director.rules]
    return Director(rules, config.director.hold_s, dict(config.director.thresholds))
