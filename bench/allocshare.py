#!/usr/bin/env python3
"""The allocator's share of a perf profile of the daemon (issue 17, branch alloc9). For each
perf.data given, over the self samples of the daemon's threads (comm `clipfeed-*`): the share in
the allocator's own user-space code (glibc's `_int_malloc`, `_int_free`, `unlink_chunk`,
`malloc_consolidate`, ... or mimalloc's `mi_*`), in the kernel's memory paths (page faults,
zeroing, madvise, unmapping: what an allocator that hands pages back pays), and in futex and
scheduler paths (lock waits and wake-ups, from the allocator's arena locks among others), with
the top allocator symbols and the samples per thread.

    perf record -F 499 -p PID -o OUT/perf.data          # self samples; call graphs not needed
    python3 bench/allocshare.py OUT/perf.data [MORE.data ...]

Self time only: callers (SQLite's own malloc calls against the Rust code's) need a call-graph
profile (`perf record -g --call-graph dwarf`) and `perf report --children`.
"""
import collections
import re
import subprocess
import sys

ALLOCATOR = re.compile(r"^(_int_malloc|malloc|_int_free|cfree\S*|free|realloc|_int_realloc|unlink_chunk\S*|"
                       r"malloc_consolidate|__libc_\w+|calloc|tcache_\w+|arena_get2\S*|sysmalloc|systrim\S*|"
                       r"__lll_lock_\w+|_int_memalign|_?_?mi_\w+(\.\w+)?)$")
KERNEL_MEMORY = re.compile(r"clear_page|page_fault|madvise|zap_|unmap|free_pages|release_pages|"
                           r"get_page_from_freelist|__mem_cgroup|lru|folio_|handle_mm_fault|do_anonymous_page|tlb")
FUTEX = re.compile(r"futex|_raw_spin_unlock_irqrestore|finish_task_switch|try_to_wake_up|schedule")


def share(path):
    out = subprocess.run(["perf", "report", "-i", path, "--no-children", "--sort", "comm,sym", "--stdio",
                          "--percent-limit", "0", "-F", "sample,comm,sym"],
                         capture_output=True, text=True, check=True).stdout
    total = alloc = kmem = futex = 0
    top, threads = collections.Counter(), collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s*(\d+)\s+(clipfeed-\S+)\s+\[(.)\]\s+(.*)$", line)
        if not m:
            continue
        n, comm, space, sym = int(m.group(1)), m.group(2), m.group(3), m.group(4).strip()
        total += n
        threads[comm] += n
        if space == "." and ALLOCATOR.match(sym):
            alloc += n
            top[sym] += n
        elif space == "k" and KERNEL_MEMORY.search(sym):
            kmem += n
        elif space == "k" and FUTEX.search(sym):
            futex += n
    if not total:
        return "%s: no samples of clipfeed-* threads" % path
    pct = lambda v: 100.0 * v / total
    return ("%s: %d samples (%s)\n  allocator %.1f%%, kernel memory paths %.1f%%, futex/scheduler %.1f%%\n  top: %s"
            % (path, total, ", ".join("%s %d" % kv for kv in threads.most_common(4)), pct(alloc), pct(kmem),
               pct(futex), ", ".join("%s %.1f%%" % (s, pct(v)) for s, v in top.most_common(6))))


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if len(sys.argv) > 1 else 2)
    for p in sys.argv[1:]:
        print(share(p))
