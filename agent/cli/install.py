"""``classroom-agent install-service``: the agent as a systemd service of the classroom PC."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import agent
from agent.errors import ConfigError
from hosting.install import absolute, add_install_options, entry_point, install
from hosting.unit import ServiceUnit

if TYPE_CHECKING:
    from agent.config.site import SiteConfig

NAME = "classroom-agent"
# Serial ports (dialout), USB cameras (video) and the microphone (audio) belong to these groups on Debian.
GROUPS = ("dialout", "video", "audio")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``install-service`` subcommand."""
    cmd = sub.add_parser("install-service", help="write a systemd unit that runs this agent at every boot")
    cmd.add_argument("--config", required=True, metavar="FILE", help="the site config the service runs with")
    cmd.add_argument("--broker", metavar="URL", help="mqtt://HOST:PORT or mqtts://HOST:PORT, overrides the config")
    add_install_options(cmd)


def run(args: argparse.Namespace) -> int:
    """Check the config (every problem at once), then print or write the unit."""
    from agent.config.site import load_config  # with the broker's library: only when the command runs
    from contract.mqtt import BrokerAddress

    config_path = Path(absolute(args.config))
    config = load_config(config_path, broker_url=args.broker)
    if args.broker and BrokerAddress.parse(args.broker).password:
        raise ConfigError("--broker: a password in the URL would be shown by `ps`; put it in [broker] password")
    tls_files = [Path(f) for f in (config.broker.ca_file, config.broker.cert_file, config.broker.key_file) if f]
    if relative := [str(f) for f in tls_files if not f.is_absolute()]:
        raise ConfigError(f"[broker] {', '.join(relative)}: the service runs in /; give these files' absolute paths")
    command, environment = entry_point(NAME, "agent.cli", agent.__file__)
    broker = ["--broker", args.broker] if args.broker else []
    unit = ServiceUnit(
        description=f"classroom-agent {config.agent_id} ({config.room})",
        exec_start=(*command, "run", "--config", str(config_path), *broker),
        user=args.user,
        writable=tuple(absolute(folder) for folder in _folders(config)),
        groups=GROUPS,
        environment=environment,
        private_tmp=False,  # the courseware screen is captured through X11's socket in /tmp/.X11-unix
        low_port=0 < config.http_port < 1024,
    )
    key = [Path(config.broker.key_file)] if config.broker.key_file else []
    return install(unit, NAME, args, reads=[config_path, *tls_files], secrets=[config_path] * _secret(config) + key)


def _secret(config: SiteConfig) -> bool:
    """Whether the config holds a password: the broker's, the page's pin, the upload token, a device's or camera's."""
    logins = [d.address for d in config.devices] + [s.url for s in config.sources]
    upload = config.upload.token if config.upload else ""
    return bool(config.broker.password or config.http_pin or upload or any("@" in text for text in logins))


def _folders(config: SiteConfig) -> list[Path]:
    """Where the agent writes: agent.db's folder and the recordings' (by default inside it)."""
    return [config.data_dir, *([config.recording.dir] if config.recording else [])]
