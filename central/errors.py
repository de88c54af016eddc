"""Errors of the central side: the class says what to do.

The broker's own errors (unreachable, refused, a bad URL) are the contract's: `contract.errors`.
"""

from __future__ import annotations


class CentralError(Exception):
    """Root of the errors raised by the `central` package."""


class MosquittoError(CentralError):
    """Mosquitto or one of its tools could not be run or started here: install it, or read its log."""


class ConfigError(CentralError):
    """A broker URL, credential or TLS setting is wrong: fix the configuration."""
