"""``classroom-agent record``: record sources straight to disk, without the service.

For technicians testing cameras: the same compositor, segments and final MP4 as the service.
The media stack (PyAV, OpenCV, numpy) is imported here, inside the command, never by `agent.cli`.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from agent.sources import EXPECTED, make_source
from drivers.errors import ArgumentError

if TYPE_CHECKING:
    from streaming.director import Director
    from streaming.reconnect import Outage
    from streaming.recorder import AudioSource, Recorder, Recording
    from streaming.source import Image, Source

FIRST_FRAME_WAIT_S = 10.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare the `record` subcommand."""
    rec = sub.add_parser("record", help="record sources into segments and a final MP4, without the service")
    rec.add_argument("urls", nargs="+", metavar="URL", help=EXPECTED)
    rec.add_argument(
        "--layout", default="single", help="single, pip, side_by_side, grid, courseware_teacher or directed"
    )
    rec.add_argument("--seconds", type=float, required=True, metavar="N", help="how long to record")
    rec.add_argument("--out", required=True, metavar="DIR", help="where segments, index.json and the MP4 go")
    rec.add_argument("--size", default="1280x720", metavar="WxH", help="output size (default 1280x720)")
    rec.add_argument("--fps", type=float, default=30.0, metavar="N", help="output frame rate (default 30)")
    rec.add_argument("--corner", default="bottom-right", help="inset corner for pip / courseware_teacher")
    rec.add_argument(
        "--audio", default="silence", metavar="SOUND",
        help="the AAC track: silence, tone, none, mic, mic:DEVICE, or an RTSP source's name (its sound, e.g. rtsp1)",
    )  # fmt: skip
    rec.add_argument(
        "--director", metavar="RULES",
        help='--layout directed: rules in priority order, e.g. "courseware active=courseware; always=teacher"',
    )  # fmt: skip
    rec.add_argument("--hold", type=float, default=5.0, metavar="S", help="the director's minimum hold (default 5)")
    rec.add_argument("--segment-s", type=float, default=600.0, metavar="S", help="start a new file every S seconds")


def parse_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` -> ``(1280, 720)``."""
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match:
        raise ArgumentError(f"--size {text!r}: expected WxH, e.g. 1280x720")
    return int(match.group(1)), int(match.group(2))


def run(args: argparse.Namespace) -> int:
    """Record for `--seconds`, then print where the final MP4 is and how long it runs."""
    size = parse_size(args.size)
    if args.seconds <= 0 or args.fps <= 0 or args.segment_s <= 0 or args.hold < 0:
        raise ArgumentError("--seconds, --fps and --segment-s must be positive (--hold 0 or more)")

    from streaming.compose import Compositor, Layout, LayoutError
    from streaming.recorder import Recorder, RecordingError

    names = [_source_name(url, i) for i, url in enumerate(args.urls)]
    try:
        layout = Layout(args.layout, tuple(names), size=size, corner=args.corner)
    except LayoutError as exc:
        raise ArgumentError(str(exc)) from exc
    director = _director(args, names)
    sources = [make_source(url, name, size, args.fps) for url, name in zip(args.urls, names, strict=True)]
    audio, release = _audio(args.audio, dict(zip(names, sources, strict=True)))
    compositor = Compositor(layout, sources)
    picture: Callable[[], Image] = compositor.render
    if director is not None:
        from streaming.director import DirectedPicture

        picture = DirectedPicture(compositor, director).render
    recorder = Recorder(
        args.out, size, args.fps, picture=picture, audio=audio, duration_s=args.seconds, segment_s=args.segment_s,
    )  # fmt: skip
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        recording = _record(recorder, sources)
    except RecordingError as exc:
        print(f"classroom-agent: record failed: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        release()
        for source in sources:
            source.stop()
    print(
        f"{recording.final}  {recording.duration_s:.2f} s  {recording.frames} frames  {recording.segments} segment(s)"
    )
    return _report_sources(sources)


def _record(recorder: Recorder, sources: list[Source]) -> Recording:
    """Start the sources, record until the duration is up (or Ctrl-C / SIGTERM), finish the MP4."""
    for source in sources:
        source.start()
    for source in sources:
        source.wait_newer(0, FIRST_FRAME_WAIT_S)  # a source that stays silent shows "no signal"
    recorder.start()
    try:
        recorder.wait()
    except KeyboardInterrupt:
        print("record: interrupted, finishing the recording", file=sys.stderr)
    return recorder.stop()


def _director(args: argparse.Namespace, names: list[str]) -> Director | None:
    """``--director RULES`` for ``--layout directed``: ``WHEN=SHOW`` pairs separated by ``;``."""
    if args.layout != "directed":
        if args.director:
            raise ArgumentError("--director: only for --layout directed")
        return None
    if not args.director:
        raise ArgumentError('--layout directed needs --director RULES, e.g. "slides active=slides; always=teacher"')
    from streaming.director import Director, DirectorError, Rule

    rules = []
    for part in filter(None, (p.strip() for p in args.director.split(";"))):
        when, equals, show = (x.strip() for x in part.partition("="))
        if not equals:
            raise ArgumentError(f"--director: got {part!r}, expected WHEN=SHOW")
        try:
            rule = Rule(when, show)
            watched = rule.watches
        except DirectorError as exc:
            raise ArgumentError(f"--director: {exc}") from exc
        for name in (watched, show):
            if name is not None and name not in names:
                raise ArgumentError(f"--director: {name!r} is not a source; the sources are {', '.join(names)}")
        rules.append(rule)
    try:
        return Director(rules, args.hold)
    except DirectorError as exc:
        raise ArgumentError(f"--director: {exc}") from exc


def _audio(spec: str, sources: dict[str, Source]) -> tuple[AudioSource | None, Callable[[], None]]:
    """The recording's sound, as ``[recording] audio`` picks it, and how to let go of it afterwards."""
    from agent.commands.table import Rejected
    from agent.recording.sound import open_sound

    try:
        return open_sound(spec, sources)
    except Rejected as exc:
        raise ArgumentError(f"--{exc}") from exc


def _report_sources(sources: list[Source]) -> int:
    """One line per source: its gaps (a camera that dropped out) or why it never showed a picture."""
    from streaming.reconnect import ReconnectingSource

    status = 0
    for source in sources:
        health = source.health()
        outages: list[Outage] = source.outages() if isinstance(source, ReconnectingSource) else []
        if health.last_frame_age_s is None:
            print(f"{source.name}: no picture at all ({health.error or 'no frames'})")
            status = 1
        elif outages:
            gaps = ", ".join(f"{o.seconds:.1f} s ({o.error})" for o in outages)
            print(f"{source.name}: {len(outages)} gap(s): {gaps}; reconnected {health.reconnects} time(s)")
        else:
            print(f"{source.name}: no gaps")
    return status


def _source_name(url: str, position: int) -> str:
    scheme, _, rest = url.partition(":")
    if scheme == "synthetic" and rest:
        return rest
    return f"{scheme.split('/')[0] or 'source'}{position + 1}"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
