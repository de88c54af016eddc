"""The command table: one typed entry per command, the same for every door (CLI, MQTT, page).

Validation, audit and errors are identical whichever door a request came in by.  Bad input
gets a ``rejected`` outcome naming the argument and never reaches a handler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.errors import AgentError
from contract import CommandStatus

log = logging.getLogger(__name__)

Handler = Callable[[Mapping[str, Any]], Awaitable[Any]]


class Rejected(AgentError):
    """The request is wrong (unknown command, bad argument): nothing was done."""


class Failed(AgentError):
    """The request was valid but doing it failed (a device timed out, said no, is gone)."""


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument: its type (str, bool, int, choice), range or choices, and whether required."""

    name: str
    type: str = "str"
    required: bool = True
    min: int | None = None
    max: int | None = None
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] = ()
    doc: str = ""

    def check(self, value: Any) -> Any:
        """The value, converted; Rejected naming the argument when it is wrong."""
        if self.type == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "on", "off", "1", "0"):
                return value.lower() in ("true", "on", "1")
            raise Rejected(f"{self.name}: got {value!r}, expected true or false")
        if self.type == "int":
            return self._int(value)
        if not isinstance(value, str) or not value:
            raise Rejected(f"{self.name}: got {value!r}, expected a non-empty string")
        options = self.choices() if callable(self.choices) else self.choices
        if options and value not in options:
            raise Rejected(f"{self.name}: got {value!r}, expected one of {', '.join(options)}")
        return value

    def _int(self, value: Any) -> int:
        if isinstance(value, bool):
            raise Rejected(f"{self.name}: got {value!r}, expected an integer")
        try:
            number = value if isinstance(value, int) else int(str(value), 10)
        except ValueError:
            raise Rejected(f"{self.name}: got {value!r}, expected an integer") from None
        if (self.min is not None and number < self.min) or (self.max is not None and number > self.max):
            raise Rejected(f"{self.name}: {number} is out of range {self.min}..{self.max}")
        return number


@dataclass(frozen=True, slots=True)
class ListArg(Arg):
    """A list of names: a JSON list, or ``a,b`` from the command line (each checked against `choices`).

    `also` accepts names beyond `choices`, which may hold a ``/`` (lesson picture references such as
    ``remote:1/board``); `also_expected` says what they look like in the error.
    """

    also: Callable[[str], bool] | None = None
    also_expected: str = ""

    def check(self, value: Any) -> Any:
        """A tuple of names; Rejected naming the argument and the bad name when one is wrong."""
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # ``remotes=101`` from the command line: an id that looks like a number
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not items:
            raise Rejected(f"{self.name}: got {value!r}, expected a list of names (CLI: {self.name}=a,b)")
        names = tuple(item.strip() if isinstance(item, str) else item for item in items)
        options = self.choices() if callable(self.choices) else self.choices
        for name in names:
            if not isinstance(name, str) or not name:
                raise Rejected(f"{self.name}: got {name!r}, expected a name without / + #")
            if self.also is not None and self.also(name):
                continue
            if options and name not in options:
                more = f" or {self.also_expected}" if self.also_expected else ""
                raise Rejected(f"{self.name}: got {name!r}, expected one of {', '.join(options)}{more}")
            if any(c in name for c in "/+#"):
                raise Rejected(f"{self.name}: got {name!r}, expected a name without / + #")
        return names


@dataclass(frozen=True, slots=True)
class CommandDef:
    """A command: name, argument schema, handler, and its deadline."""

    name: str
    args: tuple[Arg, ...]
    handler: Handler
    doc: str = ""
    timeout_s: float = 30.0
    # A query that changes nothing (a page polls it every few seconds): audited only when it fails.
    read_only: bool = False

    def validate(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Checked, converted arguments; Rejected names the first bad one."""
        if not isinstance(args, Mapping):
            raise Rejected(f"args: got {args!r}, expected an object")
        known = {a.name for a in self.args}
        unknown = sorted(set(args) - known)
        if unknown:
            takes = ", ".join(sorted(known)) or "no arguments"
            raise Rejected(f"{unknown[0]}: unknown argument for {self.name} (takes {takes})")
        out: dict[str, Any] = {}
        for arg in self.args:
            if arg.name in args:
                out[arg.name] = arg.check(args[arg.name])
            elif arg.required:
                raise Rejected(f"{arg.name}: missing (required by {self.name})")
        return out


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened: ``succeeded`` with a result, or ``failed``/``rejected``/``expired`` with an error."""

    status: CommandStatus
    result: Any = None
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON the CLI and the local API print."""
        if self.status == CommandStatus.SUCCEEDED:
            return {"status": self.status, "result": self.result}
        return {"status": self.status, "error": self.error}


Audit = Callable[[str, Mapping[str, Any], str, str, Outcome], None]


@dataclass
class CommandTable:
    """Every command the agent accepts, by name."""

    commands: dict[str, CommandDef] = field(default_factory=dict)
    audit: Audit | None = None

    def add(self, command: CommandDef) -> None:
        """Register a command (names are unique)."""
        if command.name in self.commands:
            raise ValueError(f"command {command.name} registered twice")
        self.commands[command.name] = command

    def names(self) -> list[str]:
        """The command names, sorted."""
        return sorted(self.commands)

    async def execute(self, name: str, args: Mapping[str, Any], *, by: str = "", door: str = "") -> Outcome:
        """Validate and run one command within its deadline; never raises for bad input."""
        outcome = await self._run(name, args)
        log.info(
            "command %s %s by %s via %s: %s",
            name,
            dict(args) if isinstance(args, Mapping) else args,
            by,
            door,
            outcome.status,
        )
        quiet = outcome.status == CommandStatus.SUCCEEDED and name in self.commands and self.commands[name].read_only
        if self.audit is not None and not quiet:
            self.audit(name, args if isinstance(args, Mapping) else {}, by, door, outcome)
        return outcome

    async def _run(self, name: str, args: Mapping[str, Any]) -> Outcome:
        command = self.commands.get(name)
        if command is None:
            return Outcome(CommandStatus.REJECTED, error=f"unknown command {name!r}; known: {', '.join(self.names())}")
        try:
            checked = command.validate(args)
            async with asyncio.timeout(command.timeout_s):
                result = await command.handler(checked)
        except Rejected as exc:
            return Outcome(CommandStatus.REJECTED, error=str(exc))
        except Failed as exc:
            return Outcome(CommandStatus.FAILED, error=str(exc))
        except TimeoutError:
            return Outcome(CommandStatus.FAILED, error=f"{name}: no result within {command.timeout_s:g} s")
        return Outcome(CommandStatus.SUCCEEDED, result=result)
