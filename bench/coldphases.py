#!/usr/bin/env python3
"""A cold start's CPU by phase (issue 17): start `clipfeed serve` on an empty store over ROOT's
clippings with `log: clipfeed=debug`, sample the daemon's CPU time (all threads, and the writer
thread alone) from /proc/PID/task/*/stat every 50 ms until GET /readyz answers 200 and the
reconcile has ended, then match the samples to the log's timestamps: files read and items
refreshed (up to the coverage fill's end), render and publish, compaction (which binaries since
issue 17's eighth round run after ready; older ones before the render). On a shared machine the wall seconds swing with other load; the
CPU seconds compare two binaries (run them alternately).

    python3 bench/coldphases.py BINARY ROOT
"""
import datetime
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
binary, root = sys.argv[1], sys.argv[2]
d = tempfile.mkdtemp(prefix="clipfeed-coldphases-")
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
store = os.path.join(d, "store.db")
open(os.path.join(d, "c.yaml"), "w").write("listen: 127.0.0.1:%d\nbase_url: http://clipfeed.bench/\nclippings: [%s]\nstore: %s\nlog: clipfeed=debug\n" % (port, root, store))
tck = os.sysconf("SC_CLK_TCK")
log = open(os.path.join(d, "log"), "w")
p = subprocess.Popen([binary, "serve", "--config", os.path.join(d, "c.yaml")], stdout=log, stderr=log)
samples = []
def sample():
    tot = w = 0
    for t in glob.glob("/proc/%d/task/*" % p.pid):
        try:
            st = open(t + "/stat").read().rsplit(")", 1)[1].split(); c = (int(st[11]) + int(st[12])) / tck
            tot += c
            if open(t + "/comm").read().strip() == "clipfeed-writer": w += c
        except OSError: pass
    samples.append((datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None), tot, w))
t0 = time.perf_counter()
ready = None
logged = open(os.path.join(d, "log"))
tail = ""
while True:
    sample()
    if p.poll() is not None: raise SystemExit("clipfeed exited; see " + os.path.join(d, "log"))
    try:
        if ready is None and urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port, timeout=5).status == 200:
            ready = time.perf_counter() - t0
        # The compaction runs after ready (binaries since issue 17's eighth round) or before it.
        tail = (tail + logged.read())[-4096:]
        if ready is not None and "clippings reconciled" in tail: break
    except OSError: pass
    time.sleep(0.05)
wall = time.perf_counter() - t0
sample()
p.terminate(); p.wait()
def ts(l): return datetime.datetime.strptime(l[:26], "%Y-%m-%dT%H:%M:%S.%f")
ev = []
for l in open(os.path.join(d, "log")):
    if "writer started" in l: ev.append(("start", ts(l)))
    elif "cold build: story coverage filled" in l: ev.append(("items refreshed+coverage", ts(l)))
    elif "store compacted" in l: ev.append(("compacted", ts(l)))
    elif (" rendered feeds=" in l and " rendered feeds=0 " not in l and "items refreshed+coverage" in dict(ev)
          and "rendered+published" not in dict(ev)):
        ev.append(("rendered+published", ts(l)))
    elif "clippings reconciled" in l: ev.append(("reconciled", ts(l)))
def at(t):
    best = samples[0]
    for s_ in samples:
        if s_[0] <= t: best = s_
    return best
prev = ("exec", samples[0][0] - datetime.timedelta(seconds=0.05))
pc = (samples[0][0], 0.0, 0.0)
print("wall to ready %.2f s, to the reconcile's end %.2f s, CPU %.2f s (writer %.2f)" % (ready, wall, samples[-1][1], samples[-1][2]))
for name, t in ev:
    c = at(t)
    print("  %-26s wall %5.2f  cpu %5.2f  writer %5.2f" % (name, (t - prev[1]).total_seconds(), c[1] - pc[1], c[2] - pc[2]))
    prev, pc = (name, t), c
c = samples[-1]
print("  %-26s            cpu %5.2f  writer %5.2f" % ("after", c[1] - pc[1], c[2] - pc[2]))
shutil.rmtree(d)
