#!/usr/bin/env python3
"""Costly requests against cheap ones (issue 12, point 5). The daemon holds N generated clippings
(20,000 by default). A flood process keeps --conns connections (64) busy with costly filtered
views, each one new (so never cached): the whole history (since=1970), limit=500, and twenty
long q/exclude phrases; half of them leave every clipping out (the whole history is read), half
let every clipping through (500 items are rendered). Meanwhile a probe asks, one request at a
time on a new connection, for:

  - a cached view: /feed.atom?limit=5, made once before the flood;
  - a cached archive page: one archive page, made once before the flood;
  - a fresh archive page: an archive page nobody asked for before (a different one each time);
  - the subscription feed /feed.atom (published bytes; the control).

Target: every cached view and archive page (cached or fresh) answered within 0.5 s while the
flood runs. The same probes run for a few seconds before the flood, for comparison; the flood's
own answers are counted (200, 503 past `http.view_timeout`, errors).

    python3 bench/flood.py                         # --n 20000 --conns 64 --seconds 30

Everything listens on 127.0.0.1; the daemon is stopped by its PID. JSON:
WORKDIR/results/flood-N-*.json.
"""
import argparse
import asyncio
import http.client
import itertools
import multiprocessing
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

TARGET_S = 0.5
PAGE = 25  # the archive page size with the default items_per_feed (50)


def phrase(tag, j):
    """A 90-character phrase no clipping holds ('+' is a space in the query)."""
    return ("zq%s%02d+" % (tag, j) + "+".join(["nowhere%02d" % w for w in range(9)]))[:90].rstrip("+")


def costly_path(tag):
    """A new costly filter. An odd tag asks for a phrase no clipping has (q: the whole history is
    read and nothing passes); an even one leaves out phrases no clipping has (exclude: everything
    passes, 500 items are rendered)."""
    phrases = ",".join(phrase(tag, j) for j in range(20))
    which = "q" if tag % 2 else "exclude"
    return "/feed.atom?since=1970-01-01T00:00:00Z&limit=500&%s=%s" % (which, phrases)


def timed_get(port, path, timeout=60):
    """(status, seconds) of one GET on a new connection; status None on a socket error."""
    t0 = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("GET", path)
        res = conn.getresponse()
        res.read()
        conn.close()
        return res.status, time.perf_counter() - t0
    except (OSError, http.client.HTTPException):
        return None, time.perf_counter() - t0


# ------------------------------------------------------------------------------------------------
# The flood (its own process, so the probe's timings do not wait for it)


async def flood_conn(port, worker, stop_at, counts):
    k = 0
    reader = writer = None
    while time.monotonic() < stop_at:
        k += 1
        tag = worker * 1_000_000 + k
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(("GET %s HTTP/1.1\r\nHost: flood.bench\r\n\r\n" % costly_path(tag)).encode())
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), max(1.0, stop_at - time.monotonic()))
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            counts[status] = counts.get(status, 0) + 1
            if b"connection: close" in head.lower():
                writer.close()
                reader = writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ValueError):
            # A request still waiting when the flood ends is not an error.
            what = "unfinished at the end" if time.monotonic() >= stop_at else "errors"
            counts[what] = counts.get(what, 0) + 1
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


def flood(port, conns, seconds, out):
    async def run():
        counts = {}
        stop_at = time.monotonic() + seconds
        await asyncio.gather(*(flood_conn(port, w, stop_at, counts) for w in range(conns)))
        return counts

    out.put(asyncio.run(run()))


# ------------------------------------------------------------------------------------------------
# The probe


def probe(port, seconds, fresh_pages, cached_page, every=0.1):
    """Cycles through the four probes for `seconds`; {kind: [(status, seconds)]}."""
    kinds = ["cached view", "cached archive page", "fresh archive page", "subscription feed"]
    out = {k: [] for k in kinds}
    stop_at = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < stop_at:
        kind = kinds[i % len(kinds)]
        if kind == "cached view":
            path = "/feed.atom?limit=5"
        elif kind == "cached archive page":
            path = cached_page
        elif kind == "fresh archive page":
            path = next(fresh_pages)
        else:
            path = "/feed.atom"
        out[kind].append(timed_get(port, path))
        i += 1
        time.sleep(every)
    return out


def summary(samples):
    rows, data = [], {}
    for kind, xs in samples.items():
        secs = [s for _, s in xs]
        bad = sum(1 for st, _ in xs if st != 200)
        row = {
            "n": len(xs),
            "not_200": bad,
            "p50_ms": B.percentile(secs, 50) * 1000 if secs else None,
            "p95_ms": B.percentile(secs, 95) * 1000 if secs else None,
            "max_ms": max(secs) * 1000 if secs else None,
        }
        data[kind] = row
        rows.append([kind, row["n"], row["not_200"], row["p50_ms"], row["p95_ms"], row["max_ms"]])
    return rows, data


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    B.add_common_args(ap, sizes=False)
    ap.add_argument("--n", type=int, default=20000, help="clippings in the store (default 20000)")
    ap.add_argument("--conns", type=int, default=64, help="flood connections (default 64)")
    ap.add_argument("--seconds", type=int, default=30, help="flood duration (default 30)")
    ap.add_argument("--quiet-seconds", type=int, default=5, help="probing before the flood (default 5)")
    args = ap.parse_args()
    binary = B.binary(args)
    machine = B.machine()
    root = B.corpus(args.workdir, args.n, args.seed)
    with B.scratch(args, "flood-%d" % args.n) as tmp:
        d = B.Daemon(binary, os.path.join(tmp, "clipfeed"), [root])
        try:
            ready = d.wait_ready()
            clippings = d.status()["clippings"]
            B.log("ready after %.1f s with %d clippings" % (ready, clippings))
            pages = max(2, clippings // PAGE - 2)
            if pages < 4 * (args.seconds + args.quiet_seconds):
                B.log("NOTICE: %d archive pages are too few for the probe: fresh archive pages repeat" % pages)
            cached_page = "/feed/archive/%d-%d.atom" % (PAGE, pages // 2)
            for path in ("/feed.atom?limit=5", cached_page):
                status, _ = timed_get(d.port, path)
                if status != 200:
                    B.die("GET %s answered %s" % (path, status))
            fresh = itertools.cycle(["/feed/archive/%d-%d.atom" % (PAGE, i) for i in range(pages) if i != pages // 2])
            # What one costly filter costs on its own (wall time; one of each kind).
            alone = [timed_get(d.port, costly_path(t))[1] for t in (1, 2, 3, 4)]
            B.log("one costly filter alone: %s s" % ", ".join("%.3f" % s for s in alone))

            quiet = probe(d.port, args.quiet_seconds, fresh, cached_page)
            out = multiprocessing.Queue()
            flooder = multiprocessing.Process(target=flood, args=(d.port, args.conns, args.seconds, out))
            cpu0 = B.cpu_seconds(d.pid)
            flooder.start()
            time.sleep(1)  # let the flood fill every connection before the probe starts
            loaded = probe(d.port, args.seconds - 2, fresh, cached_page)
            counts = out.get(timeout=args.seconds + 120)
            flooder.join()
            cpu = B.cpu_seconds(d.pid) - cpu0
            d.check_alive()
        finally:
            d.stop()

    q_rows, q_data = summary(quiet)
    l_rows, l_data = summary(loaded)
    print("\nFlood: %d connections of uncached costly filters for %d s over %d clippings "
          "(one alone: %s s)" % (args.conns, args.seconds, clippings, "/".join("%.2f" % s for s in alone)))
    print("flood answers: %s; daemon CPU during the flood %.1f s" % (
        ", ".join("%s: %d" % (k, v) for k, v in sorted(counts.items(), key=str)), cpu))
    headers = ["probe", "n", "not 200", "p50 ms", "p95 ms", "max ms"]
    print("\nBefore the flood\n" + B.table(headers, q_rows))
    print("\nDuring the flood\n" + B.table(headers, l_rows))
    worst = max(l_data[k]["max_ms"] or 0 for k in ("cached view", "cached archive page", "fresh archive page"))
    failed = sum(l_data[k]["not_200"] for k in l_data)
    ok = worst <= TARGET_S * 1000 and failed == 0
    print("\ncached views and archive pages within %.1f s during the flood (worst %.0f ms, %d not 200): %s"
          % (TARGET_S, worst, failed, B.verdict(ok)))
    path = B.save(args.workdir, "flood-%d" % args.n, {
        "machine": machine, "n": args.n, "clippings": clippings, "conns": args.conns, "seconds": args.seconds,
        "costly_alone_s": alone, "flood_answers": {str(k): v for k, v in counts.items()}, "daemon_cpu_s": cpu,
        "quiet": q_data, "flood": l_data, "quiet_samples": quiet, "flood_samples": loaded, "met": ok,
    })
    B.log("results: %s" % path)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
