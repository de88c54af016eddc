"""The layering and the no-cycle rule are checked, and the checks do fail when the rules are broken."""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("drivers", "streaming", "contract", "websession", "hosting", "agent", "central")


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    script = runpy.run_path(str(ROOT / "scripts/check-architecture"))  # the script `make lint` runs
    return list(script["cycles"](graph))


def _copy_tree(tmp: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp / name, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "pyproject.toml", tmp / "pyproject.toml")
    return tmp


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=300,
    )


def test_the_tree_keeps_its_layering_and_has_no_import_cycle() -> None:
    assert _lint_imports(ROOT).returncode == 0
    graph = grimp.build_graph(*PACKAGES)
    assert _cycles(graph) == []


def test_a_driver_importing_the_agent_breaks_the_layering(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    backoff = tree / "drivers/backoff.py"
    backoff.write_text(backoff.read_text() + "\nfrom agent.errors import AgentError  # noqa: E402\n")
    done = _lint_imports(tree)
    assert done.returncode == 1
    assert "drivers imports no other package of ours BROKEN" in done.stdout
    assert "drivers.backoff -> agent.errors" in done.stdout


def test_the_centre_importing_the_agent_breaks_the_layering(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    users = tree / "central/users.py"
    users.write_text(users.read_text() + "\nimport agent.store  # noqa: E402\n")
    done = _lint_imports(tree)
    assert done.returncode == 1
    assert "the centre never imports the agent BROKEN" in done.stdout


def test_a_late_import_that_closes_a_loop_is_a_cycle(tmp_path: Path) -> None:
    package = tmp_path / "loopy"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "plan.py").write_text("from loopy.parse import read\n")
    (package / "parse.py").write_text("def read():\n    from loopy.plan import read as again  # imported late\n")
    (package / "alone.py").write_text("import loopy.plan\n")
    sys.path.insert(0, str(tmp_path))
    try:
        graph = grimp.build_graph("loopy", cache_dir=None)
    finally:
        sys.path.remove(str(tmp_path))
    assert _cycles(graph) == [["loopy.parse", "loopy.plan"]]
