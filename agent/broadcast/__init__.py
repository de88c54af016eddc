"""Live broadcasts (直播课堂): the room's programme pushed to a platform over RTMP or SRT."""
