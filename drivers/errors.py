"""The driver error hierarchy: the class tells the caller what to do next."""

from __future__ import annotations


class DriverError(Exception):
    """Root of every error raised by the driver layer."""


class ProfileError(DriverError):
    """A hardware profile is invalid: fix the TOML file named in the message."""


class ArgumentError(DriverError):
    """A command or its arguments are wrong: fix the request, do not retry."""


class DeviceError(DriverError):
    """A device did not do what was asked; carries the device id and last bytes seen."""

    def __init__(self, message: str, *, device: str = "", last_bytes: bytes = b"") -> None:
        """Build the error; `device` and `last_bytes` are appended to the message."""
        self.device = device
        self.last_bytes = last_bytes
        parts = [message]
        if device:
            parts.append(f"device={device}")
        if last_bytes:
            parts.append(f"last bytes: {last_bytes.hex(' ')}")
        super().__init__("; ".join(parts))


class DeviceTimeout(DeviceError):
    """No (complete) reply arrived before the deadline: the device may be off or unplugged."""


class DeviceRejected(DeviceError):
    """The device answered with an error reply (NAK); retrying the same request will not help."""

    def __init__(self, message: str, *, code: object, device: str = "", last_bytes: bytes = b"") -> None:
        """Build the error with the device's own error code."""
        self.code = code
        super().__init__(message, device=device, last_bytes=last_bytes)


class GarbageReceived(DeviceError):
    """Only unparseable bytes arrived: check baud rate, wiring and the profile."""


class TransportError(DeviceError):
    """The port or socket failed or is gone: the device layer reconnects with backoff."""


class AuthenticationFailed(TransportError):
    """The device refused our credentials (PJLink's ERRA): fix the password in the device's address.

    The device layer keeps retrying with backoff, as for a lost link: the device's password may
    be put right on the device instead.
    """


# The machine-readable code of each kind of failure, most specific first (a reader words it in its
# own language; `contract.codes`).  DeviceRejected's own `code` is the device's, not this.
_CODES: tuple[tuple[type[DriverError], str], ...] = (
    (AuthenticationFailed, "device_auth_failed"),
    (TransportError, "device_unreachable"),
    (DeviceTimeout, "device_no_reply"),
    (GarbageReceived, "device_garbled"),
    (DeviceRejected, "device_refused"),
    (ArgumentError, "device_argument"),
    (ProfileError, "device_profile"),
)


def error_code(error: BaseException) -> str:
    """``device_no_reply``, ``device_unreachable`` …: what kind of failure `error` is (``device_failed`` if none)."""
    return next((code for kind, code in _CODES if isinstance(error, kind)), "device_failed")
