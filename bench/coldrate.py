#!/usr/bin/env python3
"""How a cold build's cost per item changes as the store grows (issue 17): start `clipfeed serve`
on an empty store over ROOT's clippings, and every half second read the writer thread's CPU
time and I/O (/proc/PID/task/TID/stat and io: bytes asked of read/pread and write/pwrite,
whether the kernel's cache answered or not), matched afterwards to the log's progress lines
(items refreshed), until the log says the clippings are reconciled. Prints, per tenth of the items refreshed, the writer's CPU per item and
its bytes read and written per item, then the totals. On a shared machine wall seconds swing;
CPU seconds and bytes do not.

    python3 bench/coldrate.py BINARY ROOT [--stop-after ITEMS] [--every ITEMS]

With --perf-after N it also records the writer thread with `perf record` from the moment N
items are refreshed until the build ends (perf.data in the current folder).
"""
import argparse
import datetime
import re
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("binary")
ap.add_argument("root")
ap.add_argument("--perf-after", type=int, default=None)
ap.add_argument("--perf-out", default="perf.data")
ap.add_argument("--perf-seconds", type=float, default=60.0)
ap.add_argument("--stop-after", type=int, default=None, help="stop once this many items are refreshed")
ap.add_argument("--every", type=int, default=None, help="report per this many items instead of per tenth")
args = ap.parse_args()

d = tempfile.mkdtemp(prefix="clipfeed-coldrate-")
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
store = os.path.join(d, "store.db")
open(os.path.join(d, "c.yaml"), "w").write(
    "listen: 127.0.0.1:%d\nbase_url: http://clipfeed.bench/\nclippings: [%s]\nstore: %s\nlog: info\n" % (port, args.root, store))
tck = os.sysconf("SC_CLK_TCK")
log = open(os.path.join(d, "log"), "w")
p = subprocess.Popen([args.binary, "serve", "--config", os.path.join(d, "c.yaml")], stdout=log, stderr=log)


def writer_tid():
    for t in glob.glob("/proc/%d/task/*" % p.pid):
        try:
            if open(t + "/comm").read().strip() == "clipfeed-writer":
                return t
        except OSError:
            pass
    return None


def cpu(path):
    st = open(path + "/stat").read().rsplit(")", 1)[1].split()
    return (int(st[11]) + int(st[12])) / tck


def io(path):
    out = {}
    for line in open(path + "/io"):
        k, v = line.split(":")
        out[k] = int(v)
    return out


def ts(line):
    return datetime.datetime.strptime(line[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc).timestamp()


# The refresh's progress, from the log: (time, items done, items found).
progress = []
logpos = 0
ready = False


def read_log():
    global logpos, ready
    with open(os.path.join(d, "log")) as fh:
        fh.seek(logpos)
        for line in fh:
            m = re.search(r"indexing: (\d+) of (\d+) items", line)
            if m:
                progress.append((ts(line), int(m.group(1)), int(m.group(2))))
            if "clippings reconciled" in line:
                ready = True
        logpos = fh.tell()


samples = []  # (time, writer cpu, process cpu, rchar, wchar, syscr, syscw)
perf = None
t0 = time.perf_counter()
while True:
    w = writer_tid()
    if w:
        try:
            i = io(w)
            samples.append((time.time(), cpu(w), cpu("/proc/%d" % p.pid), i["rchar"], i["wchar"], i["syscr"], i["syscw"]))
        except OSError:
            pass
    read_log()
    done = progress[-1][1] if progress else 0
    if args.perf_after is not None and perf is None and w and done >= args.perf_after:
        perf = subprocess.Popen(["perf", "record", "-g", "--call-graph", "dwarf", "-F", "199", "-t",
                                 w.rsplit("/", 1)[1], "-o", args.perf_out, "--", "sleep", str(args.perf_seconds)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if ready or (args.stop_after is not None and done >= args.stop_after) or p.poll() is not None:
        break
    time.sleep(0.5)
wall = time.perf_counter() - t0
w = writer_tid()
wcpu, pcpu = cpu(w), cpu("/proc/%d" % p.pid)
hwm = [l for l in open("/proc/%d/status" % p.pid) if l.startswith("VmHWM")][0].split()[1]
read_log()
if perf is not None:
    perf.wait()
p.terminate()
try:
    p.wait(timeout=30)
except subprocess.TimeoutExpired:
    p.kill(); p.wait()
found = progress[-1][2] if progress else 0


def at(t):
    best = samples[0]
    for s_ in samples:
        if s_[0] <= t:
            best = s_
    return best


print("wall %.1f s, CPU %.2f s, writer %.2f s, peak %.1f MiB, items %d of %d" % (
    wall, pcpu, wcpu, int(hwm) / 1024, progress[-1][1] if progress else 0, found))
if progress and samples:
    print("%-14s %9s %12s %12s %12s %10s" % ("items", "wall s", "writer ms/it", "read KiB/it", "write KiB/it", "preads/it"))
    marks = [progress[0]]
    wants = [found * k // 10 for k in range(1, 11)]
    if args.every:
        wants = list(range(args.every, found + args.every, args.every))
    for want in wants:
        nxt = next((g for g in progress if g[1] >= want), None)
        if nxt and nxt[1] > marks[-1][1]:
            marks.append(nxt)
    for g0, g1 in zip(marks, marks[1:]):
        a, b = at(g0[0]), at(g1[0])
        n = g1[1] - g0[1]
        print("%6d-%-7d %9.1f %12.3f %12.1f %12.1f %10.1f" % (g0[1], g1[1], g1[0] - g0[0], (b[1] - a[1]) * 1000 / n,
                                                       (b[3] - a[3]) / 1024 / n, (b[4] - a[4]) / 1024 / n, (b[5] - a[5]) / n))
    first = at(progress[0][0])
    print("files phase (to the first refresh report): writer %.2f s" % first[1])
    last = at(progress[-1][0])
    print("refresh phase (reported): writer %.2f s over %d items" % (last[1] - first[1], progress[-1][1] - progress[0][1]))
print("log:", os.path.join(d, "log"))
shutil.copy(os.path.join(d, "log"), "/tmp/coldrate-last.log")
shutil.rmtree(d)
