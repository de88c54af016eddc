"""ONVIF IP cameras (Profile S): the driver behind the ``onvif`` profile, and WS-Discovery.

``address`` parses ``onvif://USER:PASS@HOST[:PORT]``; ``client`` is the one module that imports
onvif-zeep-async; ``driver`` holds `OnvifDriver`; ``commands`` maps the camera vocabulary onto PTZ
requests; ``media`` and ``ptz`` read the camera's answers (sans-IO); ``discovery`` finds cameras.
"""
