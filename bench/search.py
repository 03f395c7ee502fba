#!/usr/bin/env python3
"""Search feeds over HTTP: the latency of uncached `search=`, `q` and `exclude` feeds with N
clippings stored, for a fixed list of queries including the worst cases (a word in about half of
all clippings, the most common word, twenty terms, three-letter prefixes, a topic feed). Baseline,
in the same run: the same `q` and `exclude` feeds from a clipfeed built before the search index
(by default commit 10478fb, the last whose `q` and `exclude` scanned the feed's whole history).

    python3 bench/search.py --n 10000               # or --n 10000 100000
    python3 bench/search.py --n 100000 --no-baseline
    python3 bench/search.py --baseline-binary PATH  # a clipfeed built elsewhere

Each daemon (this one, then the baseline) gets a new store over the cached corpus; once /readyz
answers 200, each query is asked --probes times on one kept-alive connection, each time with a
`since=` a second apart in 1970 (which every clipping passes, so the answer is the same) so that
no probe is answered from the views' cache: every probe makes its view. The time is the client's,
from the request to the last byte of the RSS document (up to 50 items, as a subscription has).

The words are chosen from the generator's own vocabulary by their frequency in a sample of the
corpus, so the list keeps its meaning whatever the generator writes: the word in closest to half
of the clippings (anywhere, for `search=`; in the title or excerpt, what `q` reads, for `q`), the
most common one, a rare one (a company
and a title tail that seldom meet).

The baseline binary is built once from `git archive REV` into WORKDIR/baseline-REV (release,
its own target folder), and reused. Prints p50/p99 per query and the baseline's for the `q`
rows; JSON: WORKDIR/results/search-N-*.json.
"""
import argparse
import os
import shutil
import random
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

BASELINE_REV = "10478fb"
SAMPLE = 2000
WORD = re.compile(r"[a-z]+")
# Words of the generator's body text (gen_clippings.py's WORDS) that are candidates; whichever of
# them the sample finds closest to the frequency wanted is used.
CANDIDATES = ("company said would continue allow organizations technology while lawmakers consider rules "
              "governing artificial intelligence machine learning systems shown biased against groups critics "
              "argue move does outright government tools researchers found models trained large data sets "
              "reproduce errors scale announcement comes amid growing scrutiny regulators investors employees "
              "worry about privacy safety accountability automated decision making").split()


def front_text(path):
    """The lower-cased title and excerpt lines of a clipping file, and the whole text."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        text = fh.read().lower()
    te = " ".join(l for l in text.splitlines() if l.startswith(("title:", "excerpt:")))
    return te, text


def pick_words(root):
    names = sorted(n for n in os.listdir(root) if n.endswith(".md"))
    sample = random.Random(1).sample(names, min(SAMPLE, len(names)))
    in_te = {w: 0 for w in CANDIDATES}
    anywhere = {w: 0 for w in CANDIDATES}
    for name in sample:
        te, text = front_text(os.path.join(root, name))
        te_words, all_words = set(WORD.findall(te)), set(WORD.findall(text))
        for w in CANDIDATES:
            in_te[w] += w in te_words
            anywhere[w] += w in all_words
    n = float(len(sample))
    half = min(CANDIDATES, key=lambda w: (abs(anywhere[w] / n - 0.5), w))
    half_q = min(CANDIDATES, key=lambda w: (abs(in_te[w] / n - 0.5), w))
    common = max(CANDIDATES, key=lambda w: (anywhere[w], w))
    top = sorted(CANDIDATES, key=lambda w: (-anywhere[w], w))[:20]
    B.log("words: half %r (in %.0f%% of clippings), half for q %r (in %.0f%% of titles and excerpts), "
          "most common %r (in %.0f%% of clippings)"
          % (half, 100 * anywhere[half] / n, half_q, 100 * in_te[half_q] / n, common, 100 * anywhere[common] / n))
    return half, half_q, common, top


def queries(half, half_q, common, top):
    """(label, path and query, is it a q/exclude row the baseline answers too)."""
    plus = "+".join
    return [
        ("search: rare (qualcomm indefinitely)", "/feed.rss?search=qualcomm+indefinitely", False),
        ("search: half word %s" % half, "/feed.rss?search=%s" % half, False),
        ("search: most common %s" % common, "/feed.rss?search=%s" % common, False),
        ("search: phrase \"facial recognition\"", "/feed.rss?search=%22facial+recognition%22", False),
        ("search: prefix rec*", "/feed.rss?search=rec*", False),
        ("search: prefix com*", "/feed.rss?search=com*", False),
        ("search: 20 common words (AND)", "/feed.rss?search=%s" % plus(top), False),
        ("search: 20 common words (OR)", "/feed.rss?search=%s" % "+OR+".join(top), False),
        ("search: %s -%s" % (half, common), "/feed.rss?search=%s+-%s" % (half, common), False),
        ("search: title:amazon OR site:data*", "/feed.rss?search=title:amazon+OR+site:data*", False),
        ("search: %s on /topics/ai" % half, "/topics/ai.rss?search=%s" % half, False),
        ("q=%s" % half_q, "/feed.rss?q=%s" % half_q, True),
        ("q=qualcomm (rare)", "/feed.rss?q=qualcomm", True),
        ("exclude=%s" % common, "/feed.rss?exclude=%s" % common, True),
        ("q=%s on /topics/ai" % half_q, "/topics/ai.rss?q=%s" % half_q, True),
    ]


def uncached(path, k):
    """The same feed with a `since=` no other probe uses, so the views' cache never answers it."""
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(k))
    return "%s&since=%s" % (path, since)


def copied_store(store, rundir):
    """A copy of the store `store` (with its WAL and shared-memory files) in `rundir`."""
    os.makedirs(rundir, exist_ok=True)
    out = os.path.join(rundir, "store.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(store + suffix):
            shutil.copyfile(store + suffix, out + suffix)
    return out


def measure(binary, tmp, name, root, rows, probes, store=None):
    rundir = os.path.join(tmp, name)
    d = B.Daemon(binary, rundir, [root], store=copied_store(store, rundir) if store else None)
    out = {}
    try:
        ready = d.wait_ready()
        stored = d.status()["clippings"]
        B.log("%s ready after %.1f s with %d clippings stored" % (name, ready, stored))
        client = B.Client(d.port, timeout=120)
        k = 0
        for label, path, _ in rows:
            samples, items = [], None
            for _ in range(probes):
                k += 1
                url = uncached(path, k)
                t0 = time.perf_counter()
                status, _, body = client.get(url)
                samples.append((time.perf_counter() - t0) * 1000.0)
                if status != 200:
                    B.die("%s: GET %s answered %s: %s" % (name, url, status, body[:300]))
                items = body.count(b"<item>")
            out[label] = {"samples_ms": samples, "items": items, "p50_ms": B.percentile(samples, 50),
                          "p99_ms": B.percentile(samples, 99), "max_ms": max(samples)}
        client.close()
        out["_stored"] = stored
    finally:
        d.stop()
    return out


def baseline_binary(args):
    if args.baseline_binary:
        return os.path.abspath(args.baseline_binary)
    base = os.path.join(args.workdir, "baseline-%s" % args.baseline_rev)
    exe = os.path.join(base, "target", "release", "clipfeed")
    if os.access(exe, os.X_OK):
        return exe
    src = os.path.join(base, "src")
    os.makedirs(src, exist_ok=True)
    B.log("building the baseline %s in %s (release) ..." % (args.baseline_rev, base))
    archive = subprocess.run(["git", "archive", args.baseline_rev], cwd=B.REPO, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", src], input=archive, check=True)
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(base, "target"))
    subprocess.run(["cargo", "build", "--release", "--quiet", "--locked", "--bin", "clipfeed"], cwd=src, env=env,
                   check=True)
    return exe


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    B.add_common_args(ap)
    ap.add_argument("--probes", type=int, default=100, help="uncached requests per query (default 100)")
    ap.add_argument("--baseline-rev", default=BASELINE_REV,
                    help="git revision of the baseline, built before the index (default %(default)s)")
    ap.add_argument("--baseline-binary", help="a clipfeed binary to use as the baseline instead of building one")
    ap.add_argument("--no-baseline", action="store_true", help="measure this clipfeed only")
    ap.add_argument("--store", help="start clipfeed on a copy of this store (made from the same corpus, e.g. by "
                    "`scale.py --keep`) instead of a cold ingest")
    args = ap.parse_args()
    binary = B.binary(args)
    base = None if args.no_baseline else baseline_binary(args)
    machine = B.machine()
    for n in args.n:
        with B.scratch(args, "search-%d" % n) as tmp:
            root = B.corpus(args.workdir, n, args.seed)
            B.warm_cache(root)
            rows = queries(*pick_words(root))
            ours = measure(binary, tmp, "clipfeed", root, rows, args.probes, args.store)
            theirs = measure(base, tmp, "baseline", root, [r for r in rows if r[2]], args.probes) if base else {}
            table = []
            for label, _, scanned in rows:
                o, t = ours[label], theirs.get(label) if scanned else None
                table.append([label, o["items"], o["p50_ms"], o["p99_ms"], t and t["p50_ms"], t and t["p99_ms"],
                              t and B.ratio(t["p50_ms"], o["p50_ms"])])
            print("\n== uncached search feeds, N = %d stored, %d probes each (ms)" % (ours["_stored"], args.probes))
            print(B.table(["query", "items", "p50", "p99", "scan p50", "scan p99", "scan/index p50"], table))
            result = {"figure": "search latency", "n": n, "seed": args.seed, "machine": machine, "binary": binary,
                      "baseline": base and {"binary": base, "rev": args.baseline_rev}, "probes": args.probes,
                      "clipfeed": ours, "baseline_results": theirs}
            print("results: %s" % B.save(args.workdir, "search-%d" % n, result))


if __name__ == "__main__":
    main()
