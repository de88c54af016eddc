"""The PTZ service (ver20/ptz/wsdl): node, configuration, moves, presets, home, status.

Faults are the PTZ Service Specification's per operation: ter:NoProfile, ter:SpaceNotSupported
(a move in a space the node lacks: every absolute and relative move on a camera built with
absolute_moves=False), ter:InvalidPosition / InvalidTranslation / InvalidVelocity /
InvalidSpeed / TimeoutNotSupported for values out of bounds, ter:NoToken for presets.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from drivers.sim.onvif import args
from drivers.sim.onvif.args import Vector
from drivers.sim.onvif.camera import DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S, Context, OnvifCamera, Operation
from drivers.sim.onvif.ptz import PAN_TILT_RANGE, ZOOM_RANGE, Position
from drivers.sim.onvif.soap import TPTZ, TT, element, receiver, sender

_PT = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/"
_Z = "http://www.onvif.org/ver10/tptz/ZoomSpaces/"
PT_POSITION, Z_POSITION = _PT + "PositionGenericSpace", _Z + "PositionGenericSpace"
PT_TRANSLATION, Z_TRANSLATION = _PT + "TranslationGenericSpace", _Z + "TranslationGenericSpace"
PT_VELOCITY, Z_VELOCITY = _PT + "VelocityGenericSpace", _Z + "VelocityGenericSpace"
PT_SPEED, Z_SPEED = _PT + "GenericSpeedSpace", _Z + "ZoomGenericSpeedSpace"
NODE_TOKEN, CONFIG_TOKEN = "node0", "ptzconf0"
UNIT, SIGNED = (0.0, 1.0), (-1.0, 1.0)


def _tt(name: str, text: object = None, attrs: dict[str, object] | None = None, *kids: ET.Element) -> ET.Element:
    return element(f"{{{TT}}}{name}", text, attrs, *kids)


def _tptz(name: str, text: object = None, attrs: dict[str, object] | None = None, *kids: ET.Element) -> ET.Element:
    return element(f"{{{TPTZ}}}{name}", text, attrs, *kids)


def _range(name: str, low: float, high: float) -> ET.Element:
    return _tt(name, None, None, _tt("Min", low), _tt("Max", high))


def _space(name: str, uri: str, x: tuple[float, float], y: tuple[float, float] | None = None) -> ET.Element:
    node = _tt(name, None, None, _tt("URI", uri), _range("XRange", *x))
    if y is not None:
        node.append(_range("YRange", *y))
    return node


def spaces(camera: OnvifCamera, tag: str = f"{{{TT}}}SupportedPTZSpaces") -> ET.Element:
    """The node's spaces in the schema's order; absolute and relative ones only when it has them."""
    out = element(tag)
    if camera.absolute_moves:
        out.append(_space("AbsolutePanTiltPositionSpace", PT_POSITION, PAN_TILT_RANGE, PAN_TILT_RANGE))
        out.append(_space("AbsoluteZoomPositionSpace", Z_POSITION, ZOOM_RANGE))
        out.append(_space("RelativePanTiltTranslationSpace", PT_TRANSLATION, SIGNED, SIGNED))
        out.append(_space("RelativeZoomTranslationSpace", Z_TRANSLATION, SIGNED))
    out.append(_space("ContinuousPanTiltVelocitySpace", PT_VELOCITY, SIGNED, SIGNED))
    out.append(_space("ContinuousZoomVelocitySpace", Z_VELOCITY, SIGNED))
    out.append(_space("PanTiltSpeedSpace", PT_SPEED, UNIT))
    out.append(_space("ZoomSpeedSpace", Z_SPEED, UNIT))
    return out


def node(camera: OnvifCamera, tag: str) -> ET.Element:
    """The one PTZ node: its spaces, preset slots and a home position that can be set."""
    return element(
        tag,
        None,
        {"token": NODE_TOKEN, "FixedHomePosition": False},
        _tt("Name", "PTZ"),
        spaces(camera),
        _tt("MaximumNumberOfPresets", camera.head.max_presets),
        _tt("HomeSupported", True),
    )


def configuration(camera: OnvifCamera, tag: str) -> ET.Element:
    """The PTZ configuration every profile carries (a tt:PTZConfiguration under `tag`)."""
    parts = [_tt("Name", "PTZ"), _tt("UseCount", 2), _tt("NodeToken", NODE_TOKEN)]
    if camera.absolute_moves:
        # "Pant" is the schema's own spelling of this element's name.
        parts += [
            _tt("DefaultAbsolutePantTiltPositionSpace", PT_POSITION),
            _tt("DefaultAbsoluteZoomPositionSpace", Z_POSITION),
        ]
        parts += [_tt("DefaultRelativePanTiltTranslationSpace", PT_TRANSLATION)]
        parts += [_tt("DefaultRelativeZoomTranslationSpace", Z_TRANSLATION)]
    parts += [
        _tt("DefaultContinuousPanTiltVelocitySpace", PT_VELOCITY),
        _tt("DefaultContinuousZoomVelocitySpace", Z_VELOCITY),
    ]
    speed = _tt("DefaultPTZSpeed", None, None, _tt("PanTilt", None, {"x": 1.0, "y": 1.0, "space": PT_SPEED}))
    speed.append(_tt("Zoom", None, {"x": 1.0, "space": Z_SPEED}))
    parts += [speed, _tt("DefaultPTZTimeout", f"PT{DEFAULT_TIMEOUT_S:g}S")]
    if camera.absolute_moves:
        parts.append(_tt("PanTiltLimits", None, None, _space("Range", PT_POSITION, PAN_TILT_RANGE, PAN_TILT_RANGE)))
        parts.append(_tt("ZoomLimits", None, None, _space("Range", Z_POSITION, ZOOM_RANGE)))
    return element(tag, None, {"token": CONFIG_TOKEN}, *parts)


def vector(name: str, position: Position | None, camera: OnvifCamera) -> ET.Element | None:
    """A tt:PTZVector of a position in the default absolute spaces (None on a node without them)."""
    if position is None or not camera.absolute_moves:
        return None
    pan_tilt = _tt("PanTilt", None, {"x": position.pan, "y": position.tilt, "space": PT_POSITION})
    return _tt(name, None, None, pan_tilt, _tt("Zoom", None, {"x": position.zoom, "space": Z_POSITION}))


def _check(v: Vector | None, space: str, bounds: tuple[float, float], fault: str, supported: bool = True) -> None:
    """The space and bounds checks every move argument goes through."""
    if v is None:
        return
    if not supported or (v.space is not None and v.space != space):
        raise sender("InvalidArgVal", "SpaceNotSupported", reason=f"The space {v.space or space} is not supported")
    low, high = bounds
    if not all(low <= c <= high for c in (v.x, v.y) if c is not None):
        raise sender("InvalidArgVal", fault, reason=f"The requested value is out of bounds {low}..{high}")


def _speeds(op: ET.Element) -> tuple[float, float]:
    """The optional Speed argument as (pan/tilt, zoom) fractions of full speed."""
    pt, z = args.vectors(args.child(op, TPTZ, "Speed"), "InvalidSpeed")
    _check(pt, PT_SPEED, UNIT, "InvalidSpeed")
    if pt is not None and pt.y is not None:  # a 1-D speed space: the x value counts, y must fit too
        _check(Vector(pt.y, None, pt.space), PT_SPEED, UNIT, "InvalidSpeed")
    _check(z, Z_SPEED, UNIT, "InvalidSpeed")
    return (pt.x if pt else 1.0), (z.x if z else 1.0)


def _profile(camera: OnvifCamera, op: ET.Element) -> None:
    camera.profile(args.token(op, TPTZ, "ProfileToken"))


def _empty(name: str) -> ET.Element:
    return _tptz(name)


def continuous_move(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """Move at a velocity until Stop, a zero velocity or the Timeout (DefaultPTZTimeout if none)."""
    _profile(camera, op)
    velocity = args.child(op, TPTZ, "Velocity")
    if velocity is None:
        raise args.invalid_args("missing argument Velocity")
    pt, z = args.vectors(velocity, "InvalidVelocity")
    _check(pt, PT_VELOCITY, SIGNED, "InvalidVelocity")
    _check(z, Z_VELOCITY, SIGNED, "InvalidVelocity")
    timeout = args.text(op, TPTZ, "Timeout", required=False)
    duration = DEFAULT_TIMEOUT_S if timeout is None else args.duration_s(timeout, "Timeout")
    if not 0 < duration <= MAX_TIMEOUT_S:
        raise sender(
            "InvalidArgVal", "TimeoutNotSupported", reason=f"Timeout must be within PT0S..PT{MAX_TIMEOUT_S:g}S"
        )
    camera.head.continuous(None if pt is None else (pt.x, pt.y or 0.0), None if z is None else z.x, duration)
    return _empty("ContinuousMoveResponse")


def stop(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """Stop pan/tilt and zoom (each unless its flag says false)."""
    _profile(camera, op)
    camera.head.stop(args.boolean(op, TPTZ, "PanTilt", True), args.boolean(op, TPTZ, "Zoom", True))
    return _empty("StopResponse")


def absolute_move(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """Go to a position in the generic position spaces."""
    _profile(camera, op)
    position = args.child(op, TPTZ, "Position")
    if position is None:
        raise args.invalid_args("missing argument Position")
    pt, z = args.vectors(position, "InvalidPosition")
    _check(pt, PT_POSITION, PAN_TILT_RANGE, "InvalidPosition", camera.absolute_moves)
    _check(z, Z_POSITION, ZOOM_RANGE, "InvalidPosition", camera.absolute_moves)
    camera.head.move_to(None if pt is None else (pt.x, pt.y or 0.0), None if z is None else z.x, *_speeds(op))
    return _empty("AbsoluteMoveResponse")


def relative_move(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """Move by a translation; a target past a limit stops at the limit."""
    _profile(camera, op)
    translation = args.child(op, TPTZ, "Translation")
    if translation is None:
        raise args.invalid_args("missing argument Translation")
    pt, z = args.vectors(translation, "InvalidTranslation")
    _check(pt, PT_TRANSLATION, SIGNED, "InvalidTranslation", camera.absolute_moves)
    _check(z, Z_TRANSLATION, SIGNED, "InvalidTranslation", camera.absolute_moves)
    camera.head.move_by(None if pt is None else (pt.x, pt.y or 0.0), None if z is None else z.x, *_speeds(op))
    return _empty("RelativeMoveResponse")


def _preset_token(camera: OnvifCamera, op: ET.Element) -> str:
    found = args.token(op, TPTZ, "PresetToken")
    if found not in camera.head.presets:
        raise sender("InvalidArgVal", "NoToken", reason=f"The requested preset token {found!r} does not exist")
    return found


def set_preset(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """Store the current position in a preset slot: the one named, or the first free one."""
    _profile(camera, op)
    name = args.text(op, TPTZ, "PresetName", required=False, limit=1024) or None
    if name is not None and (len(name) > args.MAX_TOKEN or not name.isprintable()):
        raise sender(
            "InvalidArgVal", "InvalidPresetName", reason="The PresetName is too long or has invalid characters"
        )
    wanted = args.text(op, TPTZ, "PresetToken", required=False)
    if wanted is not None and not camera.head.is_slot(wanted):
        raise sender("InvalidArgVal", "NoToken", reason=f"The requested preset token {wanted!r} does not exist")
    slot = wanted or camera.head.slot_free()
    if slot is None:
        raise receiver("Action", "TooManyPresets", reason="Maximum number of Presets reached")
    if name is not None and any(p.name == name and p.token != slot for p in camera.head.presets.values()):
        raise sender("InvalidArgVal", "PresetExist", reason=f"The name {name!r} already exists for another preset")
    if camera.moving:
        raise receiver("Action", "MovingPTZ", reason="Preset cannot be set while PTZ unit is moving")
    camera.head.save_preset(slot, name)
    return _tptz("SetPresetResponse", None, None, _tptz("PresetToken", slot))


def get_presets(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """The stored presets, in token order."""
    _profile(camera, op)
    out = _tptz("GetPresetsResponse")
    for preset in sorted(camera.head.presets.values(), key=lambda p: int(p.token)):
        entry = _tptz("Preset", None, {"token": preset.token})
        if preset.name is not None:
            entry.append(_tt("Name", preset.name))
        position = vector("PTZPosition", preset.position, camera)
        if position is not None:
            entry.append(position)
        out.append(entry)
    return out


def goto_preset(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """Go to a stored preset."""
    _profile(camera, op)
    preset = camera.head.presets[_preset_token(camera, op)]
    camera.head.go(preset.position, *_speeds(op))
    return _empty("GotoPresetResponse")


def remove_preset(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """Forget a stored preset."""
    _profile(camera, op)
    del camera.head.presets[_preset_token(camera, op)]
    return _empty("RemovePresetResponse")


def goto_home_position(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """Go to the home position."""
    _profile(camera, op)
    camera.head.go(camera.head.home, *_speeds(op))
    return _empty("GotoHomePositionResponse")


def set_home_position(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """Make the current position the home position."""
    _profile(camera, op)
    camera.head.home = camera.head.position()
    return _empty("SetHomePositionResponse")


def get_status(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """Position (on a node with absolute spaces), move status per axis group, and the UTC time."""
    _profile(camera, op)
    status = _tptz("PTZStatus")
    position = vector("Position", camera.head.position(), camera)
    if position is not None:
        status.append(position)
    moving = {True: "MOVING", False: "IDLE"}
    status.append(
        _tt(
            "MoveStatus",
            None,
            None,
            _tt("PanTilt", moving[camera.head.pan_tilt_moving()]),
            _tt("Zoom", moving[camera.head.zoom_moving()]),
        )
    )
    status.append(_tt("UtcTime", camera.utc_now().strftime("%Y-%m-%dT%H:%M:%SZ")))
    return _tptz("GetStatusResponse", None, None, status)


def get_nodes(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """The one PTZ node."""
    return _tptz("GetNodesResponse", None, None, node(camera, f"{{{TPTZ}}}PTZNode"))


def get_node(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """The PTZ node by token (ter:NoEntity for another)."""
    if args.token(op, TPTZ, "NodeToken") != NODE_TOKEN:
        raise sender("InvalidArgVal", "NoEntity", reason="No such PTZ node on the device")
    return _tptz("GetNodeResponse", None, None, node(camera, f"{{{TPTZ}}}PTZNode"))


def get_configurations(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """The one PTZ configuration."""
    return _tptz("GetConfigurationsResponse", None, None, configuration(camera, f"{{{TPTZ}}}PTZConfiguration"))


def _config_token(op: ET.Element, name: str) -> None:
    if args.token(op, TPTZ, name) != CONFIG_TOKEN:
        raise sender("InvalidArgVal", "NoConfig", reason="The requested configuration does not exist")


def get_configuration(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """The PTZ configuration by token (ter:NoConfig for another)."""
    _config_token(op, "PTZConfigurationToken")
    return _tptz("GetConfigurationResponse", None, None, configuration(camera, f"{{{TPTZ}}}PTZConfiguration"))


def get_configuration_options(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """The spaces and the ContinuousMove timeout range the configuration accepts."""
    _config_token(op, "ConfigurationToken")
    timeout = _tt("PTZTimeout", None, None, _tt("Min", "PT0.1S"), _tt("Max", f"PT{MAX_TIMEOUT_S:g}S"))
    options = _tptz("PTZConfigurationOptions", None, None, spaces(camera, f"{{{TT}}}Spaces"), timeout)
    return _tptz("GetConfigurationOptionsResponse", None, None, options)


def capabilities(camera: OnvifCamera) -> ET.Element:
    """tptz:Capabilities: MoveStatus always, StatusPosition where the node has absolute positions."""
    attrs: dict[str, object] = {"EFlip": False, "Reverse": False, "GetCompatibleConfigurations": False}
    attrs |= {"MoveStatus": True, "StatusPosition": camera.absolute_moves}
    return _tptz("Capabilities", None, attrs)


def get_service_capabilities(camera: OnvifCamera, op: ET.Element, ctx: Context) -> ET.Element:
    """The PTZ service's capabilities."""
    return _tptz("GetServiceCapabilitiesResponse", None, None, capabilities(camera))


OPERATIONS = {
    "GetServiceCapabilities": Operation(get_service_capabilities),
    "GetNodes": Operation(get_nodes),
    "GetNode": Operation(get_node),
    "GetConfigurations": Operation(get_configurations),
    "GetConfiguration": Operation(get_configuration),
    "GetConfigurationOptions": Operation(get_configuration_options),
    "ContinuousMove": Operation(continuous_move),
    "Stop": Operation(stop),
    "AbsoluteMove": Operation(absolute_move),
    "RelativeMove": Operation(relative_move),
    "SetPreset": Operation(set_preset),
    "GetPresets": Operation(get_presets),
    "GotoPreset": Operation(goto_preset),
    "RemovePreset": Operation(remove_preset),
    "GotoHomePosition": Operation(goto_home_position),
    "SetHomePosition": Operation(set_home_position),
    "GetStatus": Operation(get_status),
}
