"""The topic tree v1: ``classroom/v1/<site>/<agent>/<kind>[/<rest>]``, keyed on a stable agent id."""

from __future__ import annotations

from dataclasses import dataclass

from contract.errors import PayloadError

ROOT = "classroom/v1"
CENTRAL_STATUS = f"{ROOT}/_central/status"
FLEET = f"{ROOT}/+/+/#"


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic: ``classroom/v1/<site>/<agent>/<kind>[/<rest>]``."""

    site: str
    agent: str
    kind: str
    rest: str = ""

    def __str__(self) -> str:
        """The topic string."""
        tail = f"/{self.rest}" if self.rest else ""
        return f"{ROOT}/{self.site}/{self.agent}/{self.kind}{tail}"

    @classmethod
    def parse(cls, topic: str) -> Topic:
        """Split a fleet topic; PayloadError when it is not one of ours."""
        parts = topic.split("/")
        if len(parts) < 5 or "/".join(parts[:2]) != ROOT or not all(parts[2:5]):
            raise PayloadError(f"topic {topic!r} is not classroom/v1/<site>/<agent>/<kind>")
        return cls(parts[2], parts[3], parts[4], "/".join(parts[5:]))


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics of one agent."""

    site: str
    agent: str

    def _t(self, kind: str, rest: str = "") -> str:
        return str(Topic(self.site, self.agent, kind, rest))

    @property
    def status(self) -> str:
        """Retained online/offline/lost; the Will."""
        return self._t("status")

    @property
    def info(self) -> str:
        """Retained room, hostname, version, devices."""
        return self._t("info")

    def state(self, device: str) -> str:
        """Retained last known state of one device."""
        return self._t("state", device)

    @property
    def telemetry(self) -> str:
        """Periodic health, QoS 0."""
        return self._t("telemetry")

    @property
    def event(self) -> str:
        """Alarms and audit events."""
        return self._t("event")

    def cmd(self, name: str = "#") -> str:
        """Commands from the centre (``#``: all of them)."""
        return self._t("cmd", name)

    @property
    def reply(self) -> str:
        """Replies to commands."""
        return self._t("reply")

    def rtc(self, peer: str) -> str:
        """WebRTC signalling this agent sends to agent `peer` (written in our own subtree)."""
        return self._t("rtc", peer)

    @property
    def rtc_inbox(self) -> str:
        """The subscription for signalling addressed to this agent, from any site and agent."""
        return f"{ROOT}/+/+/rtc/{self.agent}"
