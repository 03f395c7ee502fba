#!/usr/bin/env python3
"""What repeated topic remaps do to the store's size: each binary given starts on a copy of a
kept store (configuration A of bench/remap.py), then reloads B, A, B, ... --rounds times. After
each reload it waits until the daemon has used no CPU for two seconds (the writer's idle work
done: the search index's merging), then reads the store beside it, read-only: the file's size,
its free pages, the pages in use and the search index's (FTS5 segments, `search_index_data`),
with the load. At the end, after a clean stop, the tables that grew most.

    python3 bench/remapstore.py --store /tmp/kept100k/store.db --rounds 4 B1 B2

The store is copied for each binary and the copy goes with the run. Python's sqlite3 reads the
page counts (`dbstat`), never the index itself, so an older SQLite than clipfeed's will do.
"""
import argparse
import os
import shutil
import signal
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
import remap as R  # noqa: E402


def pages(store):
    """(file bytes, free bytes, bytes of each table and index by name)."""
    c = sqlite3.connect("file:%s?mode=ro" % store, uri=True)
    try:
        size = c.execute("PRAGMA page_size").fetchone()[0]
        free = c.execute("PRAGMA freelist_count").fetchone()[0] * size
        tables = dict(c.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
    finally:
        c.close()
    return os.path.getsize(store), free, tables


def line(label, store):
    size, free, tables = pages(store)
    B.log("  %-28s file %7.1f MB, free %5.1f MB, in use %7.1f MB, search index %6.1f MB (load %.1f)"
          % (label, size / 1e6, free / 1e6, sum(tables.values()) / 1e6,
             tables.get("search_index_data", 0) / 1e6, os.getloadavg()[0]))
    return tables


def one(binary, args):
    work = os.path.join(args.work, "run")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    store = os.path.join(work, "store.db")
    shutil.copyfile(args.store, store)
    B.log(binary)
    d = B.Daemon(binary, os.path.join(work, "cf"), [args.root], store=store, log_level="info",
                 extra_config=R.CONFIG_A)
    try:
        d.wait_ready(timeout=3600)
        R.settle_remap(d)
        B.cpu_when_idle(d.pid, 2.0)
        first = line("start", store)
        for r in range(args.rounds):
            R.write_config(d, R.CONFIG_B if r % 2 == 0 else R.CONFIG_A)
            done = open(d.log_path).read().count("configuration reloaded")
            t0 = time.perf_counter()
            d.proc.send_signal(signal.SIGHUP)
            while open(d.log_path).read().count("configuration reloaded") <= done:
                d.check_alive()
                time.sleep(0.05)
            reloaded = time.perf_counter() - t0
            B.cpu_when_idle(d.pid, 2.0)
            line("reload %d (%.1f s, idle at %.1f s)" % (r + 1, reloaded, time.perf_counter() - t0), store)
    finally:
        d.stop()
    last = line("stopped", store)
    grew = sorted(last, key=lambda k: first.get(k, 0) - last[k])[:6]
    B.log("  grew most: " + ", ".join("%s %.1f -> %.1f MB" % (k, first.get(k, 0) / 1e6, last[k] / 1e6)
                                      for k in grew))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binaries", nargs="+", help="clipfeed binaries, one after the other")
    ap.add_argument("--store", required=True, help="a kept store of --root's corpus (copied, never changed)")
    ap.add_argument("--root", default="/tmp/clipfeed-bench/corpus/clips-100000-s1",
                    help="the clippings folder the store was built from (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=4, help="reloads, alternating B and A (default 4)")
    ap.add_argument("--work", default="/tmp/clipfeed-bench/remapstore", help="scratch folder")
    args = ap.parse_args()
    for binary in args.binaries:
        one(os.path.abspath(binary), args)


if __name__ == "__main__":
    main()
