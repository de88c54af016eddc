"""``info.nics`` and ``info.wake``: what a sleeping PC leaves behind for the centre, bounded and checked."""

from __future__ import annotations

from typing import Any

import pytest

from contract import Info, Nic, PayloadError, decode, encode
from contract.power import MAX_NICS, MAX_WAKES

CARD = {"name": "eth0", "mac": "00-1B-21-A4-C3-F0", "address": "192.168.10.23", "broadcast": "192.168.10.255"}


def info(**fields: Any) -> dict[str, Any]:
    return {"schema": 1, "room": "101", "hostname": "pc", "version": "1", "devices": [], **fields}


def test_cards_and_wake_times_round_trip_with_the_mac_in_one_form() -> None:
    parsed = Info.from_dict(info(nics=[CARD], wake=["2026-03-02T23:40:00Z"]))
    assert parsed.nics == (Nic("eth0", "00:1b:21:a4:c3:f0", "192.168.10.23", "192.168.10.255"),)
    assert parsed.wake == ("2026-03-02T23:40:00Z",)
    assert Info.from_dict(decode(encode(parsed.to_dict()))) == parsed
    older = Info.from_dict(info())  # an agent from before power.wake
    assert older.nics == () and older.wake == ()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"nics": [{**CARD, "mac": "ff:ff:ff:ff:ff:ff"}]}, "nics[0].mac: got 'ff:ff:ff:ff:ff:ff'"),
        ({"nics": [{**CARD, "mac": "aa:bb"}]}, "nics[0].mac: got 'aa:bb', expected a MAC address"),
        ({"nics": [{"name": "eth0"}]}, "nics[0].mac: missing"),
        ({"nics": [{**CARD, "broadcast": "evil.example"}]}, "nics[0].broadcast: got 'evil.example'"),
        ({"nics": [{**CARD, "address": "224.0.0.1"}]}, "nics[0].address: got '224.0.0.1'"),
        ({"nics": [{**CARD, "name": "x" * 129}]}, "nics[0].name: 129 characters"),
        ({"nics": ["eth0"]}, "nics[0]: expected an object"),
        ({"nics": {"eth0": CARD}}, "nics: got"),
        ({"nics": [CARD] * (MAX_NICS + 1)}, f"nics: {MAX_NICS + 1} cards, expected at most {MAX_NICS}"),
        ({"wake": ["tomorrow"]}, "wake[0]: bad timestamp 'tomorrow'"),
        ({"wake": [1767225600]}, "wake[0]: got 1767225600, expected a timestamp"),
        ({"wake": ["2026-03-02T23:40:00Z"] * (MAX_WAKES + 1)}, f"wake: {MAX_WAKES + 1} times, expected at most"),
    ],
)
def test_a_bad_card_or_wake_time_breaks_the_contract_naming_the_key(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(PayloadError) as caught:
        Info.from_dict(info(**fields))
    assert message in str(caught.value)
