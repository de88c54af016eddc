"""The load for bench/central_ingest.py: one publisher process, simulating its share of the fleet.

Each simulated agent publishes its retained status + info once, then rounds of telemetry +
state/panel + state/camera (real contract payloads).  `publisher` sends them as pre-encoded QoS 1
PUBLISH packets over one connection with a large in-flight window, paced to a rate;
`paho_publisher` sends the same through paho-mqtt, to compare its CPU cost.  Both print "ready",
wait for "go" on stdin (every publisher starts at the same t0) and end with one JSON line of counts.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from contract import DeviceInfo, DeviceState, Info, Status, Telemetry, Topics, encode, now_iso, parse_iso, to_iso

SITE = "bench"
DEVICES = (("panel", "panel", "nec-p"), ("camera", "camera", "sony-visca"))
INFLIGHT = 2000  # unacked PUBLISHes per publisher connection
CHUNK = 200  # PUBLISHes per sendall
DEADLINE_S = 150.0  # per fleet size: from t0 until everything has been counted (or given up)


def agent_id(i: int) -> str:
    return f"room-{i:05d}"


def agent_messages(i: int, rounds: int) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]:
    """One agent's retained status + info, and its rounds of telemetry + device states."""
    topics, ts = Topics(SITE, agent_id(i)), now_iso()
    devices = tuple(DeviceInfo(d, kind, profile) for d, kind, profile in DEVICES)
    retained = [
        (topics.status, encode(Status("online", 1, ts, "bench").to_dict())),
        (topics.info, encode(Info(f"R{i}", f"pc-{i}", "bench", devices, 60.0).to_dict())),
    ]
    live, start = [], parse_iso(ts)
    for seq in range(1, rounds + 1):
        # A state's ts orders it (1 s resolution): rounds a second apart, as a real agent's are further.
        ts = to_iso(start + timedelta(seconds=seq))
        telemetry = Telemetry(ts, 12.5, 41.0, 120_000_000_000, 37.5, {"cpu": 48.0}, 3600.0 + seq, {"seq": seq})
        live.append((topics.telemetry, encode(telemetry.to_dict())))
        panel = {"power": "on", "input": "hdmi1", "volume": seq % 101, "seq": seq}
        live.append((topics.state("panel"), encode(DeviceState("panel", True, ts, panel).to_dict())))
        camera = {"preset": seq % 8, "seq": seq}
        live.append((topics.state("camera"), encode(DeviceState("camera", True, ts, camera).to_dict())))
    return retained, live


def packet(topic: str, payload: bytes, pid: int, retain: bool) -> bytes:
    """An MQTT 3.1.1 PUBLISH at QoS 1, encoded once before the clock starts."""
    body = len(topic).to_bytes(2, "big") + topic.encode() + pid.to_bytes(2, "big") + payload
    size, length = len(body), bytearray()
    while True:
        size, digit = divmod(size, 128)
        length.append(digit | (0x80 if size else 0))
        if not size:
            return bytes([0x32 | retain]) + bytes(length) + body


def fleet_messages(first: int, count: int, rounds: int) -> list[tuple[str, bytes, bool]]:
    """Agents [first, first+count): every retained status + info, then round after round (as a fleet sends)."""
    retained, per_agent = [], []
    for i in range(first, first + count):
        r, lv = agent_messages(i, rounds)
        retained += [(t, p, True) for t, p in r]
        per_agent.append(lv)
    live = [(t, p, "/state/" in t) for k in range(rounds) for agent in per_agent for t, p in agent[3 * k : 3 * k + 3]]
    return retained + live


class Acks:
    """PUBACKs counted by a reader thread (4 bytes each after the 4-byte CONNACK); the sender waits on it."""

    def __init__(self, sock: socket.socket, total: int) -> None:
        self.sock, self.total, self.count, self.last = sock, total, 0, 0.0
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        seen = 0
        while chunk := self.sock.recv(1 << 16):
            seen += len(chunk)
            with self.changed:
                self.count = max(0, (seen - 4) // 4)
                if self.count >= self.total and not self.last:
                    self.last = time.monotonic()
                self.changed.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)


def connect(url: str, client_id: str) -> socket.socket:
    """A socket that has sent MQTT 3.1.1 CONNECT (clean session); its CONNACK is the first 4 bytes to read."""
    host, port = url.removeprefix("mqtt://").split(":")
    sock = socket.create_connection((host, int(port)))
    name = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x00" + len(name).to_bytes(2, "big") + name
    sock.sendall(bytes([0x10, len(body)]) + body)
    return sock


def publisher(url: str, first: int, count: int, rounds: int, rate: float, hostile: float = 0.0) -> None:
    """Raw pre-encoded QoS 1 PUBLISHes over ONE connection, INFLIGHT unacked at most, paced when rate > 0.

    `hostile`: hostile messages mixed in per valid one (bench/hostile_load.py); `rate` stays the valid
    messages' rate, the hostile ones ride on top of it.
    """
    messages = fleet_messages(first, count, rounds)
    valid, kinds = len(messages), {}
    if hostile > 0:
        from hostile_load import mix_hostile

        messages, kinds = mix_hostile(messages, first, count, hostile, live_from=2 * count)
    rate *= len(messages) / valid
    packets = [packet(t, p, k % 65535 + 1, r) for k, (t, p, r) in enumerate(messages)]
    chunks = [b"".join(packets[k : k + CHUNK]) for k in range(0, len(packets), CHUNK)]
    sock = connect(url, f"bench-pub-{first}")
    acks = Acks(sock, len(packets))
    print("ready", flush=True)
    sys.stdin.readline()  # "go": every publisher starts at the same t0
    t0 = time.monotonic()
    for k, chunk in enumerate(chunks):
        sent = k * CHUNK
        if not acks.wait(lambda sent=sent: sent - acks.count < INFLIGHT, DEADLINE_S):  # type: ignore[misc]
            break
        if rate > 0:
            time.sleep(max(0.0, t0 + sent / rate - time.monotonic()))
        sock.sendall(chunk)
    queued = time.monotonic()
    acks.wait(lambda: acks.count >= acks.total, DEADLINE_S)
    sock.sendall(b"\xe0\x00")  # DISCONNECT: the broker closes, the reader sees the end
    acks.reader.join(5)
    sock.close()
    counts = {"offered": len(packets), "acked": acks.count, "queued": queued, "last": acks.last, "hostile": kinds}
    print(json.dumps(counts), flush=True)


def paho_publisher(url: str, first: int, count: int, rounds: int, rate: float) -> None:
    """The same load through paho-mqtt (its CPU cost per message is the comparison; `rate` is ignored)."""
    import paho.mqtt.client as mqtt

    messages = fleet_messages(first, count, rounds)
    total = len(messages)
    acked, done, last = [0], threading.Event(), [0.0]

    def on_publish(client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        acked[0] += 1
        if acked[0] == total:
            last[0] = time.monotonic()
            done.set()

    connected = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{first}")
    client.max_inflight_messages_set(INFLIGHT)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.on_connect = lambda *a: connected.set()
    host, port = url.removeprefix("mqtt://").split(":")
    client.connect(host, int(port))
    client.loop_start()
    connected.wait(10)
    print("ready", flush=True)
    sys.stdin.readline()  # "go": every publisher starts at the same t0
    for topic, payload, retain in messages:
        client.publish(topic, payload, qos=1, retain=retain)
    queued = time.monotonic()
    done.wait(DEADLINE_S)
    client.disconnect()
    client.loop_stop()
    print(json.dumps({"offered": total, "acked": acked[0], "queued": queued, "last": last[0]}), flush=True)
