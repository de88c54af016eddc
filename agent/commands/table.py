"""The command table: one typed entry per command, the same for every door (CLI, MQTT, page).

Validation, audit and errors are identical whichever door a request came in by.  Bad input
gets a ``rejected`` outcome naming the argument and never reaches a handler.  Every refusal and
failure may carry a `code` and `params` (``arg_range`` ``{"arg": "level", "value": 140, "min": 0,
"max": 100}``), which travel in the reply so that the centre words it in the viewer's language
(`contract.codes`; the codes are listed in docs/codes.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.errors import AgentError
from contract import CommandStatus
from contract.codes import clean_params

log = logging.getLogger(__name__)

Handler = Callable[[Mapping[str, Any]], Awaitable[Any]]


class CommandError(AgentError):
    """A command that did not run as asked; `code` and `params` say why in a form each reader words."""

    def __init__(self, message: str, *, code: str = "", params: Mapping[str, object] | None = None) -> None:
        """`message` is the technician's English; `code` (``arg_range``) and `params` its machine-readable twin."""
        super().__init__(message)
        self.code = code
        self.params = clean_params(params)


class Rejected(CommandError):
    """The request is wrong (unknown command, bad argument): nothing was done."""


class Failed(CommandError):
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
            raise self.wrong(f"got {value!r}, expected true or false", "arg_bool", value)
        if self.type == "int":
            return self._int(value)
        if not isinstance(value, str) or not value:
            raise self.wrong(f"got {value!r}, expected a non-empty string", "arg_text", value)
        options = self.choices() if callable(self.choices) else self.choices
        if options and value not in options:
            raise self.wrong(f"got {value!r}, expected one of {', '.join(options)}", "arg_choice", value, options)
        return value

    def wrong(self, why: str, code: str, value: Any, choices: tuple[str, ...] = ()) -> Rejected:
        """Rejected naming this argument: ``NAME: why``, with `code` and the value (and the choices) as params."""
        params: dict[str, object] = {"arg": self.name, "value": value if isinstance(value, int | str) else repr(value)}
        return Rejected(f"{self.name}: {why}", code=code, params=params | ({"choices": choices} if choices else {}))

    def _int(self, value: Any) -> int:
        if isinstance(value, bool):
            raise self.wrong(f"got {value!r}, expected an integer", "arg_int", value)
        try:
            number = value if isinstance(value, int) else int(str(value), 10)
        except ValueError:
            raise self.wrong(f"got {value!r}, expected an integer", "arg_int", value) from None
        if (self.min is not None and number < self.min) or (self.max is not None and number > self.max):
            error = self.wrong(f"{number} is out of range {self.min}..{self.max}", "arg_range", number)
            error.params |= {"min": self.min, "max": self.max}
            raise error
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
            raise self.wrong(f"got {value!r}, expected a list of names (CLI: {self.name}=a,b)", "arg_list", value)
        names = tuple(item.strip() if isinstance(item, str) else item for item in items)
        options = self.choices() if callable(self.choices) else self.choices
        for name in names:
            if not isinstance(name, str) or not name:
                raise self.wrong(f"got {name!r}, expected a name without / + #", "arg_name", name)
            if self.also is not None and self.also(name):
                continue
            if options and name not in options:
                more = f" or {self.also_expected}" if self.also_expected else ""
                raise self.wrong(
                    f"got {name!r}, expected one of {', '.join(options)}{more}", "arg_choice", name, options
                )
            if any(c in name for c in "/+#"):
                raise self.wrong(f"got {name!r}, expected a name without / + #", "arg_name", name)
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
            raise Rejected(f"args: got {args!r}, expected an object", code="args_object")
        known = {a.name for a in self.args}
        unknown = sorted(set(args) - known)
        if unknown:
            takes = ", ".join(sorted(known)) or "no arguments"
            params = {"arg": unknown[0], "command": self.name, "choices": sorted(known)}
            raise Rejected(
                f"{unknown[0]}: unknown argument for {self.name} (takes {takes})", code="arg_unknown", params=params
            )
        out: dict[str, Any] = {}
        for arg in self.args:
            if arg.name in args:
                out[arg.name] = arg.check(args[arg.name])
            elif arg.required:
                params = {"arg": arg.name, "command": self.name}
                raise Rejected(f"{arg.name}: missing (required by {self.name})", code="arg_missing", params=params)
        return out


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened: ``succeeded`` with a result, or ``failed``/``rejected``/``expired`` with an error.

    A refusal or failure may carry a `code` and its `params` (`CommandError`).
    """

    status: CommandStatus
    result: Any = None
    error: str = ""
    code: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON the CLI and the local API print."""
        if self.status == CommandStatus.SUCCEEDED:
            return {"status": self.status, "result": self.result}
        words = {"code": self.code, "params": dict(self.params)} if self.code else {}
        return {"status": self.status, "error": self.error, **words}


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
            error = f"unknown command {name!r}; known: {', '.join(self.names())}"
            return Outcome(CommandStatus.REJECTED, error=error, code="unknown_command", params={"command": name[:64]})
        try:
            checked = command.validate(args)
            async with asyncio.timeout(command.timeout_s):
                result = await command.handler(checked)
        except Rejected as exc:
            return Outcome(CommandStatus.REJECTED, error=str(exc), code=exc.code, params=exc.params)
        except Failed as exc:
            return Outcome(CommandStatus.FAILED, error=str(exc), code=exc.code, params=exc.params)
        except TimeoutError:
            error = f"{name}: no result within {command.timeout_s:g} s"
            return Outcome(
                CommandStatus.FAILED, error=error, code="command_timeout", params={"seconds": command.timeout_s}
            )
        return Outcome(CommandStatus.SUCCEEDED, result=result)
