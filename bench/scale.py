#!/usr/bin/env python3
"""Every figure at one size in one pass, for sizes where each cold ingest is long (issue 17 asks
for 1,000,000 clippings): cold ingest, store size against the clippings' bytes, watch-to-publish
latency, peak memory, and a restart on the same store.

    python3 bench/scale.py --n 1000000          # --files 200 probes, --restarts 3
    python3 bench/scale.py --n 100000 --files 100

One daemon watches the generated corpus (`../shared/bench/gen_clippings.py`, cached in
WORKDIR/corpus; 1,000,000 clippings are about 6 GB and take a while to generate the first time)
and an empty probe folder, on a new store:
- cold ingest: seconds from start until /readyz answers 200 (every file stored, every feed
  published), and files per second;
- store: the database with its WAL and shared-memory files, once ready and idle, against the
  bytes of the clipping files;
- latency: --files probes as `latency.py` makes them (a clipping renamed into the probe folder,
  /topics/ai.rss polled until it holds it), p50/p90/p99/max, and the CPU per probe;
- memory: the daemon's peak RSS (VmHWM) over the cold ingest and the probes, and its RSS after;
- restart: --restarts times, the daemon started again on the same store and unchanged files,
  seconds to ready and to the first feed served, the process's CPU time until ready (steadier
  than seconds on a shared machine), and the peak RSS of that process.
Targets at 1,000,000 (issue 17): restart ready < 3 s, latency p99 < 30 ms, peak memory < 256
MiB. JSON: WORKDIR/results/scale-N-*.json.
"""
import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
from latency import pcts, probe  # noqa: E402

TARGETS = {1000000: {"ready_s": 3.0, "p99_ms": 30.0, "peak_mib": 256.0}}


def kib_to_mib(v):
    return None if v is None else v / 1024.0


def cold_and_probes(binary, rundir, root, files, timeout, kept=None, cold_timeout=86400, in_place=False):
    probes = os.path.join(rundir, "probes")
    incoming = os.path.join(rundir, "incoming")
    os.makedirs(probes)
    os.makedirs(incoming)
    store = None
    if kept and in_place:
        store = kept
    elif kept:
        # A store a run with --keep left (its probe clippings are gone from this probe folder,
        # so they leave the store at the start).
        store = os.path.join(rundir, "store.db")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(kept + suffix):
                shutil.copyfile(kept + suffix, store + suffix)
    d = B.Daemon(binary, rundir, [root, probes], store=store)
    try:
        ready = d.wait_ready(cold_timeout)
        B.log("compaction done %.1f s after the start" % d.compacted_s)
        stored = d.status()["clippings"]
        B.log("%s: ready after %.1f s with %d clippings stored" % ("start on the kept store" if kept else "cold ingest",
                                                                  ready, stored))
        B.cpu_when_idle(d.pid)
        store = B.store_bytes(d.store)
        mem_ready = d.memory()
        samples, writer_ms, process_ms = probe(d, probes, incoming, files, timeout)
        mem = d.memory()
    finally:
        d.stop()
    return {"ready_s": ready, "compacted_s": d.compacted_s, "stored": stored, "files_per_s": stored / ready if ready else None,
            "store_bytes": store, "peak_mib_at_ready": kib_to_mib(mem_ready.get("VmHWM")),
            "peak_mib": kib_to_mib(mem.get("VmHWM")), "rss_mib": kib_to_mib(mem.get("VmRSS")),
            "writer_cpu_ms_per_probe": writer_ms, "process_cpu_ms_per_probe": process_ms,
            "samples_ms": samples, **pcts(samples)}, d.store


def restarts(binary, rundir, root, store, rounds):
    out = []
    for i in range(rounds):
        d = B.Daemon(binary, os.path.join(rundir, "restart-%d" % i), [root, os.path.join(rundir, "probes")],
                     store=store)
        try:
            ready, first = d.wait_ready_and_first_feed()
            mem = d.memory()
            # CPU to ready says more than seconds on a shared machine: what the start costs.
            cpu = B.cpu_seconds(d.pid)
        finally:
            d.stop()
        B.log("restart %d: ready %.2f s, first feed %.2f s, CPU %.2f s, peak %.1f MiB"
              % (i + 1, ready, first or -1, cpu, kib_to_mib(mem.get("VmHWM")) or 0))
        out.append({"ready_s": ready, "first_feed_s": first, "cpu_s": cpu, "peak_mib": kib_to_mib(mem.get("VmHWM"))})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    B.add_common_args(ap)
    ap.add_argument("--files", type=int, default=200, help="latency probes (default 200)")
    ap.add_argument("--restarts", type=int, default=3, help="restarts on the same store (default 3)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one probe")
    ap.add_argument("--cold-timeout", type=float, default=86400.0,
                    help="seconds to wait for the cold ingest (or the start on --store) to be ready (default a day)")
    ap.add_argument("--store", help="start on a copy of this store (left by a run with --keep, same corpus) "
                    "instead of a cold ingest: the cold-ingest row is then that start")
    ap.add_argument("--in-place", action="store_true",
                    help="with --store: start on that store itself, not a copy (a store of 1,000,000 is several "
                    "GB); it is changed as any start changes it")
    args = ap.parse_args()
    binary = B.binary(args)
    machine = B.machine()
    for n in args.n:
        root = B.corpus(args.workdir, n, args.seed)
        clip_bytes = B.dir_bytes(root)
        with B.scratch(args, "scale-%d" % n) as tmp:
            rundir = os.path.join(tmp, "clipfeed")
            cold, store = cold_and_probes(binary, rundir, root, args.files, args.timeout, args.store,
                                          args.cold_timeout, args.in_place)
            again = restarts(binary, rundir, root, store, args.restarts)
        ready = sorted(r["ready_s"] for r in again)
        median_ready = ready[len(ready) // 2] if ready else None
        cpu = sorted(r["cpu_s"] for r in again)
        median_cpu = cpu[len(cpu) // 2] if cpu else None
        restart_peak = max((r["peak_mib"] or 0 for r in again), default=None)
        target = TARGETS.get(n, {})
        rows = [
            ["cold ingest", "%.1f s, %.0f files/s" % (cold["ready_s"], cold["files_per_s"] or 0), ""],
            ["store / clippings", "%.0f / %.0f MB" % (cold["store_bytes"] / 1e6, clip_bytes / 1e6),
             "%.2fx" % (cold["store_bytes"] / clip_bytes)],
            ["latency p50 / p90 / p99 / max", "%s / %s / %s / %s ms" % tuple(
                B.fmt(cold.get(k)) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")),
             "target p99 < %s ms" % target["p99_ms"] if "p99_ms" in target else ""],
            ["CPU per probe: writer / process", "%s / %s ms" % (B.fmt(cold["writer_cpu_ms_per_probe"]),
                                                               B.fmt(cold["process_cpu_ms_per_probe"])), ""],
            ["peak memory (cold + probes), RSS after", "%s / %s MiB" % (B.fmt(cold["peak_mib"]), B.fmt(cold["rss_mib"])),
             "target < %s MiB" % target["peak_mib"] if "peak_mib" in target else ""],
            ["restart ready (median of %d), first feed" % len(again),
             "%s s, %s s" % (B.fmt(median_ready), B.fmt(again[0]["first_feed_s"] if again else None)),
             "target < %s s" % target["ready_s"] if "ready_s" in target else ""],
            ["restart CPU to ready (median), peak memory (max)", "%s s, %s MiB" % (B.fmt(median_cpu), B.fmt(restart_peak)),
             "target < %s MiB" % target["peak_mib"] if "peak_mib" in target else ""],
        ]
        print("\n== every figure at N = %d (%d clippings stored)" % (n, cold["stored"]))
        print(B.table(["figure", "clipfeed", "note"], rows))
        B.save(args.workdir, "scale-%d" % n, {"n": n, "machine": machine, "clippings_bytes": clip_bytes,
                                             "cold": cold, "restarts": again})


if __name__ == "__main__":
    main()
