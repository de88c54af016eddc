"""A real RTSP camera for tests: GStreamer's RTSP server serving H.264 video and AAC audio.

Run with Debian's own interpreter (it has `gi` and GstRtspServer; the project venv does not):

    /usr/bin/python3 tests/streaming/rtsp_server.py --port 8554 --path /cam --width 640 --height 360 --fps 25

Prints "ready" on stdout once it listens on 127.0.0.1:PORT.  Serves until killed.
"""

from __future__ import annotations

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def aac_encoder() -> str:
    """The first AAC encoder this GStreamer has (plugins differ between installs)."""
    for name in ("avenc_aac", "voaacenc", "faac"):
        if Gst.ElementFactory.find(name) is not None:
            return name
    raise SystemExit("no AAC encoder: install gstreamer1.0-libav")


def launch_line(width: int, height: int, fps: int) -> str:
    """The pipeline each client gets: live test video as H.264 (pt 96) and a tone as AAC (pt 97)."""
    video = (
        f"videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},framerate={fps}/1 "
        f"! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} "
        "! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1"
    )
    audio = (
        "audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=48000,channels=2 ! audioconvert "
        f"! {aac_encoder()} ! rtpmp4gpay name=pay1 pt=97"
    )
    return f"( {video} {audio} )"


def main() -> int:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/cam")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=int, default=25)
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(args.width, args.height, args.fps))
    factory.set_shared(True)  # one encoder for all clients, like a camera
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        return 1
    print("ready", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
