"""PC health with psutil: telemetry for the centre, and the disk-low alarm."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psutil

from agent.alarms import Alarms
from contract import Telemetry, now_iso

log = logging.getLogger(__name__)

# Clear the disk alarm only once free space is this much above the threshold (no flapping).
HYSTERESIS_PERCENT = 2.0


def read_telemetry(disk_path: Path, extra: dict[str, object] | None = None) -> Telemetry:
    """One reading of CPU, memory, disk and temperatures (blocking: call from a thread)."""
    disk = psutil.disk_usage(str(disk_path))
    temperatures: dict[str, float] = {}
    sensors = getattr(psutil, "sensors_temperatures", None)  # absent on Windows and macOS
    if sensors is not None:
        try:
            for chip, readings in sensors().items():
                for i, reading in enumerate(readings):
                    temperatures[f"{chip}.{reading.label or i}"] = round(float(reading.current), 1)
        except (OSError, RuntimeError):
            pass
    return Telemetry(
        ts=now_iso(),
        cpu_percent=psutil.cpu_percent(interval=None),
        memory_percent=psutil.virtual_memory().percent,
        disk_free_bytes=int(disk.free),
        disk_percent=float(disk.percent),
        temperatures=temperatures,
        uptime_s=round(time.time() - psutil.boot_time(), 1),
        extra=extra or {},
    )


class HealthService:
    """Every interval: read the PC's health, raise or clear the disk alarm, send telemetry."""

    def __init__(
        self,
        disk_path: Path,
        interval_s: float,
        disk_low_percent: float,
        alarms: Alarms,
        send: Callable[[Telemetry], Awaitable[None]],
        extra: Callable[[], dict[str, object]] | None = None,
    ) -> None:
        """`extra` adds the agent's own figures (devices online, outbox size)."""
        self.disk_path = disk_path
        self.interval_s = interval_s
        self.disk_low_percent = disk_low_percent
        self.alarms = alarms
        self.send = send
        self.extra = extra or dict
        self.last: Telemetry | None = None

    async def run(self) -> None:
        """Measure and report until cancelled."""
        psutil.cpu_percent(interval=None)  # the first reading only starts the measurement
        while True:
            await self.once()
            await asyncio.sleep(self.interval_s)

    async def once(self) -> Telemetry:
        """One measurement, alarm check and report."""
        telemetry = await asyncio.to_thread(read_telemetry, self.disk_path, self.extra())
        self.last = telemetry
        free_percent = 100.0 - telemetry.disk_percent
        if free_percent < self.disk_low_percent:
            gib = telemetry.disk_free_bytes / 2**30
            message = f"{free_percent:.1f}% ({gib:.1f} GiB) free on {self.disk_path}"
            params = {"free_percent": round(free_percent, 1), "free_gb": round(gib, 1)}
            self.alarms.raise_("disk_low", "critical", message, params=params)
        elif free_percent >= self.disk_low_percent + HYSTERESIS_PERCENT:
            self.alarms.clear("disk_low")
        await self.send(telemetry)
        return telemetry
