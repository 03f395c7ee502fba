#!/usr/bin/env python3
"""A flood of look-alike clippings (issue 15): N near-identical clippings, which all group into
one story, against N unrelated ones, which each stand alone. The writer's cost per clipping must
not grow with the size of the story it joins, so the flood's cost per file should stay about
flat in N, within a small factor of the unrelated files'.

For each N and each kind (flood, unrelated), two ways in:

  - cold: the N files are there before `clipfeed serve` starts on an empty store; the time is
    from the start to /readyz answering 200 (every file read, grouped and published);
  - watch: the daemon starts on an empty folder and is ready; the N files are then renamed into
    the folder one after another, as fast as the script can, and the time is from the first
    rename to /api/status counting N clippings. The watcher batches what arrives together, so this
    is many small transactions, each touching the story.

Each figure is the wall time and the daemon's CPU time (user + system, from /proc), which is what
compares on a shared machine; per file in milliseconds. The flood clippings are the crash test's
kind (tests/it/crash.rs): the same words but a number, a date a minute apart.

    python3 bench/storyflood.py                          # N = 300 600 1200 2400, both ways
    python3 bench/storyflood.py --n 1200 --ways watch --binary target/debug/clipfeed

Everything listens on 127.0.0.1; each daemon is stopped by its PID. JSON:
WORKDIR/results/storyflood-*.json.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402


def flood(i):
    """Clipping i of the flood: the crash test's look-alikes (one story, whatever N)."""
    date = "2024-03-%02dT%02d:%02d:00Z" % (1 + i // 1440, (i // 60) % 24, i % 60)
    domain = ["wire.example", "post.example", "techweekly.example", "letters.example"][i % 4]
    return ("---\ntitle: \"Story %d edition 1\"\npublishedDateTime: %s\nwebUrl: https://%s/story/%d\n"
            "excerpt: An excerpt of story %d.\nprovider:\n  name: %s\n  domain: %s\ntopics: [Robots, Climate]\n"
            "---\nBody of story %d, edition 1.\n\nA second paragraph with *emphasis* and a "
            "[link](https://%s/more/%d).\n" % (i, date, domain, i, i, domain, domain, i, domain, i))


def word(n):
    """A made-up word for number n (letters only, so no two clippings share vocabulary)."""
    out = ""
    n = n * 2654435761 % 4294967296 + 11881376
    while n:
        out += "bcdfghjklmnpqrstvwz"[n % 19] + "aeiou"[n // 19 % 5]
        n //= 95
    return out


def unrelated(i):
    """Clipping i of the control: same shape and topics, words of its own."""
    words = [word(i * 64 + k) for k in range(48)]
    date = "2024-03-%02dT%02d:%02d:00Z" % (1 + i // 1440, (i // 60) % 24, i % 60)
    domain = ["wire.example", "post.example", "techweekly.example", "letters.example"][i % 4]
    return ("---\ntitle: \"%s\"\npublishedDateTime: %s\nwebUrl: https://%s/item/%d\nexcerpt: %s.\n"
            "provider:\n  name: %s\n  domain: %s\ntopics: [Robots, Climate]\n---\n%s.\n\n%s.\n"
            % (" ".join(words[:6]).capitalize(), date, domain, i, " ".join(words[6:14]), domain, domain,
               " ".join(words[14:32]), " ".join(words[32:])))


KINDS = {"flood": flood, "unrelated": unrelated}


def write_all(folder, kind, n, staging=None):
    """Writes the n clippings into folder (through a rename from staging, when given)."""
    make = KINDS[kind]
    for i in range(n):
        name = "clip-%05d.md" % i
        if staging is None:
            with open(os.path.join(folder, name), "w") as fh:
                fh.write(make(i))
        else:
            tmp = os.path.join(staging, name)
            with open(tmp, "w") as fh:
                fh.write(make(i))
            os.rename(tmp, os.path.join(folder, name))


def cold(binary, run, kind, n):
    root = os.path.join(run, "%s-%d-cold" % (kind, n))
    os.makedirs(root)
    write_all(root, kind, n)
    d = B.Daemon(binary, os.path.join(run, "d-%s-%d-cold" % (kind, n)), [root])
    try:
        wall = d.wait_ready()
        return wall, B.cpu_seconds(d.pid)
    finally:
        d.stop()


def watch(binary, run, kind, n):
    root = os.path.join(run, "%s-%d-watch" % (kind, n))
    staging = root + "-staging"
    os.makedirs(root)
    os.makedirs(staging)
    d = B.Daemon(binary, os.path.join(run, "d-%s-%d-watch" % (kind, n)), [root])
    try:
        d.wait_ready()
        cpu0 = B.cpu_when_idle(d.pid, window=0.5)
        t0 = time.perf_counter()
        write_all(root, kind, n, staging)
        d.wait_for("/api/status", ok=lambda s, body: s == 200 and json.loads(body).get("clippings") == n,
                   every=0.02)
        wall = time.perf_counter() - t0
        return wall, B.cpu_seconds(d.pid) - cpu0
    finally:
        d.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    B.add_common_args(ap, sizes=False)
    ap.add_argument("--n", type=int, nargs="+", default=[300, 600, 1200, 2400], metavar="N",
                    help="clippings of each kind, one or more sizes (default 300 600 1200 2400)")
    ap.add_argument("--ways", nargs="+", choices=["cold", "watch"], default=["cold", "watch"],
                    help="how the files come in (default both)")
    ap.add_argument("--kinds", nargs="+", choices=["unrelated", "flood"], default=["unrelated", "flood"],
                    help="which clippings (default both; the table needs both)")
    args = ap.parse_args()
    binary = B.binary(args)
    rows, raw = [], []
    with B.scratch(args, "storyflood") as run:
        for way in args.ways:
            for n in args.n:
                got = {}
                for kind in args.kinds:
                    wall, cpu = (cold if way == "cold" else watch)(binary, run, kind, n)
                    got[kind] = (wall, cpu)
                    raw.append({"way": way, "n": n, "kind": kind, "wall_s": wall, "cpu_s": cpu})
                    B.log("%s %s N=%d: %.2f s wall, %.2f s CPU" % (way, kind, n, wall, cpu))
                if len(got) < 2:
                    continue
                (uw, uc), (fw, fc) = got["unrelated"], got["flood"]
                rows.append([way, "%d" % n, "%.2f / %.2f" % (uw, uc), "%.2f / %.2f" % (fw, fc),
                             "%.2f / %.2f" % (1000 * uc / n, 1000 * fc / n), B.ratio(fc, uc)])
    print(B.table(["way", "N", "unrelated: wall / CPU s", "flood: wall / CPU s",
                   "CPU ms per file: unrelated / flood", "flood / unrelated (CPU)"], rows))
    path = B.save(args.workdir, "storyflood", {"machine": B.machine(), "rows": raw})
    print("results: %s" % path)


if __name__ == "__main__":
    main()
