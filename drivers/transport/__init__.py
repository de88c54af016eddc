"""Transports move bytes; `open_transport` turns an ADDRESS into one."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from drivers.errors import ArgumentError
from drivers.profile_model import Profile, SerialDefaults
from drivers.transport.base import Transport

__all__ = ["Transport", "make_transport"]


def make_transport(address: str, profile: Profile) -> Transport:
    """A transport for ADDRESS, with the profile's defaults for what the address leaves out.

    ``/dev/ttyUSB0`` or ``COM3`` (serial, profile's line settings,
    ``?baud=19200`` to override), ``tcp://HOST[:PORT]``, ``udp://HOST[:PORT]`` (VISCA over IP
    when the profile says so); a missing port is the profile's default.
    """
    parts = urlsplit(address)
    if parts.scheme in ("tcp", "udp"):
        host = parts.hostname
        default = profile.transport.tcp_port if parts.scheme == "tcp" else profile.transport.udp_port
        try:
            port = parts.port or default
        except ValueError:
            raise ArgumentError(f"{parts.scheme}://{host}: bad port") from None
        if not host or not port:
            where = f"{parts.scheme}://{host or ''}"
            raise ArgumentError(f"{where}: expected {parts.scheme}://HOST:PORT ({profile.id} has no default port)")
        if parts.scheme == "tcp":
            return _tcp(host, port, parts.query, profile)
        from drivers.transport.udp import UdpTransport, ViscaIpTransport

        if profile.transport.udp_encapsulation == "visca-ip":
            return ViscaIpTransport(host, port)
        return UdpTransport(host, port)
    path = parts.path if parts.scheme == "serial" else address.split("?")[0]
    if parts.scheme not in ("", "serial") and len(parts.scheme) > 1:
        raise ArgumentError(f"{path}: unknown address scheme {parts.scheme!r} (tcp://, udp://, or a serial port)")
    settings = profile.transport.serial
    if settings is None:
        raise ArgumentError(f"{path}: {profile.id} has no serial control; give tcp://HOST[:PORT]")
    query = parse_qs(parts.query)
    if "baud" in query:
        try:
            settings = SerialDefaults(int(query["baud"][0]), settings.bytesize, settings.parity, settings.stopbits)
        except ValueError:
            raise ArgumentError(f"{address}: baud must be a number") from None
    from drivers.transport.serial_port import SerialTransport

    return SerialTransport(path, settings)


def _tcp(host: str, port: int, query: str, profile: Profile) -> Transport:
    """Plain TCP, or TCP with the profile's login (``?password=`` for PJLink)."""
    options = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(options) - ({"password"} if profile.transport.login else set()))
    if unknown:
        takes = "password" if profile.transport.login else "no options"
        raise ArgumentError(f"tcp://{host}:{port}: unknown option {unknown[0]!r} ({profile.id} takes {takes})")
    if profile.transport.login == "pjlink":
        from drivers.protocol.pjlink import check_password
        from drivers.transport.pjlink import PjlinkTransport

        given = options.get("password")
        password = check_password(given[-1]) if given else None
        return PjlinkTransport(host, port, password)
    from drivers.transport.tcp import TcpTransport

    return TcpTransport(host, port)
