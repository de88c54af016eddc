"""Every error streaming raises can be caught with one clause, and old ValueError catches still work."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import streaming
from streaming.compose import Layout, LayoutError
from streaming.errors import StreamingError

# The classes that were ValueErrors before the root existed; callers may still catch them as such.
STILL_VALUE_ERRORS = {"DirectorError", "LayoutError", "EncoderError"}


def public_exceptions() -> list[type[BaseException]]:
    """Every exception class defined (not imported) in a streaming module, private ones included."""
    found = []
    for info in pkgutil.iter_modules(streaming.__path__):
        module = importlib.import_module(f"streaming.{info.name}")
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__:
                found.append(value)
    return found


def test_the_walk_finds_every_known_error() -> None:
    names = {cls.__name__ for cls in public_exceptions()}
    assert names >= {
        "StreamingError", "DirectorError", "QueueClosed", "WhepRefused", "LayoutError", "RtcError",
        "EncoderError", "SourceUnavailable", "RecordingError", "SfuError", "_Cancelled",
    }  # fmt: skip


@pytest.mark.parametrize("cls", public_exceptions(), ids=lambda cls: cls.__name__)
def test_each_error_is_a_streaming_error(cls: type[BaseException]) -> None:
    assert issubclass(cls, StreamingError), f"{cls.__module__}.{cls.__name__} does not derive from StreamingError"


@pytest.mark.parametrize("cls", public_exceptions(), ids=lambda cls: cls.__name__)
def test_former_value_errors_still_are(cls: type[BaseException]) -> None:
    assert issubclass(cls, ValueError) == (cls.__name__ in STILL_VALUE_ERRORS)


def test_a_bad_layout_is_caught_by_the_root_and_by_value_error() -> None:
    with pytest.raises(StreamingError) as caught:
        Layout.from_dict({"name": "no-such-layout", "sources": ["camera"]})
    assert isinstance(caught.value, LayoutError)
    assert isinstance(caught.value, ValueError)
