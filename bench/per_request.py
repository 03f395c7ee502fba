#!/usr/bin/env python3
"""What one request costs the daemon, counted over a fixed number of requests (issue 17): the
instructions it runs (callgrind), its CPU time (from /proc), or its system calls (strace -c).
Rates on this shared machine swing with the other load; instruction and system call counts over
the same number of requests do not, so they show what a change to the request path saves.

    python3 bench/per_request.py --binary A --binary B --store S --tool callgrind
    python3 bench/per_request.py --binary A --binary B --store S --tool cpu --rounds 3
    python3 bench/per_request.py --binary A --store S --tool strace --scenario gzip

Each round starts every binary in turn (alternating their order) on a copy of the store S (one
that a daemon left: nothing to ingest), waits for /readyz and for the daemon to be idle, reads
the ETag of /topics/ai.rss, then runs `fixed_load` (fixed_load.c beside this script, built with
cc: 64 keep-alive connections on 2 threads, as wrk, stopping after exactly --requests
responses): a 304 (If-None-Match with the gzip ETag and Accept-Encoding: gzip), a gzip 200, or a
plain 200. Counted from just before the client starts to just after it ends:
- callgrind: the daemon runs under `valgrind --tool=callgrind --instr-atstart=no`, with the
  instrumentation switched on for the run only (`callgrind_control -i on`, then `-d`);
  instructions per response, and the dump is kept (--keep) for `callgrind_annotate`;
- cpu: user+system ticks of the process and of each `clipfeed-http-*` thread, per response;
- strace: `strace -c -f -p PID` over the run: system calls per response by name.
Every server listens on 127.0.0.1 and is stopped by its PID.
"""
import argparse
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

FEED = "/topics/ai.rss"

HERE = os.path.dirname(os.path.abspath(__file__))


def ticks(pid):
    """Process ticks, and ticks of its threads named clipfeed-http-*."""
    def read(path):
        with open(path) as fh:
            name, rest = fh.read().rsplit(")", 1)
        f = rest.split()
        return name.split("(", 1)[1], int(f[11]) + int(f[12])
    total = read("/proc/%d/stat" % pid)[1]
    http = 0
    for stat in glob.glob("/proc/%d/task/*/stat" % pid):
        try:
            name, t = read(stat)
        except OSError:
            continue
        if name.startswith("clipfeed-http"):
            http += t
    return total, http


def idle(pid, timeout=900):
    start = time.time()
    last = ticks(pid)[0]
    while time.time() - start < timeout:
        time.sleep(1)
        now = ticks(pid)[0]
        if now - last < 3:
            return
        last = now


def one(args, binary, tmp, client):
    rundir = tempfile.mkdtemp(prefix="run-", dir=tmp)
    store = os.path.join(rundir, "store.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(args.store + suffix):
            shutil.copyfile(args.store + suffix, store + suffix)
    port = B.free_port()
    config = os.path.join(rundir, "clipfeed.yaml")
    with open(config, "w") as fh:
        fh.write("listen: 127.0.0.1:%d\nbase_url: http://clipfeed.bench/\nclippings: [%s]\nstore: %s\nlog: warn\n"
                 % (port, args.corpus, store))
    cmd = [binary, "serve", "--config", config]
    out = os.path.join(rundir, "callgrind.out")
    if args.tool == "callgrind":
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=" + out] + cmd
    log = open(os.path.join(rundir, "daemon.log"), "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    strace = None
    try:
        c = B.Client(port)
        deadline = time.time() + 900
        while True:
            try:
                status, _, _ = c.get("/readyz")
                if status == 200:
                    break
            except OSError:
                c = B.Client(port)
            if proc.poll() is not None or time.time() > deadline:
                B.die("the daemon did not get ready: see %s" % rundir)
            time.sleep(0.2)
        status, h, _ = c.get(FEED, {"Accept-Encoding": "gzip"})
        if status != 200:
            B.die("%s answered %s" % (FEED, status))
        c.close()
        headers = {"304": ["Accept-Encoding: gzip", "If-None-Match: " + h["etag"]],
                   "gzip": ["Accept-Encoding: gzip"], "plain": []}[args.scenario]
        idle(proc.pid)
        if args.tool == "callgrind":
            subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
            subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True)
        elif args.tool == "strace":
            strace_out = os.path.join(rundir, "strace.txt")
            strace = subprocess.Popen(["strace", "-c", "-f", "-o", strace_out, "-p", str(proc.pid)],
                                      stderr=subprocess.DEVNULL)
            time.sleep(1)
        before = ticks(proc.pid)
        cmd = [client, str(port), FEED, str(args.requests), "64", "2"] + headers
        started = time.time()
        res = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.time() - started
        after = ticks(proc.pid)
        m = re.match(r"(\d+) responses, 0 not", res.stdout)
        n = int(m.group(1)) if m else 0
        if res.returncode != 0 or n != args.requests:
            B.die("fixed_load: %s %s" % (res.stdout, res.stderr))
        row = {"binary": binary, "responses": n, "wall_s": wall}
        if args.tool == "callgrind":
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
            subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True, capture_output=True)
            dumps = sorted(glob.glob(out + "*"), key=os.path.getmtime)
            with open(dumps[-1]) as fh:
                total = next(int(line.split()[1]) for line in fh if line.startswith(("summary:", "totals:")))
            row["instructions"] = total / n
            if args.keep:
                dest = os.path.join(args.keep, "callgrind.%s.%d" % (os.path.basename(binary), int(time.time())))
                shutil.copyfile(dumps[-1], dest)
                row["dump"] = dest
        elif args.tool == "strace":
            strace.send_signal(signal.SIGINT)
            strace.wait(timeout=60)
            strace = None
            calls = {}
            with open(strace_out) as fh:
                for line in fh:
                    f = line.split()
                    if len(f) >= 5 and f[-1] != "total" and f[3].isdigit():
                        calls[f[-1]] = int(f[3])
            row["syscalls"] = {k: v / n for k, v in sorted(calls.items(), key=lambda kv: -kv[1])}
        else:
            hz = os.sysconf("SC_CLK_TCK")
            row["cpu_us"] = (after[0] - before[0]) / hz / n * 1e6
            row["http_cpu_us"] = (after[1] - before[1]) / hz / n * 1e6
        return row
    finally:
        if strace:
            strace.send_signal(signal.SIGINT)
            strace.wait(timeout=60)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if not args.keep_runs:
            shutil.rmtree(rundir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", action="append", required=True, help="a release binary (repeat to compare)")
    ap.add_argument("--store", required=True, help="a store a daemon left (copied for each run)")
    ap.add_argument("--corpus", default="/tmp/clipfeed-bench/corpus/clips-10000-s1",
                    help="the clippings root the store was made from")
    ap.add_argument("--tool", choices=["callgrind", "cpu", "strace"], default="callgrind")
    ap.add_argument("--scenario", choices=["304", "gzip", "plain"], default="304")
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--keep", help="a folder to keep the callgrind dumps in")
    ap.add_argument("--keep-runs", action="store_true", help="keep each run's folder (log, store)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="per-request-")
    client = os.path.join(tmp, "fixed_load")
    subprocess.run(["cc", "-O2", "-o", client, os.path.join(HERE, "fixed_load.c"), "-lpthread"], check=True)
    try:
        for r in range(args.rounds):
            order = args.binary if r % 2 == 0 else list(reversed(args.binary))
            for binary in order:
                row = one(args, binary, tmp, client)
                load = os.getloadavg()[0]
                if args.tool == "callgrind":
                    what = "%.0f instructions per response" % row["instructions"]
                elif args.tool == "cpu":
                    what = "%.2f us CPU per response (http threads %.2f us)" % (row["cpu_us"], row["http_cpu_us"])
                else:
                    what = ", ".join("%s %.3f" % kv for kv in row["syscalls"].items() if kv[1] >= 0.001)
                print("round %d %s %s %d responses in %.1f s, load %.1f: %s"
                      % (r + 1, args.scenario, binary, row["responses"], row["wall_s"], load, what), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
