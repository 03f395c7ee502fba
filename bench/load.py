#!/usr/bin/env python3
"""Bounded load under ingest: wrk with 256 connections for 60 s against a mix of feed URLs while
10,000 clippings are being ingested, then a check that none was lost.

    python3 bench/load.py                     # N = 10000, 256 connections, 60 s

1. The daemon starts on an empty store and an empty root. The N corpus files are hard-linked
   into a staging folder beside the root (same file system, so a rename is atomic).
2. A first batch (--first-batch files) is renamed into the root; once it is stored, the URL mix
   is read from the running server: the all feed and every topic feed in RSS, Atom and JSON, up
   to --providers provider feeds in RSS, and every archive page of the all feed, the AI topic and
   the largest provider (RSS), each with the ETag and Last-Modified it has then.
3. wrk -t2 -c256 -d60s --latency -s bench/load.lua runs over that list: each URL plain, with
   If-None-Match, with If-Modified-Since, with Accept-Encoding gzip, and gzip with If-None-Match.
   Meanwhile the rest of the files are renamed into the root, --batch files every --interval
   seconds, and the daemon's RSS is sampled every second.
4. After wrk ends, the script waits until /api/status counts every clipping (the number of
   distinct article URLs in the corpus), checks that no file was rejected, stops the daemon
   (SIGTERM), and counts the files and live items in the store with sqlite3.

Reports requests/s, latency p50/p99, responses by status, the count of responses other than 2xx
and 304 (must be 0), socket errors (connect, read, write, timeout; must be 0), the daemon's peak
RSS (VmHWM) and lost clippings (must be 0). Exits 1 when a check fails.
JSON: WORKDIR/results/load-N-*.json.
"""
import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "load.lua")


def url_key(path):
    with open(path, encoding="utf-8") as fh:
        m = re.search(r'^webUrl:\s*"?([^"\n]+)"?\s*$', fh.read(4096), re.M)
    return m.group(1) if m else path


def wait_count(d, expected, timeout):
    deadline = time.time() + timeout
    while True:
        st = d.status()
        if st["clippings"] >= expected and st.get("ready"):
            return st
        if time.time() > deadline:
            return st
        d.check_alive()
        time.sleep(0.2)


def archive_paths(client, feed):
    """Every archive page of a feed (RSS), from its prev-archive link down to page 0."""
    status, _, body = client.get(feed)
    if status != 200:
        return []
    m = re.search(rb'href="([^"]+)" rel="prev-archive"', body) or re.search(rb'rel="prev-archive" href="([^"]+)"', body)
    if not m:
        return []
    newest = urllib.parse.urlsplit(m.group(1).decode()).path  # .../archive/SIZE-INDEX.rss
    m = re.match(r"(.*/archive/\d+-)(\d+)\.rss$", newest)
    return ["%s%d.rss" % (m.group(1), k) for k in range(int(m.group(2)) + 1)] if m else [newest]


def url_mix(d, providers):
    feeds = d.feed_paths()
    topics = [p for p in feeds if p.startswith("/topics/")]
    provs = [p for p in feeds if p.startswith("/providers/")]
    paths = []
    for p in ["/feed.rss"] + topics:
        stem = p[: -len(".rss")]
        paths += [stem + ".rss", stem + ".atom", stem + ".json"]
    paths += provs[:providers]
    counts = {}
    for p in provs:
        counts[p] = d.client.get(p)[2].count(b"<item>")
    biggest = max(provs, key=lambda p: counts[p]) if provs else None
    for f in ["/feed.rss", "/topics/ai.rss"] + ([biggest] if biggest else []):
        paths += archive_paths(d.client, f)
    out = []
    for p in paths:
        status, h, _ = d.client.get(p)
        if status != 200:
            B.die("%s answered %s before the run" % (p, status))
        out.append((p, h.get("etag", ""), h.get("last-modified", "")))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    B.add_common_args(ap, sizes=False)
    ap.add_argument("--n", type=int, default=10000, help="clippings ingested during the run (default 10000)")
    ap.add_argument("--seconds", type=int, default=60, help="wrk duration (default 60)")
    ap.add_argument("--connections", type=int, default=256, help="wrk connections (default 256)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--first-batch", type=int, default=1000, help="files stored before wrk starts (default 1000)")
    ap.add_argument("--batch", type=int, default=250, help="files per batch during the run (default 250)")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between batches (default 1)")
    ap.add_argument("--providers", type=int, default=40, help="provider feeds in the mix (default 40)")
    ap.add_argument("--wrk-timeout", type=int, default=5, help="wrk's per-request timeout, s (default 5)")
    ap.add_argument("--settle-timeout", type=float, default=600, help="seconds to wait for every clipping after wrk")
    args = ap.parse_args()
    B.ensure_tools("wrk")
    binary = B.binary(args)
    machine = B.machine()

    corpus = B.corpus(args.workdir, args.n, args.seed)
    with B.scratch(args, "load-%d" % args.n) as rundir:
        failures = run(args, binary, machine, corpus, rundir)
    sys.exit(1 if failures else 0)


def run(args, binary, machine, corpus, rundir):
    """Everything in RUNDIR: the root, the staging folder, the store and the wrk paths file."""
    root = os.path.join(rundir, "root")
    staging = os.path.join(rundir, "staging")
    os.makedirs(root)
    os.makedirs(staging)
    names = sorted(os.listdir(corpus))
    for name in names:
        os.link(os.path.join(corpus, name), os.path.join(staging, name))
    keys = {name: url_key(os.path.join(corpus, name)) for name in names}
    expected = len(set(keys.values()))
    first, rest = names[: args.first_batch], names[args.first_batch:]

    d = B.Daemon(binary, rundir, [root])
    failures = []
    children = []  # wrk, once started
    stop = threading.Event()
    try:
        d.wait_ready()
        for name in first:
            os.rename(os.path.join(staging, name), os.path.join(root, name))
        st = wait_count(d, len({keys[n] for n in first}), 300)
        mix = url_mix(d, args.providers)
        paths_file = os.path.join(rundir, "paths.tsv")
        with open(paths_file, "w") as fh:
            for p, etag, lastmod in mix:
                fh.write("%s\t%s\t%s\n" % (p, etag, lastmod))
        B.log("first batch of %d stored (%d clippings); %d URLs in the mix; wrk -c%d for %d s while %d more "
              "files arrive, %d every %.1f s" % (len(first), st["clippings"], len(mix), args.connections,
                                                  args.seconds, len(rest), args.batch, args.interval))

        rss_samples = []
        moved = {"at": None}

        def feeder():
            t0 = time.perf_counter()
            for k in range(0, len(rest), args.batch):
                for name in rest[k:k + args.batch]:
                    os.rename(os.path.join(staging, name), os.path.join(root, name))
                if stop.wait(args.interval):
                    break
            moved["at"] = time.perf_counter() - t0

        def sampler():
            t0 = time.perf_counter()
            while not stop.wait(1.0):
                m = d.memory()
                rss_samples.append((round(time.perf_counter() - t0, 1), m.get("VmRSS")))

        cmd = ["wrk", "-t%d" % args.threads, "-c%d" % args.connections, "-d%ds" % args.seconds, "--latency",
               "--timeout", "%ds" % args.wrk_timeout, "-s", LUA, "http://127.0.0.1:%d/" % d.port, "--", paths_file]
        wrk_proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        children.append(wrk_proc)
        started = time.perf_counter()
        threads = [threading.Thread(target=feeder, daemon=True), threading.Thread(target=sampler, daemon=True)]
        for t in threads:
            t.start()
        try:
            out, err = wrk_proc.communicate(timeout=args.seconds + 60)
        except subprocess.TimeoutExpired:
            wrk_proc.kill()
            out, err = wrk_proc.communicate()
        wrk_s = time.perf_counter() - started
        threads[0].join()  # the feeder finishes moving files even if wrk ended first
        stop.set()
        threads[1].join()
        line = next((x for x in out.splitlines() if x.startswith("LOADJSON ")), None)
        if wrk_proc.returncode != 0 or line is None:
            B.die("wrk failed (%s): %s\n%s" % (wrk_proc.returncode, err.strip(), out[-2000:]))
        w = json.loads(line[len("LOADJSON "):])

        t_settle = time.perf_counter()
        st = wait_count(d, expected, args.settle_timeout)
        settle_s = time.perf_counter() - t_settle
        mem = d.memory()
    finally:
        stop.set()  # the feeder and the sampler end at their next wait
        for p in children:  # our wrk, by PID, if this script is interrupted while it runs
            if p.poll() is None:
                p.kill()
                p.wait()
        d.stop()

    # The store, read after the daemon stopped (schema of store.rs; skipped if it changed).
    store_check = {}
    try:
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(rundir, "store.db"), uri=True)
        store_check["files"] = db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        store_check["live_items"] = db.execute("SELECT COUNT(*) FROM items WHERE deleted_at IS NULL").fetchone()[0]
        db.close()
    except sqlite3.Error as e:
        store_check["error"] = str(e)

    statuses = {int(k): v for k, v in w["statuses"].items()}
    bad_status = sum(v for k, v in statuses.items() if not (200 <= k < 300 or k == 304))
    e = w["errors"]
    socket_errors = e["connect"] + e["read"] + e["write"] + e["timeout"]
    rps = w["requests"] / (w["duration_us"] / 1e6)
    lost = expected - st["clippings"]
    if bad_status:
        failures.append("%d responses other than 2xx/304" % bad_status)
    if socket_errors:
        failures.append("%d socket errors" % socket_errors)
    if lost:
        failures.append("%d clippings lost (stored %d of %d)" % (lost, st["clippings"], expected))
    if st.get("rejected_total"):
        failures.append("%d files rejected" % st["rejected_total"])
    if store_check.get("files") not in (None, args.n):
        failures.append("the store knows %s files of %d" % (store_check.get("files"), args.n))
    if store_check.get("live_items") not in (None, expected):
        failures.append("the store has %s live items of %d" % (store_check.get("live_items"), expected))

    rows = [
        ["requests/s", rps],
        ["requests", w["requests"]],
        ["latency p50 (ms)", w["latency_us"]["p50"] / 1000.0],
        ["latency p99 (ms)", w["latency_us"]["p99"] / 1000.0],
        ["latency max (ms)", w["latency_us"]["max"] / 1000.0],
        ["responses by status", ", ".join("%d: %d" % kv for kv in sorted(statuses.items()))],
        ["responses other than 2xx/304", bad_status],
        ["socket errors (connect/read/write/timeout)", "%d (%d/%d/%d/%d)" % (socket_errors, e["connect"], e["read"],
                                                                            e["write"], e["timeout"])],
        ["daemon peak RSS (VmHWM, MiB)", mem.get("VmHWM", 0) / 1024.0],
        ["files moved in during the run (s after wrk start)", moved["at"]],
        ["every clipping stored, s after wrk ended", settle_s],
        ["clippings stored / expected", "%d / %d" % (st["clippings"], expected)],
        ["store: files / live items", "%s / %s" % (store_check.get("files"), store_check.get("live_items"))],
    ]
    print("\n== load under ingest: wrk -t%d -c%d -d%ds over %d URLs x variants (%d requests in the list), "
          "%d clippings arriving" % (args.threads, args.connections, args.seconds, len(mix), w["distinct_requests"],
                                     args.n))
    print(B.table(["", "value"], rows))
    print("checks: %s" % ("all passed" if not failures else "FAILED: " + "; ".join(failures)))
    result = {"figure": "load under ingest", "n": args.n, "seed": args.seed, "machine": machine, "binary": binary,
              "wrk": {"threads": args.threads, "connections": args.connections, "seconds": args.seconds,
                      "timeout_s": args.wrk_timeout, **w},
              "wrk_wall_s": wrk_s, "rps": rps, "bad_status": bad_status, "socket_errors": socket_errors,
              "peak_rss_kib": mem.get("VmHWM"), "rss_samples": rss_samples, "mix": [p for p, _, _ in mix],
              "expected_clippings": expected, "status": {k: v for k, v in st.items() if k != "rejected"},
              "settle_s": settle_s, "files_moved_s": moved["at"], "store": store_check, "failures": failures}
    print("results: %s" % B.save(args.workdir, "load-%d" % args.n, result))
    return failures


if __name__ == "__main__":
    main()
