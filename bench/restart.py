#!/usr/bin/env python3
"""Figure 2, restart: the daemon started again on the same store and the same, unchanged files;
the time to ready (GET /readyz answers 200: the start-up comparison of every file with the store
is done) and to the first feed served (the first 200 of GET /topics/ai.rss, which a restart
serves from the stored feeds before that comparison ends). Baseline, in the same run: Hugo
building the same unchanged site again into its existing output folder (a Hugo "restart": it has
no state to reuse beyond its output).

    python3 bench/restart.py --n 10000           # or --n 10000 100000

The store is made by a cold ingest at the start (in a temp folder under WORKDIR/runs). Each round
starts `clipfeed serve`, polls /readyz and the feed every 5 ms on two connections, checks the
clipping count in /api/status, and stops the daemon (SIGTERM). --rounds clipfeed rounds
alternate with --hugo-rounds Hugo builds. Target: ready in under 1 s with 100,000 clippings.
JSON: WORKDIR/results/restart-N-*.json.
"""
import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
from cold import hugo_round  # noqa: E402

TARGET_READY_S = 1.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    B.add_common_args(ap)
    ap.add_argument("--rounds", type=int, default=5, help="clipfeed restarts (default 5)")
    ap.add_argument("--hugo-rounds", type=int, default=2, help="Hugo rebuilds (default 2)")
    ap.add_argument("--no-hugo", action="store_true", help="skip the baseline")
    args = ap.parse_args()
    hugo_rounds = 0 if args.no_hugo else args.hugo_rounds
    B.ensure_tools(*(["hugo", "/usr/bin/time"] if hugo_rounds else []))
    binary = B.binary(args)
    machine = B.machine()

    for n in args.n:
        with B.scratch(args, "restart-%d" % n) as tmp:
            root = B.corpus(args.workdir, n, args.seed)
            site = B.hugo_site(args.workdir, n, args.seed) if hugo_rounds else None
            rundir = os.path.join(tmp, "clipfeed")
            store = os.path.join(rundir, "store.db")
            pub = os.path.join(tmp, "hugo-public")
            expected = B.distinct_urls(root)

            # The store: made by a cold ingest the first time, then kept.
            d = B.Daemon(binary, rundir, [root], store=store)
            try:
                first = d.wait_ready()
                count = d.status()["clippings"]
            finally:
                d.stop()
            if count != expected:
                B.die("the store holds %d clippings, the corpus %d" % (count, expected))
            B.log("store ready (%d clippings, first start %.1f s); warming the page cache ..." % (count, first))
            B.warm_cache(*[x for x in (root, site) if x])
            if hugo_rounds:
                B.log("  hugo: first build into %s" % pub)
                hugo_round(site, pub)

            cf, hg = [], []
            for r in range(max(args.rounds, hugo_rounds)):
                if r < args.rounds:
                    d = B.Daemon(binary, rundir, [root], store=store)
                    try:
                        ready, feed = d.wait_ready_and_first_feed()
                        status = d.status()
                        mem = d.memory()
                    finally:
                        d.stop()
                    if status["clippings"] != expected:
                        B.die("after the restart the store serves %d clippings, expected %d"
                              % (status["clippings"], expected))
                    cf.append({"ready_s": ready, "first_feed_s": feed, "clippings": status["clippings"],
                               "renders": status.get("renders"), "vmhwm_kib": mem.get("VmHWM")})
                    B.log("  clipfeed restart %d: first feed %.3f s, ready %.3f s" % (r + 1, feed, ready))
                if r < hugo_rounds:
                    res = hugo_round(site, pub, keep_output=True)
                    hg.append(res)
                    B.log("  hugo rebuild %d: %.2f s" % (r + 1, res["wall_s"]))

            ready = B.spread([x["ready_s"] for x in cf])
            feed = B.spread([x["first_feed_s"] for x in cf])
            hugo = B.spread([x["wall_s"] for x in hg])
            rows = [["clipfeed: start -> first feed served (s)", feed["median"], feed["min"], feed["max"]],
                    ["clipfeed: start -> /readyz 200 (s)", ready["median"], ready["min"], ready["max"]]]
            if hg:
                rows.append(["hugo rebuild, unchanged, output kept (s)", hugo["median"], hugo["min"], hugo["max"]])
            print("\n== restart, N = %d unchanged (%d clipfeed / %d Hugo rounds)" % (n, len(cf), len(hg)))
            print(B.table(["", "median", "min", "max"], rows))
            if hg:
                print("ready vs Hugo rebuild (median / median): %.1fx faster" % B.ratio(hugo["median"], ready["median"]))
            print("target ready < %.0f s at 100,000: %s"
                  % (TARGET_READY_S, B.verdict(ready["median"] < TARGET_READY_S, n, 100000)))
            result = {
                "figure": "restart", "n": n, "seed": args.seed, "machine": machine, "binary": binary,
                "clipfeed": {"ready_s": ready, "first_feed_s": feed, "rounds": cf},
                "hugo_rebuild": {"wall_s": hugo, "rounds": hg} if hg else None,
                "target_ready_s": TARGET_READY_S,
            }
            print("results: %s" % B.save(args.workdir, "restart-%d" % n, result))


if __name__ == "__main__":
    main()
