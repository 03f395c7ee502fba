#!/usr/bin/env python3
"""Restart on a kept store, binaries side by side: each binary is started once on STORE (in the
order given, so alternate them), with ROOT as its clippings root plus an empty second root;
the time from start to /readyz 200, the process's CPU to that moment (utime + stime from /proc),
CPU by thread, and the peak resident size (VmHWM). Used for the restart at 1,000,000 with the
store `ingest::sync::tests::a_store_of_many_files` builds (it knows every file by stat).

    python3 bench/restarts.py STORE ROOT BIN_A BIN_B BIN_A BIN_B

The store is used in place: give it a copy.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402


def threads_cpu(pid):
    """CPU seconds per thread name, summed over threads of the same name."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            text = open("/proc/%d/task/%s/stat" % (pid, t)).read()
        except OSError:
            continue
        name = text.split("(", 1)[1].rsplit(")", 1)[0]
        fields = text.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def main():
    if len(sys.argv) < 4:
        B.die(__doc__)
    store, root, binaries = sys.argv[1], sys.argv[2], sys.argv[3:]
    rundir = os.path.dirname(os.path.abspath(store))
    extra = os.path.join(rundir, "second-root")
    os.makedirs(extra, exist_ok=True)
    for i, binary in enumerate(binaries):
        d = B.Daemon(binary, os.path.join(rundir, "run%d" % i), [root, extra], store=store, log_level="info")
        try:
            ready = d.wait_ready()
            mem = d.memory()
            cpu = B.cpu_seconds(d.pid)
            threads = threads_cpu(d.pid)
        finally:
            d.stop()
        print("%s %s: ready %.2f s, CPU to ready %.2f s, peak %.1f MiB, load %.1f"
              % (time.strftime("%H:%M:%S"), binary, ready, cpu, mem.get("VmHWM", 0) / 1024, os.getloadavg()[0]))
        print("  CPU by thread:", {k: round(v, 2) for k, v in sorted(threads.items()) if v > 0.05})
        sys.stdout.flush()


if __name__ == "__main__":
    main()
