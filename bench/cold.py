#!/usr/bin/env python3
"""Figure 1, cold ingest: an empty store, N generated clippings already in the root; the time from
starting the daemon until every feed is served, and files/s. Baseline, in the same run: `hugo`
building the same records as a Hugo site (feeds only), output folder emptied before each build.

    python3 bench/cold.py --n 10000              # or --n 10000 100000

Rounds alternate clipfeed and Hugo (--rounds each), after one pass that reads every input file so
both start with a warm page cache. A clipfeed round: remove the store, start `clipfeed serve`,
poll GET /readyz every 5 ms until 200 (the first reconcile is done and every feed is published),
then GET every feed listed in /feeds.opml once and check each answers 200: "served" is the time
at which the last one arrived. A Hugo round: `/usr/bin/time -v hugo --quiet -s SITE -d PUB`, wall
time and peak RSS. Reports medians with min-max, the speed-up (Hugo time / clipfeed time) and
issue 17's target (at least 10 times faster at 10,000; an earlier issue asked 20). JSON: WORKDIR/results/cold-N-*.json.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

TARGET_SPEEDUP = 10.0  # issue 17: at least 10x Hugo at 10,000


def clipfeed_round(binary, rundir, root):
    store = os.path.join(rundir, "store.db")
    B.fresh_store(store)
    d = B.Daemon(binary, rundir, [root], store=store)
    try:
        ready = d.wait_ready(compacted=False)
        paths = d.feed_paths()
        bad = d.fetch_all(paths)
        served = time.perf_counter() - d.started
        if bad:
            B.die("%d of %d feeds did not answer 200 after ready" % (bad, len(paths)))
        status = d.status()
        # The store's size once its compaction (after the feeds are published) is done.
        compacted = d.wait_compacted()
        mem = d.memory()
        size = B.store_bytes(store)
    finally:
        d.stop()
    return {"ready_s": ready, "served_s": served, "compacted_s": compacted, "feeds": len(paths),
            "clippings": status["clippings"], "rejected": status.get("rejected_total"), "vmhwm_kib": mem.get("VmHWM"),
            "store_bytes": size}


def hugo_round(site, pub, keep_output=False):
    if not keep_output:
        shutil.rmtree(pub, ignore_errors=True)
    t0 = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-v", "hugo", "--quiet", "-s", site, "-d", pub],
                         capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        B.die("hugo failed: %s" % out.stderr[-2000:])
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr)
    feeds = sum(1 for r, _, fs in os.walk(pub) for f in fs if f == "index.xml")
    return {"wall_s": wall, "peak_rss_kib": int(m.group(1)) if m else None, "feeds": feeds}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    B.add_common_args(ap)
    ap.add_argument("--rounds", type=int, default=3, help="clipfeed rounds, alternating with Hugo (default 3)")
    ap.add_argument("--hugo-rounds", type=int, help="Hugo rounds (default: --rounds)")
    ap.add_argument("--no-hugo", action="store_true", help="skip the baseline")
    args = ap.parse_args()
    hugo_rounds = args.rounds if args.hugo_rounds is None else args.hugo_rounds
    if args.no_hugo:
        hugo_rounds = 0
    B.ensure_tools(*(["hugo", "/usr/bin/time"] if hugo_rounds else []))
    binary = B.binary(args)
    machine = B.machine()

    for n in args.n:
        with B.scratch(args, "cold-%d" % n) as tmp:
            root = B.corpus(args.workdir, n, args.seed)
            site = B.hugo_site(args.workdir, n, args.seed) if hugo_rounds else None
            rundir = os.path.join(tmp, "clipfeed")
            pub = os.path.join(tmp, "hugo-public")
            B.log("warming the page cache ...")
            B.warm_cache(*[d for d in (root, site) if d])
            cf, hg = [], []
            for r in range(max(args.rounds, hugo_rounds)):
                if r < args.rounds:
                    res = clipfeed_round(binary, rundir, root)
                    cf.append(res)
                    B.log("  clipfeed round %d: ready %.2f s, every feed served %.2f s (%d feeds, %d clippings)"
                          % (r + 1, res["ready_s"], res["served_s"], res["feeds"], res["clippings"]))
                if r < hugo_rounds:
                    res = hugo_round(site, pub)
                    hg.append(res)
                    B.log("  hugo round %d: %.2f s, peak RSS %.0f MiB, %d feeds"
                          % (r + 1, res["wall_s"], res["peak_rss_kib"] / 1024, res["feeds"]))

            served = B.spread([x["served_s"] for x in cf])
            ready = B.spread([x["ready_s"] for x in cf])
            hugo = B.spread([x["wall_s"] for x in hg])
            speedup = B.ratio(hugo["median"], served["median"])
            rows = [
                ["clipfeed: start -> every feed served (s)", served["median"], served["min"], served["max"],
                 n / served["median"]],
                ["clipfeed: start -> /readyz 200 (s)", ready["median"], ready["min"], ready["max"], n / ready["median"]],
            ]
            if hg:
                rows.append(["hugo build, same records (s)", hugo["median"], hugo["min"], hugo["max"],
                             n / hugo["median"]])
            print("\n== cold ingest, N = %d (%d clippings stored, %d feeds served; %d clipfeed / %d Hugo rounds)"
                  % (n, cf[-1]["clippings"], cf[-1]["feeds"], len(cf), len(hg)))
            print(B.table(["", "median", "min", "max", "files/s"], rows))
            if hg:
                print("speed-up over Hugo (median / median): %.1fx; target >= %.0fx at 10,000: %s"
                      % (speedup, TARGET_SPEEDUP, B.verdict(speedup >= TARGET_SPEEDUP, n, 10000)))
            result = {
                "figure": "cold ingest", "n": n, "seed": args.seed, "machine": machine, "binary": binary,
                "clipfeed": {"served_s": served, "ready_s": ready, "rounds": cf},
                "hugo": {"wall_s": hugo, "rounds": hg, "version": B.tool_version(["hugo", "version"])} if hg else None,
                "speedup_vs_hugo": speedup, "target_speedup": TARGET_SPEEDUP,
            }
            print("results: %s" % B.save(args.workdir, "cold-%d" % n, result))


if __name__ == "__main__":
    main()
