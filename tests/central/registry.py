"""The broker registry in tests: its [[agents]] and [[users]] rows, and ``classroom-central broker-config``.

Importable from the central tests (pytest puts tests/central on sys.path).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from central import broker_config


def agent_row(site: str, agent_id: str, password: str) -> str:
    """One [[agents]] row of a registry file."""
    return f'[[agents]]\nsite = "{site}"\nid = "{agent_id}"\npassword = "{password}"\n'


def user_row(name: str, password: str, role: str) -> str:
    """One [[users]] row of a registry file."""
    return f'[[users]]\nname = "{name}"\npassword = "{password}"\nrole = "{role}"\n'


def broker_config_args(*argv: str | Path) -> argparse.Namespace:
    """``classroom-central broker-config ARGV`` as the command line parses it."""
    parser = argparse.ArgumentParser(prog="classroom-central")
    broker_config.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["broker-config", *map(str, argv)])


def broker_config_cli(*argv: str | Path) -> int:
    """``classroom-central broker-config ARGV``, as the command line parses and runs it: its exit status."""
    return broker_config.run(broker_config_args(*argv))
