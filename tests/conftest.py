"""Fixtures shared by every test package: a real Mosquitto of the test's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from central.mosquitto import LocalBroker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A Mosquitto on its own loopback port with its own config and data, stopped after the test."""
    with LocalBroker(tmp_path / "broker") as running:
        yield running
