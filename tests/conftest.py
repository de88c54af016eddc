"""Fixtures shared by every test package: a real Mosquitto of the test's own, the WebRTC guard."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from central.mosquitto import LocalBroker

# Test files whose peers send WebRTC media: they run only where the network is loopback alone.
NETNS_FILES = ("test_rtc", "test_whep", "test_whip", "test_sfu", "test_lesson")


def loopback_only() -> bool:
    """True inside a network namespace whose only interface is loopback (scripts/loopback-ns)."""
    return set(psutil.net_if_addrs()) <= {"lo"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark WebRTC tests `netns`; skip them, saying why, outside a loopback-only namespace."""
    isolated = loopback_only()
    for item in items:
        if item.path.name.startswith(NETNS_FILES) or item.get_closest_marker("netns"):
            item.add_marker(pytest.mark.netns)
            if not isolated:
                item.add_marker(
                    pytest.mark.skip(
                        reason="WebRTC test: needs a loopback-only network namespace "
                        "(run through scripts/loopback-ns, as `make test` does)"
                    )
                )


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A Mosquitto on its own loopback port with its own config and data, stopped after the test."""
    with LocalBroker(tmp_path / "broker") as running:
        yield running
