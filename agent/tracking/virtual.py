"""Virtual cameras as room sources: ``scene:NAME`` (a fixed wide picture) and ``ptz:CAMERA?scene=NAME``.

A ``ptz:`` source shows what the simulated camera CAMERA (a ``[[devices]]`` camera at address
``sim``) sees of the scene, so the room's own camera commands, and tracking's, move its picture.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from drivers.errors import ArgumentError

if TYPE_CHECKING:
    from streaming.source import Source


def simulators(devices: Mapping[str, Any]) -> Callable[[str], Any]:
    """The lookup a ``ptz:`` source uses: a device id's simulator (None when the device is real or unknown)."""
    return lambda device_id: getattr(devices.get(device_id), "simulator", None)


def virtual_ptz(url: str) -> tuple[str, str] | None:
    """(camera device id, scene name) of a ``ptz:CAMERA?scene=NAME`` URL (None when it is not one)."""
    scheme, _, rest = url.partition(":")
    camera, _, scene = rest.partition("?scene=")
    if scheme != "ptz" or not camera or not scene or any(c in camera for c in "/+#?"):
        return None
    return camera, scene


def virtual_source(url: str, name: str, size: tuple[int, int], fps: float, simulator: Callable[[str], Any]) -> Source:
    """The source of a ``scene:`` or ``ptz:`` URL; ArgumentError when the scene or the camera is wrong."""
    from streaming.tracking.optics import PtzOptics, field_ranges
    from streaming.virtual_ptz import VirtualCamera, scene_named

    scheme, _, rest = url.partition(":")
    aimed = virtual_ptz(url) if scheme == "ptz" else None
    scene_name = aimed[1] if aimed is not None else rest
    try:
        scene = scene_named(scene_name)
    except ValueError as exc:
        raise ArgumentError(f"source {name}: {exc}") from exc
    if aimed is None:
        return VirtualCamera(name, scene, size=size, fps=fps)
    sim = simulator(aimed[0])
    if sim is None:
        raise ArgumentError(f'source {name}: {aimed[0]!r} is not a simulated camera (address = "sim")')
    optics = PtzOptics.for_profile(field_ranges(sim.profile))
    return VirtualCamera(name, scene, size=size, fps=fps, position=sim.position, optics=optics)
