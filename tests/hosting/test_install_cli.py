"""``install-service`` and ``--version`` of both programs, run as school IT would run them.

The units are written to a temporary folder (never /etc) and checked by systemd's own
``systemd-analyze verify``, which also checks that ExecStart's program exists: the real console
scripts of the virtualenv these tests run in.
"""

from __future__ import annotations

import getpass
import grp
import os
import pwd
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from hosting import VERSION

BIN = Path(sys.executable).parent
AGENT = [str(BIN / "classroom-agent")] if (BIN / "classroom-agent").is_file() else [sys.executable, "-m", "agent.cli"]
CENTRAL = (
    [str(BIN / "classroom-central")] if (BIN / "classroom-central").is_file() else [sys.executable, "-m", "central.cli"]
)
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
ME = getpass.getuser()  # an existing user for --user (the tests never start the service)


def run(command: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120, check=False)


def settings(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def verify(unit: Path) -> None:
    if not Path(SYSTEMD_ANALYZE).is_file():
        pytest.skip("systemd-analyze is not installed (Debian: systemd)")
    checked = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=120, cwd=unit.parent
    )
    assert checked.returncode == 0, checked.stderr
    assert unit.name not in checked.stderr, checked.stderr  # no warning about any line of ours


def site_config(tmp_path: Path, **extra: str) -> Path:
    config = tmp_path / "etc" / "site.toml"
    config.parent.mkdir(parents=True)
    lines = [
        'agent_id = "room-101"',
        'site = "school-9"',
        'room = "初一(3)班"',
        f'data_dir = "{extra.get("data_dir", tmp_path / "lib" / "agent")}"',
        "[broker]",
        'url = "mqtt://127.0.0.1:1883"',
        "[[devices]]",
        'id = "camera"',
        'profile = "sony-visca"',
        'address = "/dev/ttyUSB0"',
    ]
    config.write_text("\n".join(lines) + "\n")
    config.chmod(0o640)
    return config


def test_both_programs_say_their_version() -> None:
    try:
        expected = metadata.version("classroom-agent")
    except metadata.PackageNotFoundError:
        expected = VERSION
    assert run(AGENT, "--version").stdout == f"classroom-agent {expected}\n"
    assert run(CENTRAL, "--version").stdout == f"classroom-central {expected}\n"


def test_agent_dry_run_prints_the_unit_and_writes_nothing(tmp_path: Path) -> None:
    config = site_config(tmp_path)
    units = tmp_path / "units"
    done = run(AGENT, "install-service", "--config", str(config), "--dry-run", "--unit-dir", str(units))
    assert done.returncode == 0, done.stderr
    found = settings(done.stdout)
    assert found["ExecStart"].startswith("/")  # the virtualenv's own program, by its absolute path
    assert found["ExecStart"].endswith(f" run --config {config}")
    assert found["User"] == "classroom"
    assert found["SupplementaryGroups"].split()[0] == "dialout"
    assert found["ReadWritePaths"] == str(tmp_path / "lib" / "agent")
    assert not units.exists()
    assert not (tmp_path / "lib").exists()


def test_agent_unit_is_written_with_its_data_folder_and_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    config = site_config(tmp_path)
    units = tmp_path / "units"
    done = run(AGENT, "install-service", "--config", str(config), "--user", ME, "--unit-dir", str(units))
    assert done.returncode == 0, done.stderr
    assert "systemctl enable --now classroom-agent" in done.stdout
    unit = units / "classroom-agent.service"
    assert settings(unit.read_text())["ExecStart"].endswith(f"run --config {config}")
    assert (tmp_path / "lib" / "agent").is_dir()  # ReadWritePaths= must exist when the service starts
    verify(unit)


def test_central_unit_runs_run_with_absolute_paths_and_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    password = tmp_path / "broker-password"
    password.write_text("s3cret\n")
    password.chmod(0o600)
    db = tmp_path / "lib" / "central" / "fleet.db"
    units = tmp_path / "units"
    done = run(
        CENTRAL, "install-service", "--broker", "mqtts://broker.school.cn:8883", "--username", "central",
        "--password-file", str(password), "--db", str(db), "--http", "0.0.0.0:8080", "--keep-audit-days", "365",
        "--user", ME, "--unit-dir", str(units),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "systemctl enable --now classroom-central" in done.stdout
    unit = units / "classroom-central.service"
    found = settings(unit.read_text())
    words = found["ExecStart"].split()
    assert words[words.index("run") + 1 :] == [
        "--db", str(db), "--broker", "mqtts://broker.school.cn:8883", "--username", "central",
        "--password-file", str(password), "--http", "0.0.0.0:8080", "--keep-audit-days", "365",
    ]  # fmt: skip
    assert "s3cret" not in unit.read_text()
    assert found["ReadWritePaths"] == str(db.parent)
    assert (db.parent / "recordings").is_dir()
    verify(unit)


def test_a_broker_password_on_the_command_line_is_refused(tmp_path: Path) -> None:
    for args in (["--password", "s3cret"], ["--broker", "mqtt://central:s3cret@127.0.0.1:1883"]):
        broker = [] if "--broker" in args else ["--broker", "mqtt://127.0.0.1:1883"]
        done = run(CENTRAL, "install-service", *broker, *args, "--db", str(tmp_path / "f.db"), "--dry-run")
        assert done.returncode == 2
        assert "use --password-file" in done.stderr
        assert "s3cret" not in done.stdout


def test_an_unknown_user_is_refused_with_the_command_that_creates_it(tmp_path: Path) -> None:
    done = run(
        AGENT, "install-service", "--config", str(site_config(tmp_path)), "--user", "no-such-user-here",
        "--unit-dir", str(tmp_path / "units"),
    )  # fmt: skip
    assert done.returncode == 2
    assert "useradd --system" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "units").exists()


def test_a_data_dir_that_would_open_the_whole_system_is_refused(tmp_path: Path) -> None:
    done = run(AGENT, "install-service", "--config", str(site_config(tmp_path, data_dir="/var")), "--dry-run")
    assert done.returncode == 2
    assert "writable folder: got '/var', a system folder" in done.stderr
    assert done.stdout == ""


def test_a_bad_site_config_is_one_error_listing_every_problem(tmp_path: Path) -> None:
    config = site_config(tmp_path)
    config.write_text(config.read_text().replace('agent_id = "room-101"', 'agent_id = ""\nflavour = 1'))
    done = run(AGENT, "install-service", "--config", str(config), "--dry-run")
    assert done.returncode == 2
    assert "flavour" in done.stderr and "agent_id" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: checks what another user (nobody) may read")
def test_a_config_the_service_user_cannot_read_or_everyone_can_is_pointed_out(tmp_path: Path) -> None:
    config = site_config(tmp_path)
    config.write_text(config.read_text().replace("[broker]", '[broker]\npassword = "s3cret"'))
    config.chmod(0o604)  # every user may read the broker password; the service's own group may not
    tmp_path.chmod(0o755)
    done = run(AGENT, "install-service", "--config", str(config), "--user", "nobody", "--unit-dir", str(tmp_path / "u"))
    assert done.returncode == 0, done.stderr
    assert f"{config} holds a password and every user of this machine can read it: chmod o-r {config}" in done.stderr
    config.chmod(0o600)  # now only root may read it
    done = run(AGENT, "install-service", "--config", str(config), "--user", "nobody", "--unit-dir", str(tmp_path / "u"))
    assert done.returncode == 0, done.stderr
    group = grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
    assert f"warning: nobody cannot read {config}, which the service needs: chgrp {group} {config}" in done.stderr
