"""Running our two programs on a school's machines: the version, the logs, the systemd unit.

It imports none of our packages, so the agent and the centre may both use it.
"""

from hosting.errors import InstallError
from hosting.version import VERSION, package_version

__all__ = ["VERSION", "InstallError", "package_version"]
