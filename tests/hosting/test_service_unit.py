"""The systemd unit as text: what it grants, how it quotes, what it refuses; systemd's own parser reads it back."""

from __future__ import annotations

import argparse
import getpass
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from hosting.errors import InstallError
from hosting.install import install
from hosting.unit import ServiceUnit

SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"


def unit(**changes: object) -> ServiceUnit:
    fields: dict[str, object] = {
        "description": "classroom-agent room-101 (初一(3)班 录播教室)",
        "exec_start": ("/opt/classroom/bin/classroom-agent", "run", "--config", "/etc/classroom/site.toml"),
        "user": "classroom",
        "writable": (PurePosixPath("/var/lib/classroom"), PurePosixPath("/var/lib/classroom/recordings")),
        "groups": ("dialout",),
    }
    fields.update(changes)
    return ServiceUnit(**fields)  # type: ignore[arg-type]


def settings(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def verify(path: Path) -> subprocess.CompletedProcess[str]:
    if not Path(SYSTEMD_ANALYZE).is_file():
        pytest.skip("systemd-analyze is not installed (Debian: systemd)")
    return subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", str(path)], capture_output=True, text=True, timeout=60, cwd=path.parent
    )


def test_the_unit_confines_the_service_to_its_own_folders_and_restarts_it_on_failure() -> None:
    found = settings(unit().render())
    assert found["User"] == "classroom"
    assert found["SupplementaryGroups"] == "dialout"
    assert found["ProtectSystem"] == "strict"
    assert found["ReadWritePaths"] == "/var/lib/classroom"  # the recordings folder is inside it
    assert found["NoNewPrivileges"] == "yes"
    assert found["Restart"] == "on-failure"
    assert found["RestartPreventExitStatus"] == "2"  # a config error is not retried for ever
    assert found["StandardOutput"] == found["StandardError"] == "journal"
    assert found["ExecStart"] == "/opt/classroom/bin/classroom-agent run --config /etc/classroom/site.toml"
    assert found["WantedBy"] == "multi-user.target"
    assert "AmbientCapabilities" not in found


def test_a_port_below_1024_gets_that_one_capability_and_no_other() -> None:
    found = settings(unit(low_port=True).render())
    assert found["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE"


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"description": "room\n[Service]\nExecStartPre=/bin/rm -rf /"}, "control character"),
        ({"user": "root;rm"}, "user: got 'root;rm'"),
        ({"user": ""}, "user: got ''"),
        ({"writable": (PurePosixPath("/"),)}, "a system folder"),
        ({"writable": (PurePosixPath("/etc"),)}, "a system folder"),
        ({"writable": (PurePosixPath("data"),)}, "expected an absolute path"),
        ({"exec_start": ("classroom-agent", "run")}, "program: got"),
        ({"environment": (("PYTHON PATH", "/x"),)}, "expected a variable name"),
    ],
)
def test_a_unit_that_would_say_something_else_than_meant_is_refused(changes: dict[str, object], problem: str) -> None:
    with pytest.raises(InstallError, match=problem):
        unit(**changes).render()


def test_systemd_reads_back_paths_with_spaces_and_percent_signs_as_one_word(tmp_path: Path) -> None:
    # A school's folder names: a space splits a word, %h would be the home folder, $X a variable.
    folder = tmp_path / "初一 (3)班 100%h $HOME"
    folder.mkdir()
    program = folder / "classroom agent"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    text = unit(
        exec_start=(str(program), "run", "--config", str(folder / "site.toml")),
        user=getpass.getuser(),
        writable=(PurePosixPath(folder),),
        groups=(),
    ).render()
    path = tmp_path / "classroom-quoting.service"
    path.write_text(text)
    checked = verify(path)
    # Split at a space, or with %h expanded, the program would not exist and verify would say so.
    assert checked.returncode == 0, checked.stderr
    assert "not executable" not in checked.stderr
    assert "ignoring" not in checked.stderr, checked.stderr


def test_without_root_a_unit_is_not_written_under_etc() -> None:
    # As a user other than root (injected: this test may run as root). An unknown --user too, so
    # that even a broken check would stop before writing anything to /etc.
    args = argparse.Namespace(dry_run=False, unit_dir=Path("/etc/systemd/system"))
    with pytest.raises(InstallError, match=r"needs root: run it with sudo"):
        install(unit(user="no-such-user-here"), "classroom-test-refusal", args, euid=1000)
    assert not Path("/etc/systemd/system/classroom-test-refusal.service").exists()
