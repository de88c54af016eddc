"""Errors of the central side and the agent's link: the class says what to do."""

from __future__ import annotations


class CentralError(Exception):
    """Root of the errors raised by the `central` package."""


class BrokerError(CentralError):
    """The broker cannot be reached, refused us, or could not be started."""


class ConfigError(CentralError):
    """A broker URL, credential or TLS setting is wrong: fix the configuration."""
