#!/usr/bin/env python3
"""Cold start's CPU time and store size (issue 17): for each binary given, in alternating rounds,
start `clipfeed serve` on an empty store with ROOT's clippings, poll GET /readyz every 20 ms until
200 and the compaction after it is done (`compacting` in /api/status), then read the daemon's user and system CPU time (/proc/PID/stat) and peak RSS (VmHWM), wait a
second, and sum the store's database, WAL and shm files. On a shared machine the wall-clock time
swings with other load; the CPU time is what compares two binaries.

    python3 bench/coldcpu.py --root DIR --rounds 2 BINARY [BINARY ...]
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request


def one_round(binary, root):
    d = tempfile.mkdtemp(prefix="clipfeed-coldcpu-")
    try:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        store = os.path.join(d, "store.db")
        with open(os.path.join(d, "c.yaml"), "w") as fh:
            fh.write("listen: 127.0.0.1:%d\nbase_url: http://clipfeed.bench/\nclippings: [%s]\nstore: %s\nlog: warn\n"
                     % (port, root, store))
        t0 = time.perf_counter()
        with open(os.path.join(d, "log"), "w") as log:
            p = subprocess.Popen([binary, "serve", "--config", os.path.join(d, "c.yaml")], stdout=log, stderr=log)
        try:
            while True:
                try:
                    if urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port, timeout=5).status == 200:
                        break
                except OSError:
                    pass
                if p.poll() is not None:
                    raise SystemExit("clipfeed exited; see its log")
                time.sleep(0.02)
            wall = time.perf_counter() - t0
            # A cold build's compaction runs after ready: its CPU and the compacted size count.
            deadline = time.perf_counter() + 3600
            while True:
                try:
                    body = urllib.request.urlopen("http://127.0.0.1:%d/api/status" % port, timeout=5).read()
                    if not json.loads(body).get("compacting"):
                        break
                except OSError:
                    pass
                if p.poll() is not None:
                    raise SystemExit("clipfeed exited while compacting; see its log")
                if time.perf_counter() > deadline:
                    raise SystemExit("the compaction did not end within an hour")
                time.sleep(0.05)
            fields = open("/proc/%d/stat" % p.pid).read().rsplit(")", 1)[1].split()
            tck = os.sysconf("SC_CLK_TCK")
            user, system = int(fields[11]) / tck, int(fields[12]) / tck
            hwm = next(int(l.split()[1]) for l in open("/proc/%d/status" % p.pid) if l.startswith("VmHWM"))
            time.sleep(1)
            size = sum(os.path.getsize(store + x) for x in ("", "-wal", "-shm") if os.path.exists(store + x))
        finally:
            p.terminate()
            p.wait()
        return wall, user, system, hwm / 1024, size / 1e6
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--root", required=True, help="folder of clippings (e.g. a bench corpus)")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    for r in range(args.rounds):
        for b in args.binaries:
            wall, user, system, hwm, size = one_round(b, args.root)
            print("round %d %s: ready %.1f s, CPU %.2f + %.2f = %.2f s, peak %.1f MiB, store %.1f MB"
                  % (r + 1, b, wall, user, system, user + system, hwm, size), flush=True)


if __name__ == "__main__":
    main()
