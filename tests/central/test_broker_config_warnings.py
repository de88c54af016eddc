"""`broker-config` warns when an account keeps a password from the examples (it still writes the files)."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry import broker_config_cli

from central import broker_config

EXAMPLE_REGISTRY = Path(__file__).parents[2] / "examples" / "broker-registry.toml"


def test_the_example_registry_as_it_is_gets_a_warning_naming_every_account(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert broker_config_cli("--registry", str(EXAMPLE_REGISTRY), "--out", str(tmp_path / "out")) == 0
    err = capsys.readouterr().err
    assert err.startswith("broker-config: warning: ") and err.count("\n") == 1
    for name in ("room-101", "room-102", "room-201", "central", "tech-wang"):
        assert name in err
    assert "change-me" not in err  # the warning never repeats a password
    assert (tmp_path / "out" / broker_config.PASSWORD_FILE).exists()


def test_real_passwords_get_no_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--agent", "school-a/room-101:Zq7-vLq2-8kPp", "--user", "central:long random words here:central"]
    assert broker_config_cli(*argv, "--out", str(tmp_path / "out")) == 0
    assert capsys.readouterr().err == ""
    assert broker_config_cli("--agent", "school-a/room-9:another-secret", "--out", str(tmp_path / "again")) == 0
    assert "room-9" in capsys.readouterr().err
