"""classroom-central's ingest of VALID rows with 10 % hostile messages mixed in, against the same load without.

Issue 11.  Clean and hostile rounds in one run, same fleet size, interleaved (`--pairs 2`: clean,
hostile, hostile, clean, so the machine's drift cancels), each on a fresh Mosquitto and a fresh
fleet.db, with bench/central_ingest.py's machinery: the real
`central.app.Central` in its own process, `mosquitto_sub -q 1` as the anchor, pre-encoded QoS 1
publishers (bench/ingest_load.py) paced to --rate VALID messages/s.  The hostile round adds, on top
of the same valid load, hostile messages making 10 % of all (bench/hostile_load.py): 1,000 nested
`[`, a 400-digit number, `"session": 2**70`, NaN / Infinity in telemetry, a 68 KB telemetry (over the
64 KiB limit; the benchmark's broker has no size limit, so it reaches the centre), a non-JSON payload,
wrong schemas, a reply forging another agent's command id (every agent has one command seeded in
fleet.db), spread evenly through the live stream; and retained alarm events, published before the
centre subscribes (a live publish reaches a subscriber without the retain flag).

Reported per round: the rate of valid rows committed (valid rows / time the centre had committed every
row), the fleet.db audit of the valid load, and for the hostile round where each hostile message went
(agents.dropped per kind, seeded commands changed, events and alarms stored), the centre's log lines,
and that the centre process stayed up (alive when stopped, one broker connection, clean exit).
Goal: valid rate with / without >= 0.9, no valid message lost, every malformed message counted.

    .venv/bin/python bench/hostile_ingest.py [--agents 1000] [--messages 60000] [--rate 5000] [--pairs 2]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from central_ingest import Load, Total, drive, plan, spawn, summarise
from hostile_load import DROPPED_KINDS, KINDS, RETAINED, command_id, hostile_count, retained_events
from ingest_load import DEADLINE_S, SITE, Acks, agent_id, connect, packet
from ingest_parts import Anchor, Lines, audit

from central.fleet_rows import CommandSent
from central.fleetdb import FleetDB
from central.mosquitto import LocalBroker
from contract import FLEET, Command, now_iso, to_iso

SHARE = 0.10  # of all messages offered in the hostile round


def seed_commands(db: Path, n: int) -> None:
    """One command sent to every agent, still waiting for its reply: what a forged reply would claim."""
    expires = to_iso(datetime.now(UTC) + timedelta(hours=1))
    fleet = FleetDB(db)
    try:
        sent = now_iso()
        commands = [Command(command_id(i), "panel.power", {"on": True}, expires, "bench") for i in range(n)]
        fleet.write_batch([CommandSent(SITE, agent_id(i), c, sent) for i, c in enumerate(commands)])
    finally:
        fleet.close()


def preload(url: str, messages: list[tuple[str, bytes, bool]]) -> None:
    """Publish `messages` (QoS 1) and wait until the broker has acknowledged them all."""
    sock = connect(url, "bench-preload")
    acks = Acks(sock, len(messages))
    sock.sendall(b"".join(packet(t, p, k % 65535 + 1, r) for k, (t, p, r) in enumerate(messages)))
    if not acks.wait(lambda: acks.count >= acks.total, 30):
        raise RuntimeError(f"the broker acknowledged {acks.count} of {acks.total} retained events")
    sock.sendall(b"\xe0\x00")
    acks.reader.join(5)
    sock.close()


def run_round(n: int, load: Load, share: float, folder: Path) -> dict[str, Any]:
    """One round: N agents' valid load, plus `share` hostile messages when above 0."""
    rounds, groups = plan(n, load.messages, load.publishers)
    valid = n * (2 + 3 * rounds)
    hostile_total = round(valid * share / (1 - share))
    retained = min(hostile_total // (len(KINDS) + 1), n)
    per_valid = (hostile_total - retained) / valid
    live_hostile = sum(hostile_count(c * (2 + 3 * rounds), per_valid) for _, c in groups)
    rows = valid + live_hostile  # every live hostile message becomes one row: a drop, or a reply that changes nothing
    broker = LocalBroker(folder / "broker")
    broker.start()
    db, log_path = folder / "fleet.db", folder / "centre.log"
    seed_commands(db, n)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if retained:
            preload(broker.url, retained_events(retained))
        with log_path.open("wb") as centre_log:
            centre_out = Lines(spawn("_centre", broker.url, str(db), str(rows), stderr=centre_log)).start()
        procs.append(centre_out.proc)
        centre_out.wait_ready(30)
        sub = ["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-q", "1", "-t", "classroom/v1/#"]
        sub += ["-F", "%t", "-C", str(valid + live_hostile + retained + 1), "-W", str(int(DEADLINE_S + 60))]
        anchor = Anchor(subprocess.Popen(sub, stdout=subprocess.PIPE), valid + live_hostile + retained + 1).start()
        procs.append(anchor.proc)
        if not anchor.first_seen.wait(10):
            raise RuntimeError("mosquitto_sub received nothing")
        rate = str(load.rate / len(groups))
        pubs = [
            Lines(
                spawn(
                    "_publish",
                    "raw",
                    broker.url,
                    str(a),
                    str(c),
                    str(rounds),
                    rate,
                    str(per_valid),
                    stdin=subprocess.PIPE,
                )
            )
            for a, c in groups
        ]
        procs += [p.start().proc for p in pubs]
        total = Total([centre_out], rows)
        t0, cpu = drive(broker, total, anchor, pubs, rows, [])
        centre = alive_then_stop(centre_out)
        result = summarise(n, rounds, rows, t0, total, anchor, pubs, cpu, audit(str(db), n, rounds))
        kinds = Counter[str]()
        for p in pubs:
            kinds.update(p.lines[-1].get("hostile", {}) if p.lines else {})
        if retained:
            kinds[RETAINED] = retained
        result["anchor"] -= retained  # the retained events came to the anchor too, when it subscribed
        result["centre_s"] = centre_end(centre_out, t0, result["centre_s"])
        extra = {"valid": valid, "live_hostile": live_hostile, "kinds": dict(kinds), "centre": centre}
        extra["log"] = log_lines(log_path)
        return result | extra | {"hostile_db": hostile_audit(db, n)}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        broker.stop()


def alive_then_stop(centre_out: Lines) -> dict[str, Any]:
    """Whether the centre's process was still running when the load was done; then SIGTERM and its exit status."""
    proc = centre_out.proc
    alive = proc.poll() is None
    rss = psutil.Process(proc.pid).memory_info().rss if alive else 0
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(30)
    final = next((line for line in reversed(centre_out.lines) if line.get("final")), {})
    return {"pid": proc.pid, "alive": alive, "exit": code, "rss": rss, "stats": final}


def hostile_audit(db: Path, n: int) -> dict[str, Any]:
    """Where the hostile messages ended up in fleet.db, counted per kind through each agent's index."""
    with sqlite3.connect(db) as conn:
        per_kind = dict.fromkeys(KINDS, 0)
        sql = "SELECT CAST(substr(agent_id, 6) AS INTEGER) AS i, dropped FROM agents WHERE site = ?"
        for i, dropped in conn.execute(sql, [SITE]):
            per_kind[KINDS[i % len(KINDS)]] += dropped
        one = lambda sql: int(conn.execute(sql).fetchone()[0])  # noqa: E731
        return {
            "dropped": per_kind,
            "commands_changed": one("SELECT count(*) FROM commands WHERE status != 'sent'"),
            "commands": one("SELECT count(*) FROM commands"),
            "events": one("SELECT count(*) FROM events"),
            "alarms": one("SELECT count(*) FROM alarms"),
        }


def log_lines(path: Path) -> Counter[str]:
    """The centre's log lines (stderr), grouped by their text with agent ids, topics and numbers blanked."""
    shapes = Counter[str]()
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            shapes[re.sub(r"room-\d+|classroom/v1/\S+|\d+", "#", line)[:110]] += 1
    return shapes


def centre_end(centre_out: Lines, t0: float, fallback: float) -> float:
    """Seconds from t0 until the centre had committed every row; else until its last new row (0.5 s resolution)."""
    progress = [line for line in centre_out.lines if "written" in line]
    if not progress or progress[-1]["done"]:
        return fallback
    most = progress[-1]["written"]
    return float(next(line["t"] for line in progress if line["written"] == most)) - t0


def show(r: dict[str, Any], label: str) -> float:
    """Print one round; its valid rows/s."""
    n, rounds, valid, db = r["n"], r["rounds"], r["valid"], r["db"]
    hostile = sum(r["kinds"].values())
    offered = r["acked"] / r["offer_s"]
    broker, centre_valid = r["anchor"] / r["anchor_s"], valid / r["centre_s"]
    print(f"{label}: N={n} agents, {valid} valid (2 retained + {rounds} x 3 per agent) + {hostile} hostile messages")
    print(f"  offered  (QoS 1, acked by the broker)  {r['acked']:>8}  in {r['offer_s']:6.2f} s  {offered:8.0f} msg/s")
    print(f"  broker   (mosquitto_sub -q 1)          {r['anchor']:>8}  in {r['anchor_s']:6.2f} s  {broker:8.0f} msg/s")
    print(f"  centre   rows committed to fleet.db    {r['written']:>8}  in {r['centre_s']:6.2f} s")
    print(f"           of which VALID                {valid:>8}  in {r['centre_s']:6.2f} s  {centre_valid:8.0f} msg/s")
    complete = (db["telemetry"], db["agents_online"], db["info_rows"], db["status_rows"], db["devices_last"]) == (
        n * rounds,
        n,
        n,
        n,
        2 * n,
    )
    lost = valid - (r["written"] - r["live_hostile"])  # each live hostile message is one row: a drop or a reply
    print(
        f"  fleet.db telemetry rows {db['telemetry']}/{n * rounds}, agents online {db['agents_online']}/{n},"
        f" info applied {db['info_rows']}/{n}, online history {db['status_rows']}/{n},"
        f" devices at last state {db['devices_last']}/{2 * n}"
    )
    print(f"  valid lost (valid offered - rows committed + hostile rows) {lost}   fleet.db audit", end=" ")
    print("complete" if complete else "INCOMPLETE")
    c = r["centre"]
    stats = c["stats"]
    print(
        f"  centre process pid {c['pid']}: {'alive when the load was done' if c['alive'] else 'EXITED EARLY'},"
        f" broker connections {stats.get('connects', '?')}, exit status {c['exit']} after SIGTERM,"
        f" RSS {c['rss'] / 2**20:.0f} MiB"
    )
    print(
        f"  collector: messages {stats.get('messages', '?')}, rows {stats.get('rows', '?')},"
        f" malformed {stats.get('malformed', '?')}, foreign {stats.get('foreign', '?')},"
        f" retained ignored {stats.get('retained', '?')}"
    )
    cpu = "  ".join(f"{k} {v / r['centre_s'] * 100:.0f} %" for k, v in r["cpu"].items())
    print(f"  CPU over the centre's window (% of one core): {cpu}   peak writer backlog {r['peak_backlog']}")
    if hostile:
        show_hostile(r)
    show_log(r["log"])
    r["lost"], r["up"] = lost, c["alive"] and c["exit"] == 0 and stats.get("connects") == 1
    r["ok"] = complete and lost == 0 and c["alive"] and c["exit"] == 0 and stats.get("connects") == 1
    return centre_valid


def show_hostile(r: dict[str, Any]) -> None:
    """Where each hostile kind went."""
    kinds, h = r["kinds"], r["hostile_db"]
    total = sum(kinds.values())
    print(f"  hostile offered {total} ({total / (total + r['valid']) * 100:.1f} % of all):", end="")
    print(" " + ", ".join(f"{k} {kinds.get(k, 0)}" for k in (*KINDS, RETAINED)))
    malformed = sum(kinds.get(k, 0) for k in DROPPED_KINDS)
    counted = sum(h["dropped"][k] for k in DROPPED_KINDS)
    per_kind = ", ".join(f"{k} {h['dropped'][k]}/{kinds.get(k, 0)}" for k in DROPPED_KINDS)
    print(f"  counted in fleet.db agents.dropped: {counted} of {malformed} malformed ({per_kind})")
    forged, retained = kinds.get("forged", 0), kinds.get(RETAINED, 0)
    ignored = r["centre"]["stats"].get("retained", 0)
    print(
        f"  forged replies {forged}: seeded commands changed {h['commands_changed']}/{h['commands']},"
        f" counted as dropped {h['dropped']['forged']}"
    )
    print(
        f"  retained events {retained} (before the centre subscribed): ignored {ignored},"
        f" events stored {h['events']}, alarms opened {h['alarms']}, counted as dropped 0 (not a drop)"
    )
    r["counted"] = f"{counted}/{malformed}"
    r["hostile_ok"] = counted == malformed and h["commands_changed"] == 0 and ignored == retained
    r["hostile_ok"] &= h["events"] == h["alarms"] == h["dropped"]["forged"] == 0


def show_log(shapes: Counter[str]) -> None:
    """The centre's log: how many lines, and the commonest shapes."""
    print(f"  centre log: {sum(shapes.values())} lines", end="")
    print("".join(f"\n    {count:>6} x {shape}" for shape, count in shapes.most_common(5)))


def main() -> None:
    """Clean and hostile rounds, `--pairs` times in alternating order; the median ratio of their valid rates."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=60_000, help="valid messages offered per round")
    parser.add_argument("--publishers", type=int, default=4, help="publisher processes (one connection each)")
    parser.add_argument("--rate", type=float, default=5000, help="valid msg/s offered (hostile ones come on top)")
    parser.add_argument("--pairs", type=int, default=2, help="clean + hostile pairs, order alternating (drift cancels)")
    args = parser.parse_args()
    load = Load(args.messages, args.publishers, args.rate, "raw")
    print(f"central ingest with {SHARE:.0%} hostile messages, Mosquitto on loopback, {os.cpu_count()} cores, {FLEET}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ratios, ok, lost, counted, up = [], True, 0, [], True
    for pair in range(args.pairs):
        rates = {}
        order = (0.0, SHARE) if pair % 2 == 0 else (SHARE, 0.0)
        for share in order:
            with tempfile.TemporaryDirectory(prefix="hostile-ingest-") as tmp:
                r = run_round(args.agents, load, share, Path(tmp))
            rates[share] = show(r, "hostile round" if share else "clean round")
            ok &= r["ok"] and r.get("hostile_ok", True)
            lost, up = lost + r["lost"], up and r["up"]
            counted += [r["counted"]] if share else []
        ratios.append(rates[SHARE] / rates[0.0])
    ratio = statistics.median(ratios)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"valid rows/s with {SHARE:.0%} hostile / without: {ratio:.2f} (goal >= 0.9), valid lost {lost} (goal 0),"
        f" malformed counted as dropped {', '.join(counted)}, centre up throughout: {'yes' if up else 'NO'}:"
        f" {'met' if ok and ratio >= 0.9 else 'MISSED'}"
        + (f"  (pairs: {', '.join(f'{x:.2f}' for x in ratios)})" if len(ratios) > 1 else "")
    )


if __name__ == "__main__":
    main()
