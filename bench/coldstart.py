#!/usr/bin/env python3
"""Honest start-up, timed: an empty store, N generated clippings already in the root; from the
start of `clipfeed serve`, the time to the first answer (listening), to the first feed served with
items, to /readyz 200 (the first reconcile done), and what a reader polling every 50 ms saw
meanwhile. Then a restart over the filled store: the time until the same feeds are served.

    python3 bench/coldstart.py --n 25000

A warm-up round (not counted) reads every input file once and takes the feed paths from the
OPML list: /feed.rss, /topics/ai.rss and the first provider feed. Each measured round removes
the store, starts the daemon and, on one kept-alive connection, GETs the three feeds, /readyz
and /api/status every 50 ms until all three feeds answer 200 with items. Every feed answer is
judged: 503 with Retry-After (expected while indexing), 200 with items (served), and anything
else is counted as a failure (a 404, an empty 200, a 503 without Retry-After): the issue's
"never a 404 or an empty 200" is `failures = 0`. The status's `indexing.files_read` must never
go back. Reports medians with min-max over --rounds. JSON: WORKDIR/results/coldstart-N-*.json.
"""
import argparse
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

POLL_EVERY = 0.05


def has_items(body):
    """Whether a feed document (RSS, Atom or JSON Feed) holds at least one item."""
    if body.lstrip().startswith(b"{"):
        return bool(json.loads(body).get("items"))
    return b"<item>" in body or b"<item " in body or b"<entry>" in body or b"<entry " in body


def measured_round(binary, rundir, root, feeds, fresh=True):
    store = os.path.join(rundir, "store.db")
    if fresh:
        B.fresh_store(store)
    d = B.Daemon(binary, rundir, [root], store=store, log_level="info")
    first_feed = listening = ready = None
    served = {}
    counts = {"unavailable": 0, "served": 0, "failures": 0}
    failures, last_read, went_back = [], 0, False
    try:
        while len(served) < len(feeds):
            d.check_alive()
            for path in feeds:
                status, headers, body = d.client.get(path)
                now = time.perf_counter() - d.started
                if status is None:
                    continue
                listening = listening if listening is not None else now
                if status == 503 and headers.get("retry-after", "").isdigit():
                    counts["unavailable"] += 1
                elif status == 200 and has_items(body):
                    counts["served"] += 1
                    served.setdefault(path, now)
                    first_feed = first_feed if first_feed is not None else now
                else:
                    counts["failures"] += 1
                    failures.append((round(now, 3), path, status, len(body)))
            status, _, _ = d.client.get("/readyz")
            if status == 200 and ready is None:
                ready = time.perf_counter() - d.started
            status, _, body = d.client.get("/api/status")
            if status == 200:
                indexing = json.loads(body).get("indexing") or {}
                read = indexing.get("files_read", last_read)
                went_back |= read < last_read
                last_read = max(last_read, read)
            time.sleep(POLL_EVERY)
        if ready is None:
            ready = d.wait_ready()
        log = open(d.log_path).read()
        progress_lines = len(re.findall(r"indexing: \d+ of \d+", log))
    finally:
        d.stop()
    return {"listening_s": listening, "first_feed_s": first_feed, "all_three_s": max(served.values()),
            "ready_s": ready, "counts": counts, "failures": failures[:20], "progress_went_back": went_back,
            "progress_log_lines": progress_lines}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    B.add_common_args(ap)
    ap.add_argument("--rounds", type=int, default=3, help="measured cold starts (default 3)")
    args = ap.parse_args()
    binary = B.binary(args)
    machine = B.machine()
    for n in args.n:
        with B.scratch(args, "coldstart-%d" % n) as tmp:
            root = B.corpus(args.workdir, n, args.seed)
            rundir = os.path.join(tmp, "clipfeed")
            B.log("warming the page cache and finding the feeds ...")
            B.warm_cache(root)
            B.fresh_store(os.path.join(rundir, "store.db"))
            d = B.Daemon(binary, rundir, [root], store=os.path.join(rundir, "store.db"))
            try:
                d.wait_ready()
                paths = d.feed_paths()
            finally:
                d.stop()
            provider = next((p for p in paths if p.startswith("/providers/")), None)
            topic = "/topics/ai.rss" if "/topics/ai.rss" in paths else next(p for p in paths if p.startswith("/topics/"))
            feeds = [p for p in ["/feed.rss", topic, provider] if p]
            rounds = []
            for r in range(args.rounds):
                res = measured_round(binary, rundir, root, feeds)
                rounds.append(res)
                B.log("  round %d: listening %.2f s, first feed %.2f s, ready %.2f s, %s"
                      % (r + 1, res["listening_s"], res["first_feed_s"], res["ready_s"], res["counts"]))
            restart = measured_round(binary, rundir, root, feeds, fresh=False)
            rows = []
            for key, label in [("listening_s", "start -> listening"), ("first_feed_s", "start -> first feed with items"),
                               ("all_three_s", "start -> all three feeds with items"),
                               ("ready_s", "start -> reconciled (/readyz 200)")]:
                s = B.spread([x[key] for x in rounds])
                rows.append([label + " (s)", s["median"], s["min"], s["max"]])
            print("\n== cold start, N = %d, feeds %s, polled every %d ms (%d rounds)"
                  % (n, ", ".join(feeds), POLL_EVERY * 1000, len(rounds)))
            print(B.table(["", "median", "min", "max"], rows))
            failures = sum(x["counts"]["failures"] for x in rounds)
            back = any(x["progress_went_back"] for x in rounds)
            print("answers while starting: %d x 503 + Retry-After, %d x 200 with items, %d failures "
                  "(404, empty 200, other); progress went back: %s; progress log lines per round: %s"
                  % (sum(x["counts"]["unavailable"] for x in rounds), sum(x["counts"]["served"] for x in rounds),
                     failures, back, [x["progress_log_lines"] for x in rounds]))
            print("restart over the filled store: first feed %.2f s, all three %.2f s, ready %.2f s, %d failures"
                  % (restart["first_feed_s"], restart["all_three_s"], restart["ready_s"],
                     restart["counts"]["failures"]))
            print("never a 404 or an empty 200: %s" % B.verdict(failures == 0 and not back))
            result = {"figure": "cold start", "n": n, "seed": args.seed, "machine": machine, "binary": binary,
                      "feeds": feeds, "rounds": rounds, "restart": restart}
            print("results: %s" % B.save(args.workdir, "coldstart-%d" % n, result))


if __name__ == "__main__":
    main()
