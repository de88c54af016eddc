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
            raise ArgumentError(f"{address}: bad port") from None
        if not host or not port:
            raise ArgumentError(f"{address}: expected {parts.scheme}://HOST:PORT ({profile.id} has no default port)")
        if parts.scheme == "tcp":
            from drivers.transport.tcp import TcpTransport

            return TcpTransport(host, port)
        from drivers.transport.udp import UdpTransport, ViscaIpTransport

        if profile.transport.udp_encapsulation == "visca-ip":
            return ViscaIpTransport(host, port)
        return UdpTransport(host, port)
    path = parts.path if parts.scheme == "serial" else address.split("?")[0]
    if parts.scheme not in ("", "serial") and len(parts.scheme) > 1:
        raise ArgumentError(f"{address}: unknown address scheme {parts.scheme!r} (tcp://, udp://, or a serial port)")
    settings = profile.transport.serial
    query = parse_qs(parts.query)
    if "baud" in query:
        try:
            settings = SerialDefaults(int(query["baud"][0]), settings.bytesize, settings.parity, settings.stopbits)
        except ValueError:
            raise ArgumentError(f"{address}: baud must be a number") from None
    from drivers.transport.serial_port import SerialTransport

    return SerialTransport(path, settings)
