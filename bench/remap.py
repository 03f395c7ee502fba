#!/usr/bin/env python3
"""Topic remap: a reload (SIGHUP) that changes topics, aliases and keywords over N stored
clippings. Measures the time from the signal to the switch (every new feed published at once,
seen as the moment the feed of everything changes: polled with If-None-Match, 304 until then)
and to the daemon's "configuration reloaded", and the latency of the feed requests a client issues the whole time
(p50, p99, max), with every answer checked: 200 for the feeds that exist before and after, and
for the topic the new rules bring into being only 503 (with Retry-After) or 404 before the switch
and 200 after it. Target (issue 17): at 100,000, feeds keep answering throughout and the new feeds
are complete in under 10 s.

    python3 bench/remap.py --n 100000            # or --n 10000 100000

The store is made by a cold ingest at the start (in a temp folder under WORKDIR/runs), or, with
--store PATH, copied from a kept store of the same corpus (never modified; the copy is the
run's and goes with it), which saves the minutes a cold ingest of 100,000 takes. A kept store
written under other topics is re-mapped to A at the first start, before the rounds. Then
--rounds reloads alternate between two configurations, A and B, so each round is a full remap:
B makes "Deep Learning" an alias of Machine Learning, gives Robotics the keyword "robot", and
brings in a topic "Vision" with the aliases Computer Vision and Facial Recognition; A has none
of that. JSON: WORKDIR/results/remap-N-*.json.
"""
import argparse
import datetime
import os
import shutil
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

TARGET_S = 10.0

CONFIG_A = """topics:
  - name: Machine Learning
  - name: Robotics
"""
CONFIG_B = """topics:
  - name: Machine Learning
    aliases: [Deep Learning]
  - name: Robotics
    keywords: [robot]
  - name: Vision
    aliases: [Computer Vision, Facial Recognition]
"""
# Feeds that exist under both configurations, and the one only B has.
STEADY = ["/feed.rss", "/topics/ai.rss", "/topics/machine-learning.rss", "/topics/robotics.json",
          "/topics/deep-learning.atom", "/providers/vice.com.rss"]
NEW_UNDER_B = "/topics/vision.rss"


def write_config(d, topics):
    """Rewrites the daemon's configuration with `topics` in place of the topics it had."""
    with open(d.config) as fh:
        lines = fh.read().split("topics:")[0]
    with open(d.config, "w") as fh:
        fh.write(lines + topics)


class Reader:
    """A client issuing feed requests one after the other on one connection until stopped:
    every answer's path, status, latency and time."""

    def __init__(self, port, paths):
        self.client, self.paths = B.Client(port), paths
        self.samples, self.stop = [], threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        i = 0
        while not self.stop.is_set():
            path = self.paths[i % len(self.paths)]
            t0 = time.perf_counter()
            status, headers, _ = self.client.get(path)
            t1 = time.perf_counter()
            self.samples.append((path, status, t1 - t0, t1, "retry-after" in headers))
            i += 1


def reload_round(d, topics, new_path):
    """One reload: (seconds to the switch, seconds to "configuration reloaded", the reader's
    samples from the signal to the switch, the wrong answers). The switch is seen as the moment
    the feed of everything changes (its ETag): it changes only then, with every other feed."""
    done_before = open(d.log_path).read().count("configuration reloaded")
    _, headers, _ = d.client.get("/feed.rss")
    etag = headers["etag"]
    write_config(d, topics)
    reader = Reader(d.port, STEADY + [new_path])
    reader.thread.start()
    time.sleep(0.5)  # requests before the signal, for comparison
    t0 = time.perf_counter()
    d.proc.send_signal(signal.SIGHUP)
    switched = reloaded = None
    while reloaded is None or switched is None:
        now = time.perf_counter() - t0
        if now > 600:
            B.die("the remap did not finish within 600 s; see %s" % d.log_path)
        if reloaded is None and open(d.log_path).read().count("configuration reloaded") > done_before:
            reloaded = now
        if switched is None:
            st, _, _ = d.client.get("/feed.rss", {"If-None-Match": etag})
            if st == 200:
                switched = time.perf_counter() - t0
            elif st != 304:
                B.die("/feed.rss answered %s during the remap" % st)
        d.check_alive()
        time.sleep(0.002)
    time.sleep(0.5)
    reader.stop.set()
    reader.thread.join()
    failures = []
    for path, status, latency, at, retry in reader.samples:
        # Sent before the switch was seen: the old site may have answered it (an answer sent
        # before the switch can arrive after the poll that saw it, on a loaded machine).
        before = at - latency - t0 < switched
        if path in STEADY:
            ok = status == 200
        else:
            # A topic only the new rules have: 404, or 503 with Retry-After, until the switch.
            ok = status == 200 or (before and (status == 404 or (status == 503 and retry)))
        if not ok:
            failures.append((path, status, round(at - t0, 3)))
    during = [s for s in reader.samples if 0 <= s[3] - t0 <= switched]
    return switched, reloaded, during, failures


def render_phases(lines):
    """Seconds from each remap's "items re-mapped; rendering the feeds" line to the next
    "configuration reloaded" line of the daemon's log (text format, RFC 3339 time first)."""
    def at(line):
        return datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()
    out, start = [], None
    for line in lines:
        if "rendering the feeds" in line:
            start = at(line)
        elif "configuration reloaded" in line and start is not None:
            out.append(at(line) - start)
            start = None
    return out


def settle_remap(d):
    """Waits until no remap is under way (a kept store written under other topics is re-mapped
    to configuration A at its first start) and the feeds are rendered."""
    while d.status().get("remap") is not None:
        d.check_alive()
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    B.add_common_args(ap)
    ap.add_argument("--rounds", type=int, default=4, help="reloads, alternating B and A (default 4)")
    ap.add_argument("--store", help="start from a copy of this kept store (of the corpus of N and --seed) "
                    "instead of a cold ingest; one N only")
    args = ap.parse_args()
    binary = B.binary(args)
    machine = B.machine()
    if args.store and len(args.n) != 1:
        B.die("--store goes with one --n, the size of the corpus the store was made from")
    for n in args.n:
        with B.scratch(args, "remap-%d" % n) as tmp:
            root = B.corpus(args.workdir, n, args.seed)
            store = None
            if args.store:
                store = os.path.join(tmp, "store.db")
                B.log("copying %s" % args.store)
                shutil.copyfile(args.store, store)
            d = B.Daemon(binary, os.path.join(tmp, "clipfeed"), [root], store=store, log_level="info",
                         extra_config=CONFIG_A)
            try:
                first = d.wait_ready()
                settle_remap(d)
                B.log("store ready (%d clippings, first start %.1f s)" % (d.status()["clippings"], first))
                rounds = []
                for r in range(args.rounds):
                    to_b = r % 2 == 0
                    switched, reloaded, during, failures = reload_round(
                        d, CONFIG_B if to_b else CONFIG_A, NEW_UNDER_B)
                    lat = [s[2] * 1e3 for s in during if s[1] == 200]
                    res = {"to": "B" if to_b else "A", "switch_s": switched, "reloaded_s": reloaded,
                           "requests": len(during), "p50_ms": B.percentile(lat, 50) if lat else None,
                           "p99_ms": B.percentile(lat, 99) if lat else None, "max_ms": max(lat) if lat else None,
                           "failures": failures[:20], "failures_total": len(failures), "load1": os.getloadavg()[0]}
                    rounds.append(res)
                    B.log("  reload %d (to %s): switch %.2f s, reloaded %.2f s, %d requests during it, "
                          "p50 %.2f ms, max %.1f ms, %d failures (load %.1f)"
                          % (r + 1, res["to"], switched, reloaded, len(during), res["p50_ms"] or 0,
                             res["max_ms"] or 0, len(failures), res["load1"]))
                mem = d.memory()
                log_lines = open(d.log_path).read().splitlines()
                log_tail = [ln for ln in log_lines if "re-mapp" in ln][-4:]
                render_s = render_phases(log_lines)[-len(rounds):]
            finally:
                d.stop()
            sw = B.spread([r["switch_s"] for r in rounds])
            p50 = B.spread([r["p50_ms"] for r in rounds if r["p50_ms"] is not None])
            mx = B.spread([r["max_ms"] for r in rounds if r["max_ms"] is not None])
            fails = sum(r["failures_total"] for r in rounds)
            print("\n== topic remap, N = %d (%d reloads, alternating two configurations)" % (n, len(rounds)))
            print(B.table(["", "median", "min", "max"], [
                ["SIGHUP -> new feeds published (s)", sw["median"], sw["min"], sw["max"]],
                ["feed requests during it: p50 (ms)", p50["median"], p50["min"], p50["max"]],
                ["feed requests during it: max (ms)", mx["median"], mx["min"], mx["max"]],
            ]))
            print("requests during the remaps: %d, wrong answers: %d" % (sum(r["requests"] for r in rounds), fails))
            for line in log_tail:
                print("  log: " + line.split("  ", 1)[-1])
            print("render phase of each reload (the remap's last log line to \"configuration reloaded\"): %s"
                  % ", ".join("%.2f s" % x for x in render_s))
            print("target: new feeds complete < %.0f s at 100,000, feeds answering throughout: %s"
                  % (TARGET_S, B.verdict(sw["max"] < TARGET_S and fails == 0, n, 100000)))
            result = {"figure": "remap", "n": n, "seed": args.seed, "machine": machine, "binary": binary,
                      "store": args.store, "loadavg": os.getloadavg(),
                      "first_start_s": first, "rounds": rounds, "switch_s": sw, "p50_ms": p50, "max_ms": mx,
                      "failures": fails, "vmhwm_kib": mem.get("VmHWM"), "target_s": TARGET_S,
                      "render_s": render_s}
            print("results: %s" % B.save(args.workdir, "remap-%d" % n, result))


if __name__ == "__main__":
    main()
