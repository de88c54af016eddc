"""Errors of the contract package: the class says what to do."""

from __future__ import annotations


class ContractError(Exception):
    """Root of the errors raised by the `contract` package."""


class PayloadError(ContractError, ValueError):
    """A topic or payload that does not follow the contract: log it, drop that message, carry on."""


class BrokerError(ContractError):
    """The broker cannot be reached or refused us: retry later."""


class AddressError(ContractError):
    """A broker URL, credential or TLS file is wrong: fix the configuration."""
