#!/usr/bin/env python3
"""Idle connections from one address (issue 12, point 6). --idle connections (5,000) are opened
from 127.0.0.1 and held without sending anything; then a client on another address (127.0.0.2)
asks for /feed.atom --probes times, one new connection each, and the time to each full answer is
reported. Two settings: the defaults (max_connections 4096, 256 per address), and a global limit
below the idle count with no per-address share (max_connections 1024, 100,000 per address), where
the idle connections are closed to make room. `header_timeout` is raised to 60 s in both, so the
idle connections are not simply timed out.

Target: the other client answered within 0.5 s.

    python3 bench/idle.py                          # --n 1000 --idle 5000 --probes 20

Needs an open-file limit above the idle count (the hard limit is used). Everything listens on
127.0.0.1; the daemon is stopped by its PID. JSON: WORKDIR/results/idle-*.json.
"""
import argparse
import http.client
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

TARGET_S = 0.5


def from_other_address(port):
    """(status, seconds) of GET /feed.atom from 127.0.0.2 on a new connection."""
    t0 = time.perf_counter()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=60, source_address=("127.0.0.2", 0))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.sock = s
        conn.request("GET", "/feed.atom")
        res = conn.getresponse()
        res.read()
        conn.close()
        return res.status, time.perf_counter() - t0
    except (OSError, http.client.HTTPException):
        return None, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    B.add_common_args(ap, sizes=False)
    ap.add_argument("--n", type=int, default=1000, help="clippings in the store (default 1000)")
    ap.add_argument("--idle", type=int, default=5000, help="idle connections from 127.0.0.1 (default 5000)")
    ap.add_argument("--probes", type=int, default=20, help="requests from 127.0.0.2 (default 20)")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.idle + 200:
        B.die("the open-file limit (%d) is too low for %d idle connections" % (hard, args.idle))
    binary = B.binary(args)
    machine = B.machine()
    root = B.corpus(args.workdir, args.n, args.seed)
    settings = [
        ("defaults", "http:\n  header_timeout: 60\n"),
        ("global limit", "http:\n  header_timeout: 60\n  max_connections: 1024\n"
                         "  max_connections_per_address: 100000\n"),
    ]
    rows, data = [], {}
    for name, extra in settings:
        with B.scratch(args, "idle") as tmp:
            d = B.Daemon(binary, os.path.join(tmp, "clipfeed"), [root], extra_config=extra)
            idle = []
            try:
                d.wait_ready()
                t0 = time.perf_counter()
                for _ in range(args.idle):
                    idle.append(socket.create_connection(("127.0.0.1", d.port), timeout=60))
                opened = time.perf_counter() - t0
                samples = [from_other_address(d.port) for _ in range(args.probes)]
                d.check_alive()
            finally:
                for s in idle:
                    s.close()
                d.stop()
        secs = [s for _, s in samples]
        bad = sum(1 for st, _ in samples if st != 200)
        data[name] = {"config": extra, "opened_s": opened, "samples": samples, "not_200": bad,
                      "p50_ms": B.percentile(secs, 50) * 1000, "max_ms": max(secs) * 1000}
        rows.append([name, args.idle, "%.1f" % opened, args.probes, bad, data[name]["p50_ms"], data[name]["max_ms"]])
    print("\n%d idle connections from 127.0.0.1, then GET /feed.atom from 127.0.0.2" % args.idle)
    print(B.table(["setting", "idle", "opened in s", "probes", "not 200", "p50 ms", "max ms"], rows))
    ok = all(v["not_200"] == 0 and v["max_ms"] <= TARGET_S * 1000 for v in data.values())
    print("\nthe other address answered within %.1f s: %s" % (TARGET_S, B.verdict(ok)))
    path = B.save(args.workdir, "idle", {"machine": machine, "n": args.n, "idle": args.idle, "runs": data, "met": ok})
    B.log("results: %s" % path)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
