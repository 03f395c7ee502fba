#!/usr/bin/env python3
"""Figure 3, watch-to-publish latency: the time from a clipping file's rename into a watched folder
until an HTTP GET of its topic feed contains it, with N clippings stored. Baseline, in the same
run: `hugo server` on the same records (../shared/bench/bench_hugo_server.py, fast render off so
the RSS is re-rendered at all), with fewer probes since each one costs Hugo a full rebuild.

    python3 bench/latency.py --n 10000                # or --n 10000 100000
    python3 bench/latency.py --n 100000 --hugo-probes 0   # clipfeed only

clipfeed side: the daemon watches two roots, the cached corpus (never modified) and an empty
probe folder, with a new store in a temp folder under WORKDIR/runs: the run starts with a cold
ingest. Once /readyz answers 200 (every file stored, every feed published), --files times: write a new
clipping (topics AI and Latency Probe) to a temp file outside the roots, rename it into the
probe folder, and poll GET /topics/ai.rss (If-None-Match, one kept-alive connection, no pause)
until the body holds its title. AI is the largest topic (about half of all clippings).

Hugo side: `hugo server --disableFastRender` on the Hugo site of the same records; each probe
writes one clipping beside the site, renames it into content/, and polls /topics/ai/index.xml
every 5 ms until the new item is there; 2 s pause between probes.

Prints p50/p90/p99/max for both and the ratios; the issue's target is a p99 under 20 ms at
100,000 stored. JSON: WORKDIR/results/latency-N-*.json.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

TARGET_P99_MS = 20.0
HUGO_SERVER = os.path.join(B.SHARED_BENCH, "bench_hugo_server.py")


def pcts(samples):
    if not samples:
        return {"n": 0}
    return {"n": len(samples), "p50_ms": B.percentile(samples, 50), "p90_ms": B.percentile(samples, 90),
            "p99_ms": B.percentile(samples, 99), "max_ms": max(samples), "min_ms": min(samples)}


def writer_cpu_s(pid):
    """CPU seconds (user + system) the daemon's writer thread has used so far (not counting the
    short-lived threads it renders with): a figure the machine's other load barely moves, unlike
    wall-clock latency on a shared machine."""
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, task)) as fh:
                if fh.read().strip() != "clipfeed-writer":
                    continue
            with open("/proc/%d/task/%s/stat" % (pid, task)) as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            continue
    return None


def probe(d, probes, incoming, files, timeout):
    """`files` probes against the running daemon `d`, which watches the folder `probes`: each
    writes a clipping into `incoming`, renames it into `probes` and polls /topics/ai.rss until it
    is there. Returns the latencies (ms) and the CPU per probe (writer thread, whole process)."""
    client = B.Client(d.port, timeout=10)
    etag = None
    samples = []
    cpu0 = writer_cpu_s(d.pid)
    proc0 = B.cpu_seconds(d.pid)
    run_id = "%d-%d" % (os.getpid(), int(time.time()))
    for i in range(files):
        title = "Latency probe %s number %d" % (run_id, i)
        text = (
            "---\ntitle: \"%s\"\nexcerpt: \"A probe for the latency benchmark.\"\n"
            "publishedDateTime: 2026-11-01T00:00:00Z\nwebUrl: \"https://probe.example/%s/%d\"\n"
            "provider:\n  name: Probe\n  domain: probe.example\ntopics:\n  - AI\n  - Latency Probe\n---\n"
            % (title, run_id, i)
        )
        staged = os.path.join(incoming, "p%s-%d.md" % (run_id, i))
        with open(staged, "w") as fh:
            fh.write(text)
        needle = title.encode()
        t0 = time.perf_counter()
        os.rename(staged, os.path.join(probes, os.path.basename(staged)))
        while True:
            status, headers, body = client.get("/topics/ai.rss", {"If-None-Match": etag} if etag else {})
            if status == 200:
                etag = headers.get("etag")
                if needle in body:
                    break
            if time.perf_counter() - t0 > timeout:
                B.die("probe %d did not appear within %.0f s" % (i, timeout))
        samples.append((time.perf_counter() - t0) * 1000.0)
    client.close()
    cpu1 = writer_cpu_s(d.pid)
    writer_ms = (cpu1 - cpu0) * 1000.0 / max(files, 1) if cpu0 is not None and cpu1 is not None else None
    process_ms = (B.cpu_seconds(d.pid) - proc0) * 1000.0 / max(files, 1)
    B.log("CPU per probe: writer thread %s ms, whole process %.2f ms (with the polls it answered)"
          % ("%.2f" % writer_ms if writer_ms is not None else "?", process_ms))
    return samples, writer_ms, process_ms


def clipfeed_probes(binary, tmp, root, files, timeout):
    rundir = os.path.join(tmp, "clipfeed")
    probes = os.path.join(rundir, "probes")
    incoming = os.path.join(rundir, "incoming")
    os.makedirs(probes)
    os.makedirs(incoming)
    d = B.Daemon(binary, rundir, [root, probes])
    try:
        ready = d.wait_ready()
        stored = d.status()["clippings"]
        B.log("clipfeed ready after %.1f s with %d clippings stored; %d probes ..." % (ready, stored, files))
        samples, writer_ms, process_ms = probe(d, probes, incoming, files, timeout)
        mem = d.memory()
    finally:
        d.stop()
    return {"ready_s": ready, "stored": stored, "samples_ms": samples, "writer_cpu_ms_per_probe": writer_ms,
            "process_cpu_ms_per_probe": process_ms, "vmhwm_kib": mem.get("VmHWM"),
            "vmrss_kib": mem.get("VmRSS"), **pcts(samples)}


def hugo_probes(workdir, tmp, n, seed, probes, timeout):
    site = B.hugo_site(workdir, n, seed)
    out = os.path.join(tmp, "hugo-server.json")
    cmd = [sys.executable, HUGO_SERVER, site, "--runs", str(probes), "--disable-fast-render",
           "--port", str(B.free_port()), "--timeout-s", str(timeout), "--json", out]
    B.log("hugo server on %s, %d probes ..." % (site, probes))
    # Bounded: Hugo's start-up plus every probe at its timeout and settle time.
    rc, stdout, stderr = B.run_child(cmd, timeout=600 + probes * (timeout + 5))
    if rc != 0:
        B.die("bench_hugo_server.py failed (%s):\n%s%s" % (rc, stdout[-3000:], stderr[-3000:]))
    with open(out) as fh:
        data = json.load(fh)
    samples = [r["latency_ms"] for r in data["results"] if r["latency_ms"] is not None]
    return {"startup_s": data["startup_s"], "found": len(samples), "probes": probes, "samples_ms": samples,
            "rebuild_ms_median": data.get("hugo_rebuild_ms_median"), "server_rss_mib": data.get("server_rss_mib"),
            "server_peak_rss_mib": data.get("server_peak_rss_mib"), **pcts(samples)}


def mem_available_gib():
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1048576
    return 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    B.add_common_args(ap)
    ap.add_argument("--files", type=int, default=200, help="clipfeed probes (default 200)")
    ap.add_argument("--hugo-probes", type=int,
                    help="hugo server probes (default 20 up to N = 10000, else 5; 0 skips the baseline)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for one clipfeed probe")
    ap.add_argument("--stored", type=int, nargs="+", dest="n", help="the same as --n (its earlier name)")
    args = ap.parse_args()
    binary = B.binary(args)
    machine = B.machine()

    for n in args.n:
        with B.scratch(args, "latency-%d" % n) as tmp:
            hugo_n = args.hugo_probes if args.hugo_probes is not None else (20 if n <= 10000 else 5)
            # hugo server held 1.7 GiB at 10,000 (BASELINES.md b1); it grows with N.
            need = 2.0 * n / 10000 + 2
            if hugo_n and mem_available_gib() < need:
                B.log("skipping hugo server: it would need about %.0f GiB, %.1f GiB available"
                      % (need, mem_available_gib()))
                hugo_n = 0
            if hugo_n:
                B.ensure_tools("hugo")
            root = B.corpus(args.workdir, n, args.seed)
            cf = clipfeed_probes(binary, tmp, root, args.files, args.timeout)
            hg = hugo_probes(args.workdir, tmp, n, args.seed, hugo_n, max(60.0, 120.0 * n / 10000)) if hugo_n else None

            rows = [["clipfeed (%d probes, %d stored)" % (cf["n"], cf["stored"]), cf["p50_ms"], cf["p90_ms"],
                     cf["p99_ms"], cf["max_ms"]]]
            if hg:
                rows.append(["hugo server (%d of %d probes)" % (hg["found"], hg["probes"]), hg.get("p50_ms"),
                             hg.get("p90_ms"), hg.get("p99_ms"), hg.get("max_ms")])
            print("\n== watch-to-publish latency, N = %d (ms)" % n)
            print(B.table(["", "p50", "p90", "p99", "max"], rows))
            if hg and hg.get("p50_ms"):
                print("hugo / clipfeed: p50 %.0fx, p99 %.0fx" % (hg["p50_ms"] / cf["p50_ms"], hg["p99_ms"] / cf["p99_ms"]))
            print("target p99 < %.0f ms at 100,000 stored: %s"
                  % (TARGET_P99_MS, B.verdict(cf["p99_ms"] < TARGET_P99_MS, n, 100000)))
            result = {"figure": "watch-to-publish latency", "n": n, "seed": args.seed, "machine": machine,
                      "binary": binary, "clipfeed": cf, "hugo_server": hg, "target_p99_ms": TARGET_P99_MS}
            print("results: %s" % B.save(args.workdir, "latency-%d" % n, result))


if __name__ == "__main__":
    main()
