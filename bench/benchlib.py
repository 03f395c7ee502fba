"""Shared plumbing for the benchmark scripts in bench/: installing the Debian tools, building the
release binary, generating and caching corpora, starting and stopping the daemon, reading its
memory from /proc, running wrk, statistics, tables and JSON results.

Only the Python standard library is used. Every server it starts listens on 127.0.0.1 and is
stopped by its PID.
"""
import datetime
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from contextlib import contextmanager

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# ../shared beside the repository, as the tests expect it; CLIPFEED_SHARED names another place.
SHARED_BENCH = os.path.join(os.path.abspath(os.environ.get("CLIPFEED_SHARED") or os.path.join(REPO, "..", "shared")),
                            "bench")
GEN = os.path.join(SHARED_BENCH, "gen_clippings.py")
DEFAULT_WORKDIR = "/tmp/clipfeed-bench"

# Command -> Debian package.
PACKAGES = {
    "hugo": "hugo",
    "nginx": "nginx",
    "wrk": "wrk",
    "hyperfine": "hyperfine",
    "/usr/bin/time": "time",
    "curl": "curl",
    "taskset": "util-linux",
}


def _terminated(signum, _frame):
    # SIGTERM (or SIGHUP) unwinds like Ctrl-C, so that every `finally` stops the servers this
    # script started and removes its temp folders.
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _terminated)
signal.signal(signal.SIGHUP, _terminated)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def die(msg):
    log("error: " + msg)
    sys.exit(1)


# ------------------------------------------------------------------------------------------------
# Tools, binary, arguments


def ensure_tools(*tools):
    """Installs the Debian packages of the missing tools (as root, with apt-get)."""
    missing = [t for t in tools if not (os.path.exists(t) if t.startswith("/") else shutil.which(t))]
    if not missing:
        return
    pkgs = sorted({PACKAGES[t] for t in missing})
    log("installing from Debian: %s" % " ".join(pkgs))
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600"]
    if os.geteuid() != 0:
        apt = ["sudo"] + apt
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(apt + ["update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(apt + ["install", "-y", "-q", "--no-install-recommends"] + pkgs, check=True, env=env,
                   stdout=subprocess.DEVNULL)


def run_child(cmd, timeout):
    """Runs a helper script to its end: (exit status, stdout, stderr). On a timeout, or when this
    script is interrupted, the child gets SIGTERM (by PID) so that it stops what it started
    itself, then SIGKILL after 30 s."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        log("%s still running after %.0f s: stopping it" % (os.path.basename(cmd[1]), timeout))
        return None, "", ""
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def add_common_args(ap, sizes=True):
    ap.add_argument("--workdir", default=DEFAULT_WORKDIR,
                    help="generated data (cached by N and seed), stores and results (default %(default)s)")
    ap.add_argument("--binary", help="clipfeed binary to measure (default: cargo build --release, then "
                    "target/release/clipfeed)")
    ap.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    ap.add_argument("--keep", action="store_true",
                    help="keep this run's temp folder in WORKDIR/runs (stores, logs, configs) for a look")
    if sizes:
        ap.add_argument("--n", type=int, nargs="+", default=[10000], metavar="N",
                        help="clippings in the corpus, one or more sizes (default 10000)")


def binary(args):
    """The binary to measure: --binary, else a fresh `cargo build --release` of this repository
    (in cargo's target directory, which CARGO_TARGET_DIR may move)."""
    if args.binary:
        if not os.access(args.binary, os.X_OK):
            die("%s is not an executable" % args.binary)
        return os.path.abspath(args.binary)
    log("cargo build --release ...")
    subprocess.run(["cargo", "build", "--release", "--quiet", "--locked"], cwd=REPO, check=True)
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps", "--locked"], cwd=REPO,
                          check=True, capture_output=True, text=True).stdout
    return os.path.join(json.loads(meta)["target_directory"], "release", "clipfeed")


# ------------------------------------------------------------------------------------------------
# Corpora


def _generate(n, seed, out, hugo=False):
    if not os.path.exists(GEN):
        die("%s is missing (../shared must be beside the repository, or CLIPFEED_SHARED name it)" % GEN)
    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    log("generating %d clippings%s (seed %d) into %s ..." % (n, " as a Hugo site" if hugo else "", seed, out))
    t0 = time.perf_counter()
    cmd = [sys.executable, GEN, str(n), tmp, "--seed", str(seed)] + (["--hugo"] if hugo else [])
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    os.rename(tmp, out)
    log("  generated in %.0f s" % (time.perf_counter() - t0))


def corpus(workdir, n, seed):
    """A folder of N generated clipping files (cached; never modified by the benchmarks)."""
    base = os.path.join(workdir, "corpus")
    os.makedirs(base, exist_ok=True)
    out = os.path.join(base, "clips-%d-s%d" % (n, seed))
    if os.path.isdir(out):
        return out
    # An earlier bench/latency.py kept its corpus in stored-N/clippings (seed 1): reuse it through
    # hard links instead of generating it again.
    legacy = os.path.join(workdir, "stored-%d" % n, "clippings")
    marker = os.path.join(legacy, ".generated")
    if seed == 1 and os.path.exists(marker) and open(marker).read().strip() == str(n):
        tmp = out + ".partial"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        count = 0
        for name in os.listdir(legacy):
            if name.endswith(".md") and os.path.isfile(os.path.join(legacy, name)):
                os.link(os.path.join(legacy, name), os.path.join(tmp, name))
                count += 1
        if count == n:
            log("reusing the %d clippings of %s (hard links)" % (n, legacy))
            os.rename(tmp, out)
            return out
        shutil.rmtree(tmp)
    _generate(n, seed, out)
    return out


def hugo_site(workdir, n, seed):
    """The same N records as a Hugo site (cached)."""
    base = os.path.join(workdir, "corpus")
    os.makedirs(base, exist_ok=True)
    out = os.path.join(base, "hugo-%d-s%d" % (n, seed))
    if not os.path.isdir(out):
        _generate(n, seed, out, hugo=True)
    return out


@contextmanager
def scratch(args, name):
    """A new temp folder WORKDIR/runs/NAME-XXXX for one run's stores, logs, configs and outputs,
    removed at the end (also on errors, Ctrl-C and SIGTERM) unless --keep. The corpora are
    cached beside it, in WORKDIR/corpus, and are never modified."""
    base = os.path.join(args.workdir, "runs")
    os.makedirs(base, exist_ok=True)
    path = tempfile.mkdtemp(prefix=name + "-", dir=base)
    os.chmod(path, 0o755)  # nginx's workers run as another user when started by root
    try:
        yield path
    finally:
        if getattr(args, "keep", False):
            log("kept %s" % path)
        else:
            shutil.rmtree(path, ignore_errors=True)


def warm_cache(*dirs):
    """Reads every file once, so that every contender starts with a warm page cache."""
    for d in dirs:
        for root, _, files in os.walk(d):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    while fh.read(1 << 20):
                        pass


def distinct_urls(folder):
    """The number of distinct webUrl values in a generated corpus: the clippings the daemon must
    end up with (one item per article URL)."""
    urls = set()
    pat = re.compile(r'^webUrl:\s*"?([^"\n]+)"?\s*$', re.M)
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), encoding="utf-8") as fh:
            head = fh.read(4096)
        m = pat.search(head)
        urls.add(m.group(1) if m else name)
    return len(urls)


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


# ------------------------------------------------------------------------------------------------
# The daemon


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_status(pid):
    """VmHWM and VmRSS of a process, in KiB."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as fh:
            for line in fh:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    k, v = line.split(":")
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def cpu_seconds(pid):
    """User plus system CPU time a process has used so far, in seconds."""
    with open("/proc/%d/stat" % pid) as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_when_idle(pid, window=1.0, timeout=600):
    """Waits until a process has used no CPU for `window` seconds; its CPU time then."""
    deadline = time.perf_counter() + timeout
    last = cpu_seconds(pid)
    while True:
        time.sleep(window)
        now = cpu_seconds(pid)
        if now == last:
            return now
        if time.perf_counter() > deadline:
            die("process %d still busy after %.0f s" % (pid, timeout))
        last = now


def store_bytes(store):
    """The store's size on disk: the database with its WAL and shared-memory files."""
    return sum(os.path.getsize(store + s) for s in ("", "-wal", "-shm") if os.path.exists(store + s))


class Client:
    """One kept-alive HTTP/1.1 connection to 127.0.0.1:PORT that reconnects when needed."""

    def __init__(self, port, timeout=30):
        self.port, self.timeout, self.conn = port, timeout, None

    def get(self, path, headers=None):
        """(status, headers dict with lower-case names, body); status None when the server does
        not answer (not listening yet)."""
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                self.conn.request("GET", path, headers=headers or {})
                res = self.conn.getresponse()
                body = res.read()
                return res.status, {k.lower(): v for k, v in res.getheaders()}, body
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    return None, {}, b""
        return None, {}, b""

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None


class Daemon:
    """`clipfeed serve` on a free port of 127.0.0.1 with a config written into `rundir`."""

    def __init__(self, binary, rundir, roots, store=None, log_level="warn", taskset=None, extra_config=""):
        os.makedirs(rundir, exist_ok=True)
        self.rundir = rundir
        self.port = free_port()
        self.store = store or os.path.join(rundir, "store.db")
        self.config = os.path.join(rundir, "clipfeed.yaml")
        with open(self.config, "w") as fh:
            fh.write("listen: 127.0.0.1:%d\n" % self.port)
            # A fixed public address, as a deployment has: the port changes from run to run,
            # and links derived from it would make every restart a new site.
            fh.write("base_url: http://clipfeed.bench/\n")
            fh.write("clippings: [%s]\n" % ", ".join(json.dumps(r) for r in roots))
            fh.write("store: %s\nlog: %s\n" % (json.dumps(self.store), log_level))
            fh.write(extra_config)
        self.log_path = os.path.join(rundir, "daemon.log")
        cmd = [binary, "serve", "--config", self.config]
        if taskset:
            cmd = ["taskset", "-c", taskset] + cmd
        self.logfile = open(self.log_path, "w")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=self.logfile, stderr=self.logfile)
        self.pid = self.proc.pid
        self.client = Client(self.port)

    def check_alive(self):
        if self.proc.poll() is not None:
            die("clipfeed exited with %s; see %s" % (self.proc.returncode, self.log_path))

    def wait_for(self, path, ok=lambda status, body: status == 200, timeout=3600, every=0.005, client=None):
        """Polls GET path until ok(status, body); seconds since the start."""
        client = client or self.client
        deadline = time.perf_counter() + timeout
        while True:
            status, _, body = client.get(path)
            if ok(status, body):
                return time.perf_counter() - self.started
            self.check_alive()
            if time.perf_counter() > deadline:
                die("GET %s not ready within %.0f s" % (path, timeout))
            time.sleep(every)

    def wait_ready(self, timeout=3600, compacted=True):
        """Seconds from the start to /readyz 200 (every feed published). With `compacted`, then
        also waits out a cold build's compaction, which runs after that (its time since the start
        is kept in `compacted_s`), so what a caller measures next is not slowed by it."""
        ready = self.wait_for("/readyz", timeout=timeout)
        self.compacted_s = self.wait_compacted(timeout) if compacted else None
        return ready

    def wait_compacted(self, timeout=3600):
        """Polls /api/status until the store is not being compacted (`compacting`, absent in
        binaries that compact before they are ready); seconds since the start."""
        return self.wait_for("/api/status", ok=lambda status, body: status == 200 and not json.loads(body).get("compacting"),
                             timeout=timeout, every=0.05)

    def wait_ready_and_first_feed(self, feed="/topics/ai.rss", timeout=3600):
        """Polls /readyz and a feed at once on two connections: (seconds to ready, seconds to the
        first 200 of the feed)."""
        out = {}

        def first_feed():
            out["feed"] = self.wait_for(feed, timeout=timeout, client=Client(self.port))

        t = threading.Thread(target=first_feed, daemon=True)
        t.start()
        ready = self.wait_ready(timeout)
        t.join(timeout)
        return ready, out.get("feed")

    def status(self):
        status, _, body = self.client.get("/api/status")
        if status != 200:
            die("/api/status answered %s" % status)
        return json.loads(body)

    def feed_paths(self):
        """The path of every feed in the OPML list (RSS URLs: the all feed, topics, providers)."""
        status, _, body = self.client.get("/feeds.opml")
        if status != 200:
            die("/feeds.opml answered %s" % status)
        paths = []
        for url in re.findall(rb'xmlUrl="([^"]+)"', body):
            paths.append(urllib.parse.urlsplit(url.decode()).path)
        if "/feed.rss" not in paths:
            paths.insert(0, "/feed.rss")
        return paths

    def fetch_all(self, paths, headers=None):
        """GETs every path once; the number that did not answer 200."""
        bad = 0
        for p in paths:
            status, _, _ = self.client.get(p, headers)
            bad += status != 200
        return bad

    def memory(self):
        return proc_status(self.pid)

    def stop(self):
        """SIGTERM to our daemon, by PID; waits for it (it flushes the store on the way out)."""
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logfile.close()


def fresh_store(store):
    for s in ("", "-wal", "-shm"):
        if os.path.exists(store + s):
            os.remove(store + s)


# ------------------------------------------------------------------------------------------------
# Statistics, output


def percentile(values, p):
    """Linear interpolation between closest ranks."""
    values = sorted(values)
    if not values:
        return None
    k = (len(values) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def spread(values):
    """median, min, max and the values themselves."""
    values = [v for v in values if v is not None]
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0, "values": []}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "values": values}


def ratio(a, b):
    return a / b if a and b else None


def fmt(v, digits=2):
    if v is None:
        return "-"
    if isinstance(v, float):
        return ("%%.%df" % (0 if abs(v) >= 1000 else digits)) % v
    return str(v)


def table(headers, rows):
    """A plain-text table, right-aligned numbers."""
    rows = [[fmt(c) for c in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    lines = ["  ".join(str(h).ljust(w) if i == 0 else str(h).rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(lines)


def tool_version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return None


def machine():
    cpu = None
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), None)
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as fh:
            mem = round(int(fh.readline().split()[1]) / 1048576, 1)
    except (OSError, ValueError, IndexError):
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": mem,
        "kernel": platform.release(),
        "loadavg_at_start": os.getloadavg(),
        "clipfeed_commit": commit.strip() or None,
    }


def save(workdir, name, data):
    """Writes WORKDIR/results/NAME-<time>.json and NAME-latest.json; returns the first path."""
    res = os.path.join(workdir, "results")
    os.makedirs(res, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    path = os.path.join(res, "%s-%s.json" % (name, stamp))
    for p in (path, os.path.join(res, "%s-latest.json" % name)):
        with open(p, "w") as fh:
            json.dump(data, fh, indent=1)
    return path


def verdict(ok, n=None, stated_for=None):
    """"met" / "NOT met"; for a target stated at another size, says so instead of judging."""
    if stated_for is not None and n != stated_for:
        return "not judged (the target is stated for N = %d)" % stated_for
    return "met" if ok else "NOT met"


# ------------------------------------------------------------------------------------------------
# wrk


_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
_UNITS_B = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


def parse_wrk(text):
    """The figures of one `wrk --latency` report."""
    def secs(s):
        m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
        return float(m.group(1)) * _UNITS_S[m.group(2)] if m else None

    out = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    out["rps"] = float(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in ([\d.]+\w+), ([\d.]+)(\w+) read", text)
    if m:
        out["requests"] = int(m.group(1))
        out["seconds"] = secs(m.group(2))
        out["bytes_read"] = float(m.group(3)) * _UNITS_B[m.group(4)]
        out["bytes_per_response"] = out["bytes_read"] / out["requests"] if out["requests"] else None
    for p in ("50", "90", "99"):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+([\d.]+\w+)" % p, text, re.M)
        out["p%s_ms" % p] = secs(m.group(1)) * 1000 if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx_3xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    return out


def wrk(url, seconds=10, conns=64, threads=2, headers=(), script=None, script_args=(), taskset=None, timeout=None):
    cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds, "--latency"]
    if timeout:
        cmd.append("--timeout=%ds" % timeout)
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    if script_args:
        cmd += ["--"] + list(script_args)
    if taskset:
        cmd = ["taskset", "-c", taskset] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        die("wrk failed: %s" % out.stderr.strip())
    res = parse_wrk(out.stdout)
    res["raw"] = out.stdout
    return res
