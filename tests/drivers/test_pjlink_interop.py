"""An independent PJLink client (pypjlink2, blocking sockets in a thread) drives our simulator.

pypjlink is a separate implementation of the JBMIA specification: if our simulator's greeting,
digest check, replies or error codes drifted from the published protocol, it would fail here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

import pytest
from pypjlink import Projector
from pypjlink.projector import ProjectorError

from drivers.profile import find_profile
from drivers.sim.model import Simulator
from drivers.sim.runner import SimServer

PASSWORD = "secret123"
T = TypeVar("T")


def connect(address: str) -> Projector:
    parts = urlsplit(address)
    return Projector.from_address(parts.hostname, parts.port, timeout=10)


async def in_thread(work: Callable[[], T]) -> T:
    return await asyncio.wait_for(asyncio.to_thread(work), 30)


async def test_pypjlink_logs_in_and_reads_everything_class_1_defines() -> None:
    sim = Simulator(find_profile("pjlink"))
    async with SimServer(sim, "tcp://127.0.0.1:0", password=PASSWORD) as server:

        def session() -> dict[str, object]:
            with connect(server.device_path) as p:
                assert p.authenticate(PASSWORD) is True
                p.set_input("DIGITAL", 2)
                p.set_mute(1, True)  # video only: AVMT 11
                return {
                    "power": p.get_power(),
                    "input": p.get_input(),
                    "mute": p.get_mute(),
                    "errors": p.get_errors(),
                    "lamps": p.get_lamps(),
                    "inputs": p.get_inputs(),
                    "name": p.get_name(),
                    "manufacturer": p.get_manufacturer(),
                    "product": p.get_product_name(),
                    "info": p.get_other_info(),
                }

        seen = await in_thread(session)
    assert seen["power"] == "on"
    assert seen["input"] == ("DIGITAL", 2)
    assert seen["mute"] == (True, False)
    assert seen["errors"] == dict.fromkeys(("fan", "lamp", "temperature", "cover", "filter", "other"), "ok")
    lamps = seen["lamps"]
    assert isinstance(lamps, list) and len(lamps) == 1 and lamps[0][0] >= 1200 and lamps[0][1] is True
    assert seen["inputs"] == [("RGB", 1), ("VIDEO", 1), ("DIGITAL", 1), ("DIGITAL", 2), ("NETWORK", 1)]
    assert (seen["name"], seen["manufacturer"], seen["product"]) == (
        "Classroom projector",
        "classroom-agent",
        "PJLink simulator",
    )


async def test_pypjlink_sees_an_injected_fault_and_every_error_code() -> None:
    sim = Simulator(find_profile("pjlink"))
    async with SimServer(sim, "tcp://127.0.0.1:0", password=PASSWORD) as server:
        sim.set("fan_status", "error")
        sim.set("filter_status", "warning")

        def session() -> dict[str, object]:
            out: dict[str, object] = {}
            with connect(server.device_path) as p:
                assert p.authenticate(PASSWORD) is True
                out["errors"] = p.get_errors()
                for key, call in {
                    "undefined": lambda: p.get("XXXX"),
                    "parameter": lambda: p.set("POWR", "7"),
                    "absent_input": lambda: p.set_input("STORAGE", 1),
                }.items():
                    try:
                        call()
                    except ProjectorError as exc:
                        out[key] = str(exc)
                p.set_power("off")
                out["cooling"] = p.get_power()
                try:
                    p.set_input("VIDEO", 1)
                except ProjectorError as exc:
                    out["busy"] = str(exc)
            return out

        seen = await in_thread(session)
        sim.set("power", "on")
        sim.set("failed", True)

        def failed() -> str:
            with connect(server.device_path) as p:
                p.authenticate(PASSWORD)
                try:
                    p.set_input("DIGITAL", 1)
                except ProjectorError as exc:
                    return str(exc)
            return "accepted"

        broken = await in_thread(failed)
    errors = seen["errors"]
    assert isinstance(errors, dict) and errors["fan"] == "error" and errors["filter"] == "warning"
    assert errors["lamp"] == "ok"
    assert seen["undefined"] == "undefined command"
    assert seen["parameter"] == "out of parameter"
    assert seen["absent_input"] == "out of parameter"
    assert seen["cooling"] == "cooling"
    assert seen["busy"] == "unavailable time"
    assert broken == "projector failure"


async def test_pypjlink_with_a_wrong_password_gets_erra_and_the_line_is_closed() -> None:
    async with SimServer(Simulator(find_profile("pjlink")), "tcp://127.0.0.1:0", password=PASSWORD) as server:

        def session() -> tuple[bool | None, str]:
            with connect(server.device_path) as p:
                ok = p.authenticate("not-it")
                return ok, p.f.read(1)  # the projector hung up: end of file

        ok, after = await in_thread(session)
    assert ok is False
    assert after == ""


async def test_pypjlink_needs_no_password_for_a_projector_without_one() -> None:
    async with SimServer(Simulator(find_profile("pjlink")), "tcp://127.0.0.1:0") as server:

        def session() -> tuple[bool | None, str]:
            with connect(server.device_path) as p:
                return p.authenticate(), p.get_power()

        assert await in_thread(session) == (None, "on")


@pytest.mark.parametrize("password", [None, PASSWORD])
async def test_pypjlink_is_answered_after_its_first_command_on_each_connection(password: str | None) -> None:
    async with SimServer(Simulator(find_profile("pjlink")), "tcp://127.0.0.1:0", password=password) as server:

        def two_sessions() -> list[str]:
            powers = []
            for _ in range(2):
                with connect(server.device_path) as p:
                    p.authenticate(password)
                    powers.append(p.get_power())
            return powers

        assert await in_thread(two_sessions) == ["on", "on"]
    assert server.logins == (2 if password else 0)
