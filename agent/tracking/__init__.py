"""Auto-tracking on the classroom PC: one service per tracking camera, its commands, virtual cameras.

The decisions are sans-IO in ``streaming.tracking``; here they meet the room: pictures from the
configured sources, commands to the cameras through their device services, cues to the director.
"""
