"""Transcripts: recorded exchanges (sent bytes -> reply bytes) kept beside each profile."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.errors import ProfileError


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and everything the device sent back to it."""

    command: str
    args: dict[str, object]
    send: bytes
    reply: bytes
    expect: tuple[dict[str, object], ...]


@dataclass(frozen=True, slots=True)
class Transcript:
    """A profile's transcript: where it came from and its exchanges, in order."""

    source: str
    exchanges: tuple[Exchange, ...]


def transcript_path(profile_path: str | Path) -> Path:
    """``foo.toml`` -> ``foo.transcript.toml``."""
    path = Path(profile_path)
    return path.with_name(f"{path.stem}.transcript.toml")


def load_transcript(path: str | Path) -> Transcript:
    """Load a transcript file; bytes are hex (``send``) or text (``send_text``)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{path}: {exc}") from exc
    exchanges = []
    for i, ex in enumerate(data.get("exchange", [])):
        where = f"{path}: exchange[{i}]"
        try:
            exchanges.append(
                Exchange(
                    command=ex["command"],
                    args=dict(ex.get("args", {})),
                    send=_bytes(ex, "send"),
                    reply=_bytes(ex, "reply"),
                    expect=tuple(ex.get("expect", [])),
                )
            )
        except (KeyError, ValueError) as exc:
            raise ProfileError(f"{where}: {exc}") from exc
    return Transcript(str(data.get("source", "")), tuple(exchanges))


def _bytes(ex: dict[str, Any], key: str) -> bytes:
    if f"{key}_text" in ex:
        return str(ex[f"{key}_text"]).encode("latin-1")
    return bytes.fromhex(ex.get(key, ""))
