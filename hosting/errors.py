"""Errors of the hosting package: the class says what to do."""

from __future__ import annotations


class HostingError(Exception):
    """Root of the errors raised by the `hosting` package."""


class InstallError(HostingError):
    """A service could not be installed as asked: fix the command line, or run it as root (the message says which)."""
