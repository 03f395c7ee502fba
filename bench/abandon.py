#!/usr/bin/env python3
"""Work for clients that have gone (issue 12, point 5). The daemon holds N generated clippings
(20,000 by default). 100 costly filtered views (each new, so never cached: the whole history,
limit=500, twenty long q/exclude phrases, as bench/flood.py sends them) are sent on 100
connections, which are then closed without reading an answer. Reported: the CPU time the daemon
spends from the first request until it is idle again (no CPU used for a second), against what
the same requests cost when answered; then how long the next archive page (never asked for
before) and a cached view take.

Two ways of leaving: "at once" closes every connection as soon as the last request is sent (all
100 in well under a second); "mid-way" closes them --after seconds later, when the daemon has
started on them.

Target: well under 1 CPU-second for the 100 abandoned requests.

    python3 bench/abandon.py                       # --n 20000 --requests 100 --after 0.5

Everything listens on 127.0.0.1; the daemon is stopped by its PID. JSON:
WORKDIR/results/abandon-N-*.json.
"""
import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
from flood import PAGE, costly_path, timed_get  # noqa: E402

TARGET_CPU_S = 1.0


def abandon(port, tags, after):
    """Sends one costly request per tag, each on its own connection, then closes them all
    `after` seconds later; returns the seconds from the first connect to the last close."""
    t0 = time.perf_counter()
    socks = []
    for tag in tags:
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(("GET %s HTTP/1.1\r\nHost: abandon.bench\r\n\r\n" % costly_path(tag)).encode())
        socks.append(s)
    if after:
        time.sleep(after)
    for s in socks:
        s.close()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    B.add_common_args(ap, sizes=False)
    ap.add_argument("--n", type=int, default=20000, help="clippings in the store (default 20000)")
    ap.add_argument("--requests", type=int, default=100, help="abandoned requests per round (default 100)")
    ap.add_argument("--after", type=float, default=0.5, help="seconds before the mid-way close (default 0.5)")
    ap.add_argument("--answered", type=int, default=6, help="costly requests answered, to cost one (default 6)")
    args = ap.parse_args()
    binary = B.binary(args)
    machine = B.machine()
    root = B.corpus(args.workdir, args.n, args.seed)
    rows, data = [], {}
    with B.scratch(args, "abandon-%d" % args.n) as tmp:
        d = B.Daemon(binary, os.path.join(tmp, "clipfeed"), [root])
        try:
            d.wait_ready()
            clippings = d.status()["clippings"]
            timed_get(d.port, "/feed.atom?limit=5")
            # What one costly filter costs when it is answered.
            cpu0 = B.cpu_when_idle(d.pid)
            walls = [timed_get(d.port, costly_path(t))[1] for t in range(1, args.answered + 1)]
            one = (B.cpu_when_idle(d.pid) - cpu0) / args.answered
            B.log("one costly filter answered: %.3f CPU-s, %.3f s" % (one, sum(walls) / len(walls)))
            pages = max(1, clippings // PAGE - 2)
            page = pages // 3
            for name, after in (("at once", 0.0), ("mid-way", args.after)):
                base = 1_000_000 * (len(data) + 1)
                cpu0 = B.cpu_when_idle(d.pid)
                sent = abandon(d.port, range(base, base + args.requests), after)
                spent = B.cpu_when_idle(d.pid) - cpu0
                page = (page + 1) % pages
                archive = timed_get(d.port, "/feed/archive/%d-%d.atom" % (PAGE, page))
                cached = timed_get(d.port, "/feed.atom?limit=5")
                data[name] = {"sent_and_closed_s": sent, "cpu_s": spent, "answered_would_cost_cpu_s":
                              one * args.requests, "next_archive": archive, "next_cached_view": cached}
                rows.append([name, "%.2f" % sent, "%.2f" % spent, "%.1f" % (one * args.requests),
                             "%s in %.0f ms" % (archive[0], archive[1] * 1000),
                             "%s in %.0f ms" % (cached[0], cached[1] * 1000)])
            d.check_alive()
        finally:
            d.stop()
    print("\n%d abandoned costly filters over %d clippings (one answered: %.3f CPU-s)"
          % (args.requests, clippings, one))
    print(B.table(["left", "sent+closed s", "daemon CPU-s", "if answered CPU-s", "next archive page",
                   "next cached view"], rows))
    ok = all(v["cpu_s"] < TARGET_CPU_S for v in data.values())
    print("\nunder %.0f CPU-second for %d abandoned requests: %s" % (TARGET_CPU_S, args.requests, B.verdict(ok)))
    path = B.save(args.workdir, "abandon-%d" % args.n, {
        "machine": machine, "n": args.n, "clippings": clippings, "requests": args.requests, "after_s": args.after,
        "one_answered_cpu_s": one, "one_answered_wall_s": walls, "rounds": data, "met": ok,
    })
    B.log("results: %s" % path)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
