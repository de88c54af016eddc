"""The onvif driver against the simulated camera over real HTTP on loopback: every operation the vocabulary uses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from urllib.parse import urlsplit

import pytest

from drivers.driver import MediaDriver, open_driver, simulated
from drivers.errors import ArgumentError, DeviceRejected
from drivers.onvif.address import OnvifAddress
from drivers.onvif.driver import OnvifDriver
from drivers.profile import find_profile
from drivers.sim.onvif import OnvifCamera, OnvifServer

PROFILE = find_profile("onvif")


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 20.0) -> None:
    """Wait until `check` holds; a safety deadline (the test fails if it never does), not a timing claim."""
    async with asyncio.timeout(seconds):
        while not await check():
            await asyncio.sleep(0.05)


@pytest.fixture
def camera() -> OnvifCamera:
    return OnvifCamera(user="admin", password="s3cret", make="Hikvision", model="DS-2DE4A425IW-DE", serial="SN123")


@pytest.fixture
async def server(camera: OnvifCamera) -> AsyncIterator[OnvifServer]:
    async with OnvifServer(camera, host="127.0.0.1", port=0, report=lambda line: None) as running:
        yield running


@pytest.fixture
async def driver(server: OnvifServer) -> AsyncIterator[OnvifDriver]:
    made = OnvifDriver(PROFILE, OnvifAddress("127.0.0.1", server.port, "admin", "s3cret"), device_id="camera")
    yield made
    await made.close()


async def test_identity_is_read_at_connect_and_kept_in_the_state(driver: OnvifDriver, camera: OnvifCamera) -> None:
    result = await driver.call("get_info")
    identity = {"make": "Hikvision", "model": "DS-2DE4A425IW-DE", "firmware": camera.firmware, "serial": "SN123"}
    assert result.kind == "value" and result.fields == identity
    state = await driver.poll()
    assert {k: state[k] for k in identity} == identity
    assert driver.health.online and state["moving"] is False


async def test_move_pans_the_camera_until_stop(driver: OnvifDriver, camera: OnvifCamera) -> None:
    await driver.call("move", {"direction": "right", "pan_speed": 24})

    async def panned() -> bool:
        state = await driver.poll()
        return state["moving"] is True and int(state["pan"]) > 50  # type: ignore[call-overload]

    await eventually(panned)
    await driver.call("stop")
    assert not camera.moving
    state = await driver.poll()
    assert state["moving"] is False and state["pan"] == round(camera.pan * 1000)


async def test_move_up_left_goes_up_and_left(driver: OnvifDriver, camera: OnvifCamera) -> None:
    await driver.call("move", {"direction": "upleft", "pan_speed": 24, "tilt_speed": 24})

    async def moved() -> bool:
        return camera.pan < -0.05 and camera.tilt > 0.05

    await eventually(moved)
    await driver.call("stop")


async def test_goto_reaches_the_position_and_reports_it(driver: OnvifDriver, camera: OnvifCamera) -> None:
    await driver.call("goto", {"pan": 500, "tilt": -250, "pan_speed": 24, "tilt_speed": 24})

    async def there() -> bool:
        state = await driver.poll()
        return (state["pan"], state["tilt"], state["moving"]) == (500, -250, False)

    await eventually(there)


async def test_zoom_tele_wide_stop_and_zoom_to(driver: OnvifDriver, camera: OnvifCamera) -> None:
    await driver.call("zoom_tele", {"speed": 7})

    async def zoomed_in() -> bool:
        return camera.zoom > 0.1

    await eventually(zoomed_in)
    await driver.call("zoom_stop")
    assert not camera.head.zoom_moving()
    await driver.call("zoom_to", {"position": 250})

    async def at_quarter() -> bool:
        return (await driver.poll())["zoom"] == 250

    await eventually(at_quarter)
    before = camera.zoom
    await driver.call("zoom_wide")

    async def zoomed_out() -> bool:
        return camera.zoom < before

    await eventually(zoomed_out)
    await driver.call("stop")


async def test_presets_save_recall_clear(driver: OnvifDriver, camera: OnvifCamera) -> None:
    await driver.call("goto", {"pan": -400, "tilt": 300, "pan_speed": 24, "tilt_speed": 24})

    async def still() -> bool:
        return not camera.moving

    await eventually(still)
    saved = await driver.call("preset_set", {"n": 7})
    assert saved.fields == {"preset": 7}
    names = [p["name"] for p in (await driver.call("get_presets")).fields["presets"]]  # type: ignore[attr-defined]
    assert names == ["7"]
    await driver.call("home")
    await eventually(still)
    assert (round(camera.pan, 3), round(camera.tilt, 3)) == (0.0, 0.0)
    assert "preset" not in driver.health.state  # after home, no preset is where the camera points

    recalled = await driver.call("preset_recall", {"n": 7})
    assert recalled.fields == {"preset": 7, "moving": True} and driver.health.state["preset"] == 7
    await eventually(still)
    assert (round(camera.pan * 1000), round(camera.tilt * 1000)) == (-400, 300)

    await driver.call("preset_set", {"n": 7})  # saved again: the same camera preset, not a second one
    assert len(camera.presets) == 1
    await driver.call("preset_clear", {"n": 7})
    assert camera.presets == {}
    with pytest.raises(DeviceRejected, match="no preset 7") as err:
        await driver.call("preset_recall", {"n": 7})
    assert err.value.code == "no_preset" and driver.health.online  # a refused command: the camera still answers


async def test_stream_uris_carry_the_credentials_and_name_the_profile(server: OnvifServer) -> None:
    camera = OnvifCamera(
        user="admin", password="p@ss", rtsp="rtsp://127.0.0.1:8554/main", rtsp_sub="rtsp://127.0.0.1:8554/sub"
    )
    async with OnvifServer(camera, host="127.0.0.1", port=0, report=lambda line: None) as other:
        driver = OnvifDriver(PROFILE, OnvifAddress("127.0.0.1", other.port, "admin", "p@ss"), device_id="cam")
        try:
            assert await driver.stream_uri() == "rtsp://admin:p%40ss@127.0.0.1:8554/main"
            assert await driver.stream_uri("sub") == "rtsp://admin:p%40ss@127.0.0.1:8554/sub"
            assert urlsplit(await driver.stream_uri("main")).password == "p%40ss"
            with pytest.raises(ArgumentError, match="no media profile 'third'.*main, sub"):
                await driver.stream_uri("third")
        finally:
            await driver.close()


async def test_snapshot_is_the_cameras_jpeg(driver: OnvifDriver) -> None:
    assert isinstance(driver, MediaDriver)
    picture = await driver.snapshot("sub")
    assert picture[:2] == b"\xff\xd8" and picture[-2:] == b"\xff\xd9"
    with pytest.raises(DeviceRejected, match="bytes, at most 100") as err:
        await driver.snapshot("sub", max_bytes=100)  # a camera that sends too much is cut off
    assert err.value.code == "too_large"


async def test_a_camera_without_absolute_moves_refuses_goto_but_moves(server: OnvifServer) -> None:
    camera = OnvifCamera(user="admin", password="x", absolute_moves=False)
    async with OnvifServer(camera, host="127.0.0.1", port=0, report=lambda line: None) as other:
        driver = OnvifDriver(PROFILE, OnvifAddress("127.0.0.1", other.port, "admin", "x"), device_id="cam")
        try:
            with pytest.raises(DeviceRejected, match="neither AbsoluteMove nor RelativeMove"):
                await driver.call("goto", {"pan": 100, "tilt": 100})
            with pytest.raises(DeviceRejected, match="no absolute zoom"):
                await driver.call("zoom_to", {"position": 100})
            await driver.call("move", {"direction": "left"})
            assert camera.moving
            await driver.call("stop")
            assert "pan" not in await driver.poll()  # this camera reports no position, only whether it moves
        finally:
            await driver.close()


async def test_bad_arguments_are_refused_before_anything_is_sent() -> None:
    driver = OnvifDriver(PROFILE, OnvifAddress("127.0.0.1", 9, "admin", "x"), device_id="cam")  # nobody there
    with pytest.raises(ArgumentError, match="direction='sideways'"):
        await driver.call("move", {"direction": "sideways"})
    with pytest.raises(ArgumentError, match="n=300: out of range"):
        await driver.call("preset_recall", {"n": 300})
    with pytest.raises(ArgumentError, match="no command 'power_on'"):
        await driver.call("power_on")


async def test_open_driver_and_simulated_give_an_onvif_camera() -> None:
    async with simulated(PROFILE) as address:
        assert address.startswith("onvif://admin:") and "@127.0.0.1:" in address
        driver = open_driver(PROFILE, address, device_id="camera")
        try:
            assert isinstance(driver, OnvifDriver)
            assert (await driver.call("get_position")).fields["moving"] is False
        finally:
            await driver.close()


async def test_presets_renumbered_behind_our_back_are_read_again(driver: OnvifDriver, camera: OnvifCamera) -> None:
    await driver.call("preset_set", {"n": 4})
    await driver.call("preset_recall", {"n": 4})  # the presets are known now, and kept a while
    (token,) = camera.presets
    kept = camera.head.presets.pop(token)
    camera.head.presets["9"] = replace(kept, token="9")  # the camera's own web page moved it to slot 9
    recalled = await driver.call("preset_recall", {"n": 4})  # the old token is refused (NoToken): read again, go
    assert recalled.fields["preset"] == 4 and driver.presets is not None
    assert [p.token for p in driver.presets.presets] == ["9"]


async def test_the_password_goes_only_to_the_cameras_own_host(server: OnvifServer) -> None:
    """Reached as "localhost", the camera names 127.0.0.1 in its URIs: no credentials are sent there."""
    driver = OnvifDriver(PROFILE, OnvifAddress("localhost", server.port, "admin", "s3cret"), device_id="camera")
    try:
        uri = await driver.stream_uri()
        assert urlsplit(uri).hostname == "127.0.0.1" and "s3cret" not in uri and "@" not in uri
        with pytest.raises(DeviceRejected, match="refused the picture") as err:
            await driver.snapshot()  # fetched without the password: the camera says 401
        assert err.value.code == "snapshot_refused" and driver.health.online  # the camera itself is fine
    finally:
        await driver.close()
