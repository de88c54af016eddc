"""Auto-tracking: find the teacher and the students who stand up, and direct the PTZ cameras.

Everything here is sans-IO: pictures and the time come in, camera commands and director cues
come out; nothing opens a device or a thread.  OpenCV only (its built-in HOG people detector,
frame differencing after camera-motion compensation, colour histograms), so no model is ever
fetched at run time.

- `geometry`: normalised boxes and the zones a technician draws (podium, blackboard, door)
- `figures`, `scenes`: synthetic classrooms rendered for tests, benchmarks and the demo
- `optics`: what a simulated PTZ camera sees of a wide picture at its pan / tilt / zoom
- `motion`, `people`, `target`: camera-motion compensation, people detection, the one target
- `follow`: the PTZ controller (dead zone, speed from the error, zoom for height, return home)
- `standing`, `board`: a student who stands up; the teacher writing at the blackboard
- `quality`, `rig`: the measured figures and the closed loop that measures them
"""
