"""Errors of the agent package: the class says what to do.

Drivers, streaming and the contract have roots of their own (`DriverError`, `StreamingError`,
`ContractError`); the agent translates theirs where they enter its code.
"""

from __future__ import annotations


class AgentError(Exception):
    """Root of the errors raised by the `agent` package."""


class ConfigError(AgentError):
    """A site config, a timetable or a command line is wrong: fix it (the message names the key)."""
