"""onvif://USER:PASS@HOST[:PORT]: parsed and checked before any I/O, the password never shown."""

from __future__ import annotations

import pytest

from drivers.driver import open_driver
from drivers.errors import ArgumentError
from drivers.onvif.address import OnvifAddress, parse_address
from drivers.profile import find_profile


def test_address_with_port_and_url_encoded_credentials() -> None:
    where = parse_address("onvif://admin:p%40ss%3Aw0rd@192.168.1.64:8080")
    assert (where.host, where.port, where.user, where.password) == ("192.168.1.64", 8080, "admin", "p@ss:w0rd")


def test_port_defaults_to_80() -> None:
    assert parse_address("onvif://admin:x@cam-101.school.lan").port == 80


def test_ipv6_literal() -> None:
    where = parse_address("onvif://admin:x@[fe80::1]:81")
    assert (where.host, where.netloc) == ("fe80::1", "[fe80::1]:81")


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("http://admin:x@10.0.0.5", "expected onvif://USER:PASS@HOST"),
        ("onvif://10.0.0.5", "no user name and password"),
        ("onvif://admin@10.0.0.5", "no user name and password"),
        ("onvif://:secret@10.0.0.5", "empty user name"),
        ("onvif://admin:secret@", "no host"),
        ("onvif://admin:secret@10.0.0.5:0", "bad port"),
        ("onvif://admin:secret@10.0.0.5:99999", "bad port"),
        ("onvif://admin:secret@10.0.0.5:", "bad port"),
        ("onvif://admin:secret@10.0.0.5/onvif/device_service", "no path"),
        ("onvif://admin:secret@bad_host!", "not a host name"),
        ("onvif://admin:sec ret@10.0.0.5", "spaces or control characters"),
        ("onvif://admin:" + "x" * 200 + "@10.0.0.5", "password longer than 128"),
    ],
)
def test_bad_address_names_the_problem_and_never_the_password(address: str, problem: str) -> None:
    with pytest.raises(ArgumentError, match=problem) as err:
        parse_address(address)
    assert "secret" not in str(err.value)


def test_str_and_repr_hide_the_password() -> None:
    where = parse_address("onvif://admin:hunter2@10.0.0.5")
    for text in (str(where), repr(where), where.url):
        assert "hunter2" not in text
    assert where.url == "onvif://admin:***@10.0.0.5:80"
    assert "admin" in repr(where) and isinstance(where, OnvifAddress)


def test_open_driver_checks_the_address_before_anything_opens() -> None:
    with pytest.raises(ArgumentError, match="no user name and password"):
        open_driver(find_profile("onvif"), "onvif://10.0.0.5", device_id="camera")
