"""A simulated ONVIF Profile S PTZ camera, as product code.

SOAP 1.2 device, media and PTZ services with WS-Security digest auth, an HTTP snapshot, and a
WS-Discovery responder:

    camera = OnvifCamera(user="admin", password="admin", rtsp="rtsp://...")
    async with OnvifServer(camera, port=0, discovery_port=0) as server:
        server.url  # http://127.0.0.1:PORT/onvif/device_service
"""

from drivers.sim.onvif.camera import OnvifCamera
from drivers.sim.onvif.server import OnvifServer

__all__ = ["OnvifCamera", "OnvifServer"]
