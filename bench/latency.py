#!/usr/bin/env python3
"""Watch-to-publish latency: the time from a clipping file's rename into the watched folder until
an HTTP GET of its topic feed contains it.

    cargo build --release
    python3 bench/latency.py --stored 10000          # and --stored 100000

The script generates --stored realistic clippings once (with ../shared/bench/gen_clippings.py,
cached in --workdir), starts target/release/clipfeed over them on a free port (the store is kept
between runs, so later runs measure a restart plus the probes), waits until it is ready, then
--files times: writes a new clipping (topics AI and Latency Probe) to a temp file outside the
root, renames it in, and polls GET /topics/ai.rss (with If-None-Match, on a kept-alive
connection) until the body holds the clipping's title. It prints p50/p90/p99/max in
milliseconds, and the same as one JSON line for bench/README.md.

Only the standard library is used. Everything runs on 127.0.0.1.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
GEN = os.path.join(REPO, "..", "shared", "bench", "gen_clippings.py")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def generate(n, root):
    marker = os.path.join(root, ".generated")
    if os.path.exists(marker) and open(marker).read().strip() == str(n):
        return
    if os.path.isdir(root):
        shutil.rmtree(root)
    if not os.path.exists(GEN):
        sys.exit("latency.py: %s is missing (../shared beside the repository)" % GEN)
    print("generating %d clippings into %s ..." % (n, root), flush=True)
    subprocess.run([sys.executable, GEN, str(n), root], check=True, stdout=subprocess.DEVNULL)
    with open(marker, "w") as fh:
        fh.write(str(n))


def percentile(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stored", type=int, default=10000, help="clippings already stored (default 10000)")
    ap.add_argument("--files", type=int, default=200, help="probe clippings to time (default 200)")
    ap.add_argument("--workdir", default="/tmp/clipfeed-bench", help="where data and stores are kept")
    ap.add_argument("--binary", default=os.path.join(REPO, "target", "release", "clipfeed"))
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for one probe")
    args = ap.parse_args()
    if not os.path.exists(args.binary):
        sys.exit("latency.py: %s not found; run cargo build --release first" % args.binary)

    data = os.path.join(args.workdir, "stored-%d" % args.stored)
    root = os.path.join(data, "clippings")
    generate(args.stored, root)
    incoming = os.path.join(data, "incoming")
    os.makedirs(incoming, exist_ok=True)
    probes = os.path.join(root, "latency-probes")
    if os.path.isdir(probes):
        shutil.rmtree(probes)  # from an earlier run; removed before the daemon starts
    os.makedirs(probes)

    port = free_port()
    config = os.path.join(data, "clipfeed.yaml")
    with open(config, "w") as fh:
        fh.write("listen: 127.0.0.1:%d\nclippings: [clippings]\nstore: store.db\nlog: warn\n" % port)
    log = open(os.path.join(data, "daemon.log"), "w")
    started = time.perf_counter()
    daemon = subprocess.Popen([args.binary, "serve", "--config", config], stdout=log, stderr=log)
    try:
        conn = None
        while True:
            if daemon.poll() is not None:
                sys.exit("latency.py: clipfeed exited; see %s" % log.name)
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/api/status")
                status = json.loads(conn.getresponse().read())
                if status.get("ready"):
                    break
            except (OSError, http.client.HTTPException, ValueError):
                conn = None
            time.sleep(0.05)
        ready_s = time.perf_counter() - started
        print("ready after %.1f s with %d clippings stored" % (ready_s, status["clippings"]), flush=True)

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        etag = None
        samples = []
        run_id = "%d-%d" % (os.getpid(), int(time.time()))
        for i in range(args.files):
            title = "Latency probe %s number %d" % (run_id, i)
            text = (
                "---\ntitle: \"%s\"\nexcerpt: \"A probe for the latency benchmark.\"\n"
                "publishedDateTime: 2026-11-01T00:00:00Z\nwebUrl: \"https://probe.example/%s/%d\"\n"
                "provider:\n  name: Probe\n  domain: probe.example\ntopics:\n  - AI\n  - Latency Probe\n---\n"
                % (title, run_id, i)
            )
            tmp = os.path.join(incoming, "p%d.md" % i)
            with open(tmp, "w") as fh:
                fh.write(text)
            needle = title.encode()
            t0 = time.perf_counter()
            os.rename(tmp, os.path.join(probes, "p%d.md" % i))
            while True:
                headers = {"If-None-Match": etag} if etag else {}
                conn.request("GET", "/topics/ai.rss", headers=headers)
                res = conn.getresponse()
                body = res.read()
                if res.status == 200:
                    etag = res.getheader("ETag")
                    if needle in body:
                        break
                if time.perf_counter() - t0 > args.timeout:
                    sys.exit("latency.py: probe %d did not appear within %.0f s" % (i, args.timeout))
            samples.append((time.perf_counter() - t0) * 1000.0)
        result = {
            "stored": status["clippings"],
            "files": len(samples),
            "p50_ms": round(percentile(samples, 50), 2),
            "p90_ms": round(percentile(samples, 90), 2),
            "p99_ms": round(percentile(samples, 99), 2),
            "max_ms": round(max(samples), 2),
            "mean_ms": round(statistics.mean(samples), 2),
            "ready_s": round(ready_s, 2),
        }
        print(
            "watch-to-publish over %d files with %d stored: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms"
            % (result["files"], result["stored"], result["p50_ms"], result["p90_ms"], result["p99_ms"], result["max_ms"])
        )
        print(json.dumps(result))
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
        shutil.rmtree(probes, ignore_errors=True)


if __name__ == "__main__":
    main()
