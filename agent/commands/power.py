"""The PC's own power in the one command table: ``power.wake``, ``agent.shutdown`` and ``agent.reboot``.

``power.wake`` sends a Wake-on-LAN magic packet for another PC of the LAN (a sleeping PC cannot
wake itself: the centre asks an agent that is awake).  ``agent.shutdown`` and ``agent.reboot`` run
the OS command of ``[power]``; they are refused while the room records or takes part in a live
lesson, unless ``force=true``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from agent.commands.table import Arg, CommandDef, CommandTable, Failed, Rejected
from agent.config.power import PowerConfig, render
from agent.power.service import PowerService
from agent.power.system import PowerCommandError, run_power_command
from drivers.errors import ArgumentError, TransportError
from drivers.protocol.wol import WOL_PORT, format_mac, magic_packet, parse_broadcast, parse_mac
from drivers.transport.datagram import send_datagram

MAX_DELAY_S = 24 * 3600
AGENT_ID_CHARS = 128


class MacArg(Arg):
    """A network card's MAC address: ``aa:bb:cc:dd:ee:ff``, ``aa-bb-cc-dd-ee-ff`` or ``aabbccddeeff``."""

    __slots__ = ()

    def check(self, value: Any) -> bytes:
        """The 6 bytes; Rejected naming the argument otherwise."""
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # ``mac=112233445566`` from the command line reads as a JSON number
        try:
            return parse_mac(value)
        except ArgumentError as exc:
            raise Rejected(f"{self.name}: {exc}") from None


class Ipv4Arg(Arg):
    """An IPv4 address to send to (a LAN's broadcast, 255.255.255.255, or a host)."""

    __slots__ = ()

    def check(self, value: Any) -> str:
        """The address; Rejected naming the argument otherwise."""
        try:
            return parse_broadcast(value)
        except ArgumentError as exc:
            raise Rejected(f"{self.name}: {exc}") from None


class AgentIdArg(Arg):
    """An agent id (a topic level): no ``/ + #``, at most AGENT_ID_CHARS characters."""

    __slots__ = ()

    def check(self, value: Any) -> str:
        """The id; Rejected naming the argument otherwise."""
        text = super().check(value)
        if len(text) > AGENT_ID_CHARS or any(c in text for c in "/+#") or not text.isprintable():
            raise Rejected(f"{self.name}: got {text[:40]!r}, expected an agent id")
        return str(text)


def busy_reasons(recording: Mapping[str, Any], lesson: Mapping[str, Any] | None) -> list[str]:
    """What a shutdown would cut short: a recording, a live lesson (either role)."""
    reasons = []
    if recording.get("active"):
        reasons.append(f"recording {recording.get('lesson') or '?'!s}")
    if lesson and lesson.get("active"):
        reasons.append(f"live lesson {lesson.get('id', '?')} ({lesson.get('role', '?')})")
    return reasons


def add_power_commands(
    table: CommandTable,
    power: PowerService,
    config: PowerConfig,
    recording: Callable[[], Mapping[str, Any]],
    lesson: Callable[[], Mapping[str, Any] | None],
) -> None:
    """Register ``power.wake``, ``agent.shutdown`` and ``agent.reboot``."""

    async def wake(args: Mapping[str, Any]) -> dict[str, Any]:
        mac: bytes = args["mac"]
        port = args.get("port", WOL_PORT)
        addresses = [args["broadcast"]] if "broadcast" in args else power.broadcasts()
        packet = magic_packet(mac)
        sent, errors = [], []
        for address in addresses:
            try:
                await send_datagram(packet, address, port)
                sent.append(f"{address}:{port}")
            except TransportError as exc:
                errors.append(str(exc))
        if not sent:
            raise Failed("; ".join(errors))
        result: dict[str, Any] = {"mac": format_mac(mac), "sent_to": sent, "bytes": len(packet)}
        if errors:
            result["errors"] = errors
        if "target" in args:
            result["target"] = args["target"]
        return result

    def power_off(action: str, command: tuple[str, ...]) -> Callable[[Mapping[str, Any]], Any]:
        async def run(args: Mapping[str, Any]) -> dict[str, Any]:
            delay = args.get("delay_s", 60 if action == "shutdown" else 0)
            reasons = busy_reasons(recording(), lesson())
            if reasons and not args.get("force", False):
                why = " and ".join(reasons)
                live = bool((lesson() or {}).get("active"))
                params = {"action": action, "recording": bool(recording().get("active")), "lesson": live}
                why = f"force: refused during {why}; send force=true to {action} anyway"
                raise Rejected(why, code="busy", params=params)
            argv = render(command, delay)
            try:
                output = await run_power_command(argv, config.command_timeout_s)
            except PowerCommandError as exc:
                raise Failed(f"{action}: {exc}") from None
            return {"action": action, "delay_s": delay, "command": argv, "output": output, "cut_short": reasons}

        return run

    wake_args = (
        MacArg("mac", doc="the sleeping PC's MAC: aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabbccddeeff"),
        Ipv4Arg("broadcast", required=False, doc="IPv4 address to send to (default: each LAN's broadcast)"),
        Arg("port", "int", required=False, min=1, max=65535, doc=f"UDP port (default {WOL_PORT})"),
        AgentIdArg("target", required=False, doc="the agent id of the PC being woken (kept in the audit log)"),
    )
    delay = Arg("delay_s", "int", required=False, min=0, max=MAX_DELAY_S, doc="seconds before the OS acts")
    force = Arg("force", "bool", required=False, doc="also during a recording or a live lesson")
    deadline = config.command_timeout_s + 5
    table.add(CommandDef("power.wake", wake_args, wake, "wake another PC of the LAN (Wake-on-LAN)"))
    table.add(CommandDef("agent.shutdown", (delay, force), power_off("shutdown", config.shutdown_command),
                         "shut this PC down (default in 60 s)", deadline))  # fmt: skip
    table.add(CommandDef("agent.reboot", (delay, force), power_off("reboot", config.reboot_command),
                         "restart this PC (default now)", deadline))  # fmt: skip
