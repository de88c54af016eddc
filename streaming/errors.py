"""The root of streaming's errors, so a caller can catch everything video and sound raise in one clause."""

from __future__ import annotations


class StreamingError(Exception):
    """Root of every error raised by the streaming package; the subclass says what to do next."""
