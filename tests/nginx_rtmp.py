"""Real nginx with its RTMP module (Debian's nginx + libnginx-mod-rtmp) for tests: RTMP in, HLS out.

Each `LocalNginx` has its own prefix folder, config, RTMP and HTTP ports on 127.0.0.1, and runs in
the foreground as one process (``daemon off; master_process off``), never the system's nginx.
Its ``live`` application takes a push at ``rtmp://127.0.0.1:PORT/live/KEY``, plays it to RTMP
viewers at the same URL, and writes HLS to ``hls/KEY.m3u8`` under the prefix (also served over
HTTP at ``/hls/KEY.m3u8``).  `kill` and `start` again keep the ports: a restart mid-lesson.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from central.mosquitto import free_port

MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")


def nginx_binary() -> str | None:
    """Debian's nginx (in /usr/sbin), or None."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def missing() -> str:
    """Why the nginx tests cannot run here ("" when they can)."""
    if nginx_binary() is None or not MODULE.exists():
        return "nginx with its RTMP module is not installed (scripts/system-deps --test installs it)"
    return ""


def config(prefix: Path, rtmp_port: int, http_port: int) -> str:
    """An nginx that takes RTMP on 127.0.0.1 and writes (and serves) HLS, all inside `prefix`."""
    temp = "\n".join(f"  {kind}_temp_path {prefix}/tmp/{kind};" for kind in ("client_body", "proxy", "fastcgi"))
    temp += f"\n  uwsgi_temp_path {prefix}/tmp/uwsgi;\n  scgi_temp_path {prefix}/tmp/scgi;"
    return f"""load_module {MODULE};
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 128; }}
rtmp {{
  server {{
    listen 127.0.0.1:{rtmp_port};
    chunk_size 4096;
    application live {{
      live on;
      record off;
      hls on;
      hls_path {prefix}/hls;
      hls_fragment 1s;
      hls_playlist_length 30s;
    }}
  }}
}}
http {{
  access_log off;
{temp}
  server {{
    listen 127.0.0.1:{http_port};
    location /hls/ {{
      root {prefix};
      types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
    }}
  }}
}}
"""


class LocalNginx:
    """nginx-rtmp in the foreground with its own prefix, config and loopback ports."""

    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix
        self.rtmp_port = free_port()
        self.http_port = free_port()
        self.conf = prefix / "nginx.conf"
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, key: str, app: str = "live") -> str:
        """Where to push (and to play) stream `key`."""
        return f"rtmp://127.0.0.1:{self.rtmp_port}/{app}/{key}"

    def playlist(self, key: str) -> Path:
        """The HLS playlist nginx writes for stream `key`."""
        return self.prefix / "hls" / f"{key}.m3u8"

    def start(self, timeout: float = 20.0) -> LocalNginx:
        """Start (again) and wait until the RTMP port takes connections."""
        for folder in ("hls", "tmp"):
            (self.prefix / folder).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(config(self.prefix, self.rtmp_port, self.http_port))
        binary = nginx_binary()
        assert binary is not None
        command = [binary, "-p", str(self.prefix), "-c", str(self.conf), "-e", str(self.prefix / "error.log")]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                stderr = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"nginx exited at start: {stderr.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.rtmp_port), timeout=1):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not listen on {self.rtmp_port} within {timeout} s") from None
                time.sleep(0.1)

    def kill(self) -> None:
        """kill -9: every connection drops at once (a crash or a pulled cable at the platform)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(10)
            if self._process.stderr is not None:
                self._process.stderr.close()
            self._process = None

    def __enter__(self) -> LocalNginx:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.kill()
