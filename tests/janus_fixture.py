"""Real Janus (Debian's janus 1.1.2) for tests: its own config folder, HTTP API on a free loopback port.

Janus never gathers ICE candidates on a loopback interface, so `media_link` adds a veth pair
*inside* the test's loopback-only network namespace (10.254.0.1 on `sfu0`, nothing else
attached: every packet stays in the namespace), Janus's ICE is limited to it, and our peers
offer the same address.  Import the fixtures (`media_link`, `janus`) into a test module.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from central.mosquitto import free_port
from streaming.ice import IceSettings

JANUS_LIBS = Path("/usr/lib/x86_64-linux-gnu/janus")
LINK, ADDRESS = "sfu0", "10.254.0.1"
ICE = IceSettings(host_addresses=(ADDRESS,))
OTHER_PLUGINS = "audiobridge duktape echotest lua nosip recordplay sip streaming textroom videocall voicemail"
OTHER_TRANSPORTS = "mqtt nanomsg pfunix rabbitmq websockets"


def janus_config(folder: Path, port: int) -> dict[str, str]:
    """The files of a Janus that serves only the VideoRoom over HTTP on 127.0.0.1, ICE on `lo`, no STUN."""
    plugins = ",".join(f"libjanus_{name}.so" for name in OTHER_PLUGINS.split())
    transports = ",".join(f"libjanus_{name}.so" for name in OTHER_TRANSPORTS.split())
    return {
        "janus.jcfg": f"""general: {{
    configs_folder = "{folder}"
    plugins_folder = "{JANUS_LIBS}/plugins"
    transports_folder = "{JANUS_LIBS}/transports"
    events_folder = "{JANUS_LIBS}/events"
    loggers_folder = "{JANUS_LIBS}/loggers"
    debug_level = 4
}}
media: {{
    rtp_port_range = "20000-20999"
}}
nat: {{
    ice_enforce_list = "{LINK}"
    ignore_mdns = true
}}
plugins: {{ disable = "{plugins}" }}
transports: {{ disable = "{transports}" }}
loggers: {{ disable = "libjanus_jsonlog.so" }}
events: {{ broadcast = false }}
""",
        "janus.transport.http.jcfg": f"""general: {{
    json = "plain"
    base_path = "/janus"
    http = true
    ip = "127.0.0.1"
    port = {port}
    https = false
}}
admin: {{ admin_http = false, admin_https = false }}
""",
        "janus.plugin.videoroom.jcfg": "general: {\n}\n",
    }


class LocalJanus:
    """Janus in the foreground with its own config folder, HTTP API on a free loopback port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/janus"
        self.log = folder / "janus.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, text in janus_config(self.folder, self.port).items():
            (self.folder / name).write_text(text)
        command = ["janus", "-F", str(self.folder), "-C", str(self.folder / "janus.jcfg"), "-o"]
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"janus did not start: {self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        info = json.dumps({"janus": "info", "transaction": "ready?"}).encode()
        try:
            with urllib.request.urlopen(urllib.request.Request(self.url, data=info), timeout=1) as response:
                return bool(json.load(response).get("janus") == "server_info")
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture
def media_link() -> Iterator[str]:
    """A veth pair inside the loopback-only namespace, `ADDRESS` on `LINK`; removed afterwards."""
    if set(psutil.net_if_addrs()) != {"lo"}:
        pytest.skip("the SFU test adds a network link: only inside a loopback-only namespace (scripts/loopback-ns)")
    steps = [
        ["ip", "link", "add", LINK, "type", "veth", "peer", "name", f"{LINK}peer"],
        ["ip", "addr", "add", f"{ADDRESS}/32", "dev", LINK],
        ["ip", "link", "set", f"{LINK}peer", "up"],
        ["ip", "link", "set", LINK, "up"],
    ]
    try:
        for step in steps:
            subprocess.run(step, check=True, capture_output=True, timeout=10)
        yield ADDRESS
    finally:
        subprocess.run(["ip", "link", "del", LINK], capture_output=True, timeout=10)


@pytest.fixture
def janus(tmp_path: Path, media_link: str) -> Iterator[LocalJanus]:
    if shutil.which("janus") is None:
        pytest.skip("janus is not installed: apt-get install janus (scripts/system-deps --test)")
    server = LocalJanus(tmp_path / "janus")
    server.start()
    try:
        yield server
    finally:
        server.stop()
