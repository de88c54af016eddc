"""Auto-tracking: analysis cost per frame, and how well a simulated PTZ camera follows, against anchors.

Everything runs frame by frame on the rig's own clock (`streaming.tracking.rig`): a scene is
rendered, a profile's simulator is told what tracking sends (as the profile's bytes), and the
camera's next picture is cropped where the simulator now points.  Nothing sleeps.

- cost: CPU time (thread_time) of `TeacherLoop.feed` per 640x360 picture over the synthetic
  podium walk, as a share of one core at 10 analysis pictures per second (goal <= 15 %); anchor:
  OpenCV's HOG people detector over each of the same pictures (the textbook "detect people in
  every frame"), measured on the same pictures in the same run.  Also `StandingWatch.feed` on
  the students' 640x360 panorama.
- quality: the share of frames with the target's centre in the middle third of the camera's
  picture, following vs a fixed wide shot (the anchor) on the synthetic podium walk (goal >= 80 %,
  two protocols), on two walkers of Debian's vtest.avi (goal >= 60 %), leaving by the door and
  coming back (re-acquire time); camera commands per minute while the teacher stands still, once
  framed (goal <= 6); director cuts on tracking cues in empty rooms and with seated students
  fidgeting (false cuts per minute, goal 0) and with three students standing up in turn (hits).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from drivers.profile import find_profile  # noqa: E402
from streaming.director import Director, Rule  # noqa: E402
from streaming.source import Image  # noqa: E402
from streaming.tracking.footage import VTEST, VTEST_WALKS, FootageScene  # noqa: E402
from streaming.tracking.geometry import Box, Zone, Zones  # noqa: E402
from streaming.tracking.optics import PtzOptics, field_ranges  # noqa: E402
from streaming.tracking.rig import Rig, RigRun, home_zones  # noqa: E402
from streaming.tracking.scenes import (  # noqa: E402
    COLUMNS,
    EMPTY,
    LEAVE_AND_RETURN,
    PODIUM_WALK,
    ROWS,
    STANDING_STILL,
    FrontScene,
    Scene,
    StudentsScene,
)
from streaming.tracking.standing import Seats, StudentsLoop  # noqa: E402

FPS = 10.0


def follow(scene: Scene, profile: str = "sony-visca", zones: Zones | None = None) -> tuple[RigRun, RigRun, Rig]:
    """The scene followed, and as a fixed wide shot (same scene, same truth)."""
    rig = Rig(scene, find_profile(profile), zones=zones)
    followed = rig.run(scene.duration)
    fixed = Rig(scene, find_profile(profile), zones=zones, fixed=True).run(scene.duration)
    return followed, fixed, rig


def hog_anchor(pictures: list[Image]) -> list[float]:
    """CPU seconds per picture of OpenCV's HOG people detector over the whole picture."""
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32))
    costs = []
    for picture in pictures:
        started = time.thread_time()
        hog.detectMultiScale(picture, winStride=(8, 8), padding=(8, 8), scale=1.05)
        costs.append(time.thread_time() - started)
    return costs


def views_of(scene: Scene, seconds: float, every: int) -> list[Image]:
    """Pictures a following camera saw (the anchor's input): every `every`-th frame of a followed run."""
    rig = Rig(scene, find_profile("sony-visca"))
    pictures = []
    for i in range(int(seconds * FPS)):
        rig.run(1 / FPS, start=i / FPS)
        if i % every == 0 and rig.last_view is not None:
            pictures.append(rig.last_view)
    return pictures


def ms(costs: list[float]) -> str:
    ordered = sorted(costs)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f"mean {1000 * statistics.fmean(costs):6.2f} ms  p95 {1000 * p95:6.2f} ms  max {1000 * ordered[-1]:6.1f} ms"


def cost_section(anchor_every: int) -> None:
    print("== analysis cost per 640x360 picture (CPU, one thread) ==")
    scene = FrontScene(PODIUM_WALK)
    followed, _, _ = follow(scene)
    ours = followed.costs
    pictures = views_of(scene, scene.duration, anchor_every)
    anchor = hog_anchor(pictures)
    share = 100 * statistics.fmean(ours) * FPS
    print(f"ours   TeacherLoop.feed             {ms(ours)}  (n={len(ours)})")
    print(f"anchor HOG people detector, whole   {ms(anchor)}  (n={len(anchor)})")
    print(f"ratio anchor/ours {statistics.fmean(anchor) / statistics.fmean(ours):.1f}x")
    verdict = "met" if share <= 15 else "NOT met"
    print(f"ours at {FPS:g} pictures/s: {share:.1f} % of one core   (goal <= 15 %: {verdict})")
    students = StudentsScene()
    loop = StudentsLoop(seats(students), 3)
    costs = []
    for i in range(int(students.duration * FPS)):
        picture = cv2.resize(students.render(i / FPS), (640, 360), interpolation=cv2.INTER_AREA)
        started = time.thread_time()
        loop.feed(picture, i / FPS)
        costs.append(time.thread_time() - started)
    print(f"ours   StandingWatch (panorama)     {ms(costs)}  ({100 * statistics.fmean(costs) * FPS:.1f} % at 10/s)")


def seats(scene: StudentsScene) -> list[Seats]:
    return [Seats(scene.standing_box((r, c)), 10 + r * COLUMNS + c) for r in range(ROWS) for c in range(COLUMNS)]


def line(name: str, followed: RigRun, fixed: RigRun, goal: float | None) -> None:
    ours, anchor = followed.quality.centred, fixed.quality.centred
    verdict = "" if goal is None else f"   goal >= {goal:.0%}: {'met' if ours >= goal else 'NOT met'}"
    print(
        f"{name:<34} centred: following {ours:6.1%}   fixed wide shot {anchor:6.1%}   "
        f"ratio {ours / max(anchor, 1e-9):4.2f}x   commands/min {followed.quality.commands_per_min:5.1f}{verdict}"
    )


def quality_section() -> None:
    print("\n== following: share of frames with the target centred (middle third) ==")
    for profile in ("sony-visca", "pelco-d"):
        followed, fixed, _ = follow(FrontScene(PODIUM_WALK), profile)
        line(f"synthetic podium walk ({profile})", followed, fixed, 0.80)
    scene = FrontScene(LEAVE_AND_RETURN)
    followed, fixed, _ = follow(scene)
    line("leaves by the door, comes back", followed, fixed, None)
    again = ", ".join(f"{s:.1f} s" for s in followed.quality.reacquire_s) or "never"
    print(f"{'':<34} re-acquired {again} after coming back")
    if VTEST.is_file():
        for walk in VTEST_WALKS:
            footage = FootageScene(VTEST, walk)
            _, cx, cy, h = walk.keyframes[0]
            width, height = footage.size
            start = Box((cx - 0.35 * h) / width, (cy - 0.9 * h) / height, 0.7 * h / width, 1.8 * h / height)
            optics = PtzOptics.for_profile(field_ranges(find_profile("sony-visca")))
            zones = home_zones(Zones((Zone("podium", start),)), optics, footage.size)
            followed, fixed, _ = follow(footage, zones=zones)
            line(f"vtest.avi walker {VTEST_WALKS.index(walk) + 1}", followed, fixed, 0.60)
            footage.close()
    else:
        print(f"vtest.avi: SKIPPED, {VTEST} is missing (Debian: apt-get install opencv-doc)")
    still = FrontScene(STANDING_STILL)
    followed, _, _ = follow(still)
    framed = [t for t, _ in followed.commands if t >= 15.0]
    per_min = len(framed) / ((still.duration - 15.0) / 60)
    verdict = "met" if per_min <= 6 else "NOT met"
    print(f"teacher standing still, once framed: {per_min:.1f} commands/min   (goal <= 6: {verdict})")


def cuts(loop_feed: Callable[[Image, float], bool], scene: Scene, cue: str, show: str) -> int:
    """Director cuts to `show` driven by a loop's cue over the scene."""
    director = Director([Rule(cue, show), Rule("always", "wide")], hold_s=3.0)
    shown = []
    for i in range(int(scene.duration * FPS)):
        now = i / FPS
        on = loop_feed(scene.render(now), now)
        director.set_cue(cue, on)
        shown.append(director.choose({show: 0.0, "wide": 0.0}, now))
    return sum(1 for a, b in zip(shown, shown[1:], strict=False) if a != b and b == show)


def cues_section() -> None:
    print("\n== director cuts on tracking cues ==")
    for name, scene in (
        ("empty students' room, flickering light", StudentsScene((), seated=False, flicker=0.05)),
        ("seated students fidgeting, nobody stands", StudentsScene((), flicker=0.05)),
        ("three students stand up in turn", StudentsScene()),
    ):
        loop = StudentsLoop(seats(scene), 3)

        def feed(picture: Image, now: float, loop: StudentsLoop = loop) -> bool:
            loop.feed(picture, now)
            return loop.cue

        count = cuts(feed, scene, "student standing", "closeup")
        print(f"{name:<42} cuts to the student close-up: {count}   ({count / (scene.duration / 60):.1f}/min)")
    empty = FrontScene(EMPTY, flicker=0.05)
    rig = Rig(empty, find_profile("sony-visca"))

    def board(picture: Image, now: float) -> bool:
        rig.loop.feed(picture, now)
        return rig.loop.status.writing

    count = cuts(board, empty, "teacher writing", "board")
    print(f"{'empty front of the room, flickering light':<42} cuts to the blackboard: {count}")
    print("false cuts per minute on empty rooms: goal 0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--anchor-every", type=int, default=4, help="run the HOG anchor on every Nth picture")
    args = parser.parse_args()
    started = time.monotonic()
    cost_section(args.anchor_every)
    quality_section()
    cues_section()
    print(f"\n(bench took {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
