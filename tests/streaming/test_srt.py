"""libsrt through ctypes: what a refused or unanswered SRT connect says, against ffmpeg's real SRT listener."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PASSPHRASE, listener, srt_missing, udp_port

from streaming.srt import LIBRARY_ENV, MESSAGE, SrtError, open_sender, refusal
from streaming.target import parse_target

needs_srt = pytest.mark.skipif(bool(srt_missing()), reason=srt_missing() or "-")


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[int]:
    """ffmpeg listening for SRT with the passphrase on a free port (killed afterwards)."""
    port = udp_port()
    process: subprocess.Popen[bytes] = listener(port, tmp_path / "received.ts", tmp_path / "listener.log")
    try:
        yield port
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize(
    ("code", "reject", "words"),
    [
        (1002, 10, "refused the connection: wrong passphrase"),
        (1002, 11, "one side has a passphrase and the other none"),
        (1002, 1403, "refused the stream (code 1403: forbidden): check the URL's streamid"),
        (1002, 1409, "already being published"),
        (1002, 2001, "(code 2001: refused by the platform)"),
        (1002, 16, "no answer from srt://h:9000 within 5 s"),
        (1001, 0, "no answer from srt://h:9000 within 5 s"),
        (1002, 8, "refused the connection (Peer version too old)"),
        (2001, 0, "cannot connect to srt://h:9000: Peer version too old"),
    ],
)
def test_each_refusal_says_what_to_check(code: int, reject: int, words: str) -> None:
    assert words in refusal("srt://h:9000", code, reject, "Peer version too old")


@needs_srt
def test_a_caller_without_the_platforms_passphrase_is_told_so(platform: int) -> None:
    with pytest.raises(SrtError, match="one side has a passphrase and the other none"):
        open_sender(parse_target(f"srt://127.0.0.1:{platform}?streamid=abcd-1234").srt())


@needs_srt
def test_the_right_passphrase_connects_and_whole_messages_go_out(platform: int) -> None:
    sender = open_sender(parse_target(f"srt://127.0.0.1:{platform}?passphrase={PASSPHRASE}").srt())
    packet = b"\x47" + bytes(187)  # one MPEG-TS packet
    try:
        assert sender.write(packet) == 188 and sender.bytes_sent == 0  # not a whole message yet
        assert sender.write(packet * 7) == 7 * 188 and sender.bytes_sent == MESSAGE  # one went, one packet waits
    finally:
        sender.close()
    assert sender.bytes_sent == 8 * 188  # the rest went at close


@needs_srt
def test_nobody_listening_is_no_answer_within_the_deadline() -> None:
    with pytest.raises(SrtError, match=r"no answer from srt://127\.0\.0\.1:\d+ within 5 s"):
        open_sender(parse_target(f"srt://127.0.0.1:{udp_port()}?streamid=abcd-1234").srt())


def test_a_missing_library_says_which_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LIBRARY_ENV, "/nonexistent/libsrt.so.1.5")
    with pytest.raises(SrtError, match="apt-get install libsrt1.5-gnutls"):
        open_sender(parse_target("srt://127.0.0.1:9?streamid=abcd-1234").srt())
