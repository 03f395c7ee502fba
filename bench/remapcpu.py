#!/usr/bin/env python3
"""The CPU of one topic remap, with no client: each binary given starts on a copy of a kept
store under configuration A of bench/remap.py, is sent SIGHUP with configuration B, and is
watched until its "configuration reloaded". Printed per run: the seconds from the signal to
that line, the daemon's CPU seconds and the writer thread's (from /proc), the other threads',
the peak resident size (VmHWM), the load before and after, and the remap's steps from its log
line. Binaries alternate, round after round, so each pair shares its minutes.

    python3 bench/remapcpu.py --store /tmp/kept100k/store.db --root CORPUS --rounds 3 B1 B2

bench/remap.py measures the same reload with a client reading feeds the whole time (the
issue's figure); this one shows what the daemon itself spends, which a client taking most of a
core on a two-core machine hides. With --perf, each run is recorded (perf record, DWARF call
graphs, 199 Hz) into its folder under --work.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
import remap as R  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid):
    """CPU seconds of each thread of `pid`, by thread id: (name, seconds)."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            stat = open("/proc/%d/task/%s/stat" % (pid, tid)).read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[tid] = (name, (int(fields[11]) + int(fields[12])) / HZ)
    return out


def process_cpu(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def one(binary, store, root, work, perf):
    """One reload A -> B by `binary` on a copy of `store`; returns its figures."""
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    copy = os.path.join(work, "store.db")
    shutil.copyfile(store, copy)
    d = B.Daemon(binary, os.path.join(work, "cf"), [root], store=copy, log_level="info",
                 extra_config=R.CONFIG_A)
    recorder = None
    try:
        d.wait_ready(timeout=3600)
        R.settle_remap(d)
        done = open(d.log_path).read().count("configuration reloaded")
        R.write_config(d, R.CONFIG_B)
        if perf:
            recorder = subprocess.Popen(
                ["perf", "record", "-g", "--call-graph", "dwarf", "-F", "199", "-p", str(d.pid),
                 "-o", os.path.join(work, "perf.data")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # perf attaches
        before, cpu0, load0 = thread_cpu(d.pid), process_cpu(d.pid), os.getloadavg()[0]
        t0 = time.perf_counter()
        d.proc.send_signal(signal.SIGHUP)
        while open(d.log_path).read().count("configuration reloaded") <= done:
            d.check_alive()
            time.sleep(0.01)
        took = time.perf_counter() - t0
        after, cpu1, load1 = thread_cpu(d.pid), process_cpu(d.pid), os.getloadavg()[0]
        if recorder:
            recorder.send_signal(signal.SIGINT)
            recorder.wait()
        by_name = {}
        for tid, (name, seconds) in after.items():
            by_name[name] = by_name.get(name, 0.0) + seconds - before.get(tid, (name, 0.0))[1]
        peak = d.memory().get("VmHWM")
    finally:
        d.stop()
    steps = [line for line in open(d.log_path).read().splitlines() if "items re-mapped" in line]
    phases = re.search(r"phases=(.*)$", steps[-1]).group(1) if steps else ""
    return {
        "binary": binary,
        "reload_s": round(took, 2),
        "cpu_s": round(cpu1 - cpu0, 2),
        "writer_s": round(by_name.get("clipfeed-writer", 0.0), 2),
        "threads": {k: round(v, 2) for k, v in sorted(by_name.items(), key=lambda x: -x[1]) if v >= 0.05},
        "vmhwm_kib": peak,
        "load": [round(load0, 1), round(load1, 1)],
        "at": time.strftime("%H:%M:%S", time.gmtime()),
        "phases": phases,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binaries", nargs="+", help="clipfeed binaries, run alternately")
    ap.add_argument("--store", required=True, help="a kept store of --root's corpus (copied, never changed)")
    ap.add_argument("--root", required=True, help="the clippings folder the store was built from")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--work", default="/tmp/clipfeed-bench/remapcpu", help="scratch folder")
    ap.add_argument("--perf", action="store_true", help="record each run with perf")
    args = ap.parse_args()
    runs = []
    for r in range(args.rounds):
        for i, binary in enumerate(args.binaries):
            run = one(binary, args.store, args.root, os.path.join(args.work, "r%d-b%d" % (r, i)), args.perf)
            runs.append(run)
            print(json.dumps(run), flush=True)
    for binary in args.binaries:
        mine = [r for r in runs if r["binary"] == binary]
        med = lambda key: sorted(r[key] for r in mine)[len(mine) // 2]  # noqa: E731
        print("%s: reload median %.2f s, CPU median %.2f s, writer median %.2f s" %
              (binary, med("reload_s"), med("cpu_s"), med("writer_s")))


if __name__ == "__main__":
    main()
