"""The onvif driver when things go wrong: a wrong password, a clock hours off, a silent camera, garbage."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from drivers.backoff import Backoff
from drivers.device import Health
from drivers.errors import DeviceRejected, DeviceTimeout, GarbageReceived, TransportError
from drivers.onvif.address import OnvifAddress
from drivers.onvif.driver import OnvifDriver
from drivers.profile import find_profile
from drivers.sim.onvif import OnvifCamera, OnvifServer

PROFILE = find_profile("onvif")
HOURS = 3600.0


@contextlib.asynccontextmanager
async def serving(camera: OnvifCamera) -> AsyncIterator[OnvifServer]:
    async with OnvifServer(camera, host="127.0.0.1", port=0, report=lambda line: None) as server:
        yield server


def driver_for(server: OnvifServer, password: str, **kwargs: object) -> OnvifDriver:
    return OnvifDriver(PROFILE, OnvifAddress("127.0.0.1", server.port, "admin", password), device_id="camera", **kwargs)  # type: ignore[arg-type]


async def test_a_wrong_password_is_a_clear_refusal_naming_the_camera(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with serving(OnvifCamera(user="admin", password="right-one")) as server:
        driver = driver_for(server, "wrong-one")
        try:
            async with asyncio.timeout(30):  # a safety net: the refusal itself must come at once
                with pytest.raises(DeviceRejected) as err:
                    await driver.call("preset_recall", {"n": 1})
            assert err.value.code == "not_authorized"
            assert "user name or password" in str(err.value) and "device=camera" in str(err.value)
            assert not driver.health.online and "user name or password" in driver.health.last_error
            with pytest.raises(DeviceRejected, match="user name or password"):
                await driver.poll()  # the poll loop says the same, again, without hanging
        finally:
            await driver.close()
    assert "wrong-one" not in caplog.text and "right-one" not in caplog.text


@pytest.mark.parametrize("offset_h", [5.0, -7.5])
async def test_a_camera_clock_hours_off_still_accepts_our_requests(offset_h: float) -> None:
    from onvif import ONVIFCamera  # the same library without its time adjustment: the anchor for "off"

    camera = OnvifCamera(user="admin", password="pw", clock_offset_s=offset_h * HOURS)
    async with serving(camera) as server:
        bare = ONVIFCamera("127.0.0.1", server.port, "admin", "pw", no_cache=True, adjust_time=False)
        try:
            service = await bare.create_devicemgmt_service()
            with pytest.raises(Exception, match="not Authorized: Created is"):
                await service.GetDeviceInformation()  # stamped with our clock: the camera refuses it
        finally:
            await bare.close()
        driver = driver_for(server, "pw")
        try:
            assert (await driver.call("get_info")).fields["make"] == camera.make
            assert abs(int(driver.health.state["clock_offset_s"]) - offset_h * HOURS) <= 5  # type: ignore[call-overload]
            await driver.call("goto", {"pan": 100, "tilt": 100})
            assert driver.health.online
        finally:
            await driver.close()


async def test_a_camera_that_stops_answering_mid_move_goes_offline_and_comes_back() -> None:
    camera = OnvifCamera(user="admin", password="pw")
    updates: list[Health] = []
    async with serving(camera) as server:
        driver = driver_for(server, "pw", timeout_s=0.5, poll_interval=0.1, backoff=Backoff(base=0.05, cap=0.2))

        async def report(health: Health) -> None:
            updates.append(Health(health.online, health.last_error, reconnects=health.reconnects))

        loop = asyncio.create_task(driver.run(report))
        try:
            async with asyncio.timeout(30):
                await driver.call("move", {"direction": "right"})
                camera.silent = True  # the camera hangs mid-move: connections open, no answers
                with pytest.raises(DeviceTimeout, match="no answer within"):
                    await driver.call("stop")
                while driver.health.online or not updates or updates[-1].online:
                    await asyncio.sleep(0.05)
                assert "no answer" in updates[-1].last_error
                camera.silent = False
                while not driver.health.online:
                    await asyncio.sleep(0.05)
            await driver.call("stop")
            assert not camera.moving and driver.health.reconnects >= 1
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
            await driver.close()


async def test_nobody_listening_is_a_transport_error() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    driver = OnvifDriver(PROFILE, OnvifAddress("127.0.0.1", port, "admin", "x"), device_id="camera")
    with pytest.raises(TransportError, match="device=camera"):
        await driver.call("get_position")
    assert not driver.health.online and driver.health.last_error
    await driver.close()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [("<html><body>login</body></html>", "text/html"), ("\x00\x01 not xml at all <<<", "application/soap+xml")],
)
async def test_an_answer_that_is_not_soap_is_garbage(body: str, content_type: str) -> None:
    async def nonsense(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type=content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", nonsense)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    driver = OnvifDriver(
        PROFILE, OnvifAddress("127.0.0.1", int(runner.addresses[0][1]), "admin", "x"), device_id="camera"
    )
    try:
        with pytest.raises(GarbageReceived, match="device=camera"):
            await driver.call("get_info")
        assert not driver.health.online
    finally:
        await driver.close()
        await runner.cleanup()
