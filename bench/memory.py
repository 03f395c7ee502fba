#!/usr/bin/env python3
"""Figure 5, memory: the daemon's peak and steady resident memory with N clippings, and the
store's size on disk. Baseline, in the same run: the peak RSS of `hugo` building the same records
(`/usr/bin/time -v`, "Maximum resident set size").

    python3 bench/memory.py --n 10000               # or --n 10000 100000

Each clipfeed round starts on an empty store with the N files in the root, waits for /readyz
(cold ingest done) and reads /proc/PID/status: VmHWM = "peak after ingest". Then it requests
every feed listed in /feeds.opml once in every format (RSS, Atom, JSON) with
`Accept-Encoding: gzip`, as feed readers do, so every compressed copy the server keeps is made;
VmHWM again = "peak" (the figure the targets are about), and after --settle seconds VmRSS =
"steady". The sealed memory files the daemon holds for `sendfile` (documents asked for again
and again) are kernel memory outside VmHWM: their bytes are read from its descriptors, shown,
and added to the peak for the target. The store's size is the database plus its WAL and shared-memory files while the
daemon runs, and the database alone after it stopped (SIGTERM). Sizes in MiB (1,048,576 bytes).
Targets: peak under 64 MiB at 10,000 and under 160 MiB at 100,000.
JSON: WORKDIR/results/memory-N-*.json.
"""
import argparse
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
from cold import hugo_round  # noqa: E402

TARGETS_MIB = {10000: 64, 100000: 160}
MIB = 1048576


def sealed_bytes(pid):
    """Bytes in the sealed memory files the daemon holds for sendfile (its open descriptors named
    memfd:clipfeed-body): kernel memory that VmRSS and VmHWM do not count."""
    total = 0
    fds = "/proc/%d/fd" % pid
    for fd in os.listdir(fds):
        try:
            if os.readlink(os.path.join(fds, fd)).startswith("/memfd:clipfeed-body"):
                total += os.stat(os.path.join(fds, fd)).st_size
        except OSError:
            pass
    return total


def clipfeed_round(binary, rundir, root, encoding, settle):
    store = os.path.join(rundir, "store.db")
    B.fresh_store(store)
    d = B.Daemon(binary, rundir, [root], store=store)
    try:
        ready = d.wait_ready()
        after_ingest = d.memory()
        paths = d.feed_paths()
        headers = {"Accept-Encoding": encoding} if encoding != "identity" else {}
        bad = 0
        for ext in ("rss", "atom", "json"):
            bad += d.fetch_all([p[: -len("rss")] + ext for p in paths], headers)
        if bad:
            B.die("%d feed requests did not answer 200" % bad)
        after_requests = d.memory()
        sealed = sealed_bytes(d.pid)
        time.sleep(settle)
        steady = d.memory()
        status = d.status()
        running_bytes = B.store_bytes(store)
    finally:
        d.stop()
    return {
        "ready_s": ready, "clippings": status["clippings"], "feeds": len(paths), "requests": 3 * len(paths),
        "peak_after_ingest_kib": after_ingest.get("VmHWM"), "rss_after_ingest_kib": after_ingest.get("VmRSS"),
        "peak_kib": after_requests.get("VmHWM"), "steady_kib": steady.get("VmRSS"),
        "sealed_kib": sealed / 1024,
        "store_bytes_running": running_bytes, "store_bytes_stopped": B.store_bytes(store),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    B.add_common_args(ap)
    ap.add_argument("--rounds", type=int, default=2, help="clipfeed rounds (default 2)")
    ap.add_argument("--hugo-rounds", type=int, default=1, help="Hugo builds (default 1)")
    ap.add_argument("--no-hugo", action="store_true", help="skip the baseline")
    ap.add_argument("--encoding", default="gzip", choices=["gzip", "br", "identity"],
                    help="Accept-Encoding of the feed requests (default gzip)")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds before reading the steady RSS (default 3)")
    args = ap.parse_args()
    hugo_rounds = 0 if args.no_hugo else args.hugo_rounds
    B.ensure_tools(*(["hugo", "/usr/bin/time"] if hugo_rounds else []))
    binary = B.binary(args)
    machine = B.machine()

    for n in args.n:
        with B.scratch(args, "memory-%d" % n) as tmp:
            root = B.corpus(args.workdir, n, args.seed)
            site = B.hugo_site(args.workdir, n, args.seed) if hugo_rounds else None
            rundir = os.path.join(tmp, "clipfeed")
            pub = os.path.join(tmp, "hugo-public")
            B.warm_cache(*[x for x in (root, site) if x])
            cf, hg = [], []
            for r in range(max(args.rounds, hugo_rounds)):
                if r < args.rounds:
                    res = clipfeed_round(binary, rundir, root, args.encoding, args.settle)
                    cf.append(res)
                    B.log("  clipfeed round %d: peak after ingest %.1f MiB, peak %.1f MiB, steady %.1f MiB"
                          % (r + 1, res["peak_after_ingest_kib"] / 1024, res["peak_kib"] / 1024, res["steady_kib"] / 1024))
                if r < hugo_rounds:
                    res = hugo_round(site, pub)
                    hg.append(res)
                    B.log("  hugo round %d: peak RSS %.0f MiB" % (r + 1, res["peak_rss_kib"] / 1024))

            def mib(key, rounds):
                return B.spread([x[key] / 1024 for x in rounds if x.get(key)])

            peak_ingest = mib("peak_after_ingest_kib", cf)
            peak = mib("peak_kib", cf)
            steady = mib("steady_kib", cf)
            hugo_peak = mib("peak_rss_kib", hg)
            store_run = B.spread([x["store_bytes_running"] / MIB for x in cf])
            store_stop = B.spread([x["store_bytes_stopped"] / MIB for x in cf])
            corpus_mib = B.dir_bytes(root) / MIB
            rows = [["clipfeed peak after cold ingest (VmHWM)", peak_ingest["median"], peak_ingest["min"], peak_ingest["max"]],
                    ["clipfeed peak, every feed requested (VmHWM)", peak["median"], peak["min"], peak["max"]],
                    ["clipfeed steady (VmRSS)", steady["median"], steady["min"], steady["max"]]]
            sealed = B.spread([x["sealed_kib"] / 1024 for x in cf])
            rows.append(["sealed files for sendfile (kernel, not in VmHWM)", sealed["median"], sealed["min"], sealed["max"]])
            if hg:
                rows.append(["hugo build peak RSS", hugo_peak["median"], hugo_peak["min"], hugo_peak["max"]])
            rows += [["store on disk, running (db+wal+shm)", store_run["median"], store_run["min"], store_run["max"]],
                     ["store on disk, stopped", store_stop["median"], store_stop["min"], store_stop["max"]],
                     ["the clipping files themselves", corpus_mib, corpus_mib, corpus_mib]]
            print("\n== memory, N = %d (%d clippings, %d feeds, %d requests with Accept-Encoding %s; MiB)"
                  % (n, cf[-1]["clippings"], cf[-1]["feeds"], cf[-1]["requests"], args.encoding))
            print(B.table(["", "median", "min", "max"], rows))
            if hg:
                print("hugo peak / clipfeed peak: %.1fx" % (hugo_peak["median"] / peak["median"]))
            target = TARGETS_MIB.get(n)
            if target:
                worst = max(x["peak_kib"] + x["sealed_kib"] for x in cf) / 1024
                print("target peak (VmHWM + sealed files) < %d MiB: %s" % (target, B.verdict(worst < target)))
            result = {"figure": "memory", "n": n, "seed": args.seed, "machine": machine, "binary": binary,
                      "encoding": args.encoding, "clipfeed": {"peak_after_ingest_mib": peak_ingest, "peak_mib": peak,
                                                              "steady_mib": steady, "store_running_mib": store_run,
                                                              "store_stopped_mib": store_stop, "rounds": cf},
                      "hugo": {"peak_rss_mib": hugo_peak, "rounds": hg} if hg else None,
                      "corpus_mib": corpus_mib, "target_peak_mib": target}
            print("results: %s" % B.save(args.workdir, "memory-%d" % n, result))


if __name__ == "__main__":
    main()
