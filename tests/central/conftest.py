"""Fixtures of the central tests: the fleet store under test (SQLite, or PostgreSQL under CLASSROOM_TEST_DB)."""

from __future__ import annotations

from collections.abc import Iterator

import fleet_stores as stores
import pytest


@pytest.fixture(autouse=True)
def _drop_scratch_databases() -> Iterator[None]:
    yield
    stores.drop_made()


@pytest.fixture(scope="session")
def pg_admin() -> str:
    """The admin URL of a PostgreSQL server; the test is skipped, saying why, when none answers."""
    url, why = stores.server()
    if not url:
        pytest.skip(why)
    return url


@pytest.fixture
def pg_url(pg_admin: str) -> Iterator[str]:
    """A scratch PostgreSQL database of this test's own, dropped after it."""
    url = stores.scratch(pg_admin)
    try:
        yield url
    finally:
        stores.drop(url, pg_admin)
