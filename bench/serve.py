#!/usr/bin/env python3
"""Figure 4, serving: wrk with 64 connections for 10 s against one cached topic feed
(/topics/ai.rss, 50 items), plain, gzip and conditional (304). Baseline, in the same run: nginx
serving the same bytes from files (plain; the same gzip bytes through `gzip_static`; its own
304), started by this script in the foreground on 127.0.0.1 with a config in a temp folder and
stopped by its PID.

    python3 bench/serve.py                          # N = 10000 stored, 3 rounds, not pinned
    python3 bench/serve.py --pin                    # servers on CPU 1, wrk on CPU 0

The feed's bytes are fetched from the running clipfeed (identity and gzip) and written to
TMP/html/topics/ai.rss and ai.rss.gz. Each round runs every scenario against both servers, one
after the other (the order alternates between rounds), wrk -t2 -c64 -d10s --latency with
`-H 'Accept-Encoding: gzip'` or `-H 'If-None-Match: <that server's ETag>'`. Before timing, every
scenario is checked once (status, Content-Encoding, body size); after it, wrk's bytes per response
show that the scenario stayed what it claims. Reported: median req/s with min-max, p50/p99
latency, and clipfeed / nginx. Pinning: by default neither server nor wrk is pinned (all share
every CPU; nginx runs one worker per CPU, as many as tokio's worker threads); --pin puts both
servers on the last CPU and wrk on the first (nginx then runs one worker). Target: clipfeed at
least 1.0x nginx's req/s in every scenario.

Third server, in the same rounds: "nginx-export", nginx with deploy/nginx/clipfeed.conf (the
documented configuration: its types, charset, gzip_static, headers and locations) serving the
static export that the same clipfeed keeps up to date (`export:` in its configuration), so the
ratio clipfeed / nginx-export is what an operator gets by putting nginx in front. JSON:
WORKDIR/results/serve-N-*.json.
"""
import argparse
import gzip
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

FEED = "/topics/ai.rss"
SCENARIOS = ["plain", "gzip", "304"]
TARGET_RATIO = 1.0


class Nginx:
    """nginx in the foreground (daemon off) with a private prefix; stopped by PID."""

    def __init__(self, prefix, plain, gz, workers, taskset=None):
        self.prefix = prefix
        html = os.path.join(prefix, "html", "topics")
        os.makedirs(html)
        os.makedirs(os.path.join(prefix, "logs"))
        os.makedirs(os.path.join(prefix, "tmp"))
        f = os.path.join(html, "ai.rss")
        with open(f, "wb") as fh:
            fh.write(plain)
        with open(f + ".gz", "wb") as fh:
            fh.write(gz)
        st = os.stat(f)
        os.utime(f + ".gz", ns=(st.st_atime_ns, st.st_mtime_ns))
        self.port = B.free_port()
        conf = os.path.join(prefix, "nginx.conf")
        tmp = os.path.join(prefix, "tmp")
        with open(conf, "w") as fh:
            fh.write("""worker_processes %(workers)d;
pid %(p)s/logs/nginx.pid;
error_log %(p)s/logs/error.log warn;
events { worker_connections 4096; }
http {
  types { application/rss+xml rss; }
  default_type application/octet-stream;
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  open_file_cache max=100 inactive=60s;
  client_body_temp_path %(t)s/body;
  proxy_temp_path %(t)s/proxy;
  fastcgi_temp_path %(t)s/fastcgi;
  uwsgi_temp_path %(t)s/uwsgi;
  scgi_temp_path %(t)s/scgi;
  server {
    listen 127.0.0.1:%(port)d;
    root %(p)s/html;
    gzip off;
    gzip_static on;
    etag on;
  }
}
""" % {"workers": workers, "p": prefix, "t": tmp, "port": self.port})
        cmd = ["nginx", "-p", prefix, "-c", conf, "-g", "daemon off;"]
        if taskset:
            cmd = ["taskset", "-c", taskset] + cmd
        self.stderr = open(os.path.join(prefix, "logs", "stderr.log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=self.stderr, stderr=self.stderr)
        self.pid = self.proc.pid
        client = B.Client(self.port)
        deadline = time.time() + 10
        while client.get(FEED)[0] != 200:
            if self.proc.poll() is not None or time.time() > deadline:
                B.die("nginx did not start; see %s/logs/" % prefix)
            time.sleep(0.05)
        client.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful stop of our nginx master, by PID
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


class ExportNginx(Nginx):
    """nginx with deploy/nginx/clipfeed.conf over clipfeed's export folder; stopped by PID."""

    def __init__(self, prefix, export, upstream_port, workers, taskset=None):  # noqa: super not called
        self.prefix = prefix
        for sub in ("logs", "tmp"):
            os.makedirs(os.path.join(prefix, sub))
        self.port = B.free_port()
        with open(os.path.join(B.REPO, "deploy", "nginx", "clipfeed.conf")) as fh:
            site = fh.read()
        site = (site.replace("server 127.0.0.1:8080;", "server 127.0.0.1:%d;" % upstream_port)
                .replace("listen 80;", "listen 127.0.0.1:%d;" % self.port)
                .replace("root /var/lib/clipfeed/export;", "root %s;" % export))
        with open(os.path.join(prefix, "clipfeed.conf"), "w") as fh:
            fh.write(site)
        conf = os.path.join(prefix, "nginx.conf")
        tmp = os.path.join(prefix, "tmp")
        with open(conf, "w") as fh:
            fh.write("""worker_processes %(workers)d;
pid %(p)s/logs/nginx.pid;
error_log %(p)s/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  open_file_cache max=100 inactive=60s;
  client_body_temp_path %(t)s/body;
  proxy_temp_path %(t)s/proxy;
  fastcgi_temp_path %(t)s/fastcgi;
  uwsgi_temp_path %(t)s/uwsgi;
  scgi_temp_path %(t)s/scgi;
  include %(p)s/clipfeed.conf;
}
""" % {"workers": workers, "p": prefix, "t": tmp})
        cmd = ["nginx", "-p", prefix, "-c", conf, "-g", "daemon off;"]
        if taskset:
            cmd = ["taskset", "-c", taskset] + cmd
        self.stderr = open(os.path.join(prefix, "logs", "stderr.log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=self.stderr, stderr=self.stderr)
        self.pid = self.proc.pid
        client = B.Client(self.port)
        deadline = time.time() + 10
        while client.get(FEED)[0] != 200:
            if self.proc.poll() is not None or time.time() > deadline:
                B.die("nginx (export) did not start; see %s/logs/" % prefix)
            time.sleep(0.05)
        client.close()


def check(port, plain, gz, label):
    """Each scenario answers as it should; returns (headers for each scenario)."""
    c = B.Client(port)
    status, h, body = c.get(FEED)
    if status != 200 or body != plain or h.get("content-encoding"):
        B.die("%s plain: status %s, %d bytes, encoding %s" % (label, status, len(body), h.get("content-encoding")))
    etag = h.get("etag")
    status, h2, body = c.get(FEED, {"Accept-Encoding": "gzip"})
    if status != 200 or h2.get("content-encoding") != "gzip" or gzip.decompress(body) != plain:
        B.die("%s gzip: status %s, encoding %s" % (label, status, h2.get("content-encoding")))
    status, _, body = c.get(FEED, {"If-None-Match": etag})
    if status != 304 or body:
        B.die("%s conditional: status %s" % (label, status))
    c.close()
    return {"plain": [], "gzip": ["Accept-Encoding: gzip"], "304": ["If-None-Match: %s" % etag]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    B.add_common_args(ap, sizes=False)
    ap.add_argument("--n", type=int, default=10000, help="clippings stored (default 10000)")
    ap.add_argument("--rounds", type=int, default=3, help="wrk runs per scenario and server (default 3)")
    ap.add_argument("--seconds", type=int, default=10, help="duration of each wrk run (default 10)")
    ap.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--pin", action="store_true", help="both servers on the last CPU, wrk on the first")
    ap.add_argument("--cpu", action="store_true",
                    help="also count each server's CPU per response (perf stat -p over each wrk run)")
    args = ap.parse_args()
    B.ensure_tools("nginx", "wrk", *(["taskset"] if args.pin else []))
    binary = B.binary(args)
    machine = B.machine()
    cpus = os.cpu_count() or 1
    if args.pin and cpus < 2:
        B.die("--pin needs two CPUs")
    server_cpu = str(cpus - 1) if args.pin else None
    client_cpu = "0" if args.pin else None
    pinning = ("servers pinned to CPU %s, wrk to CPU 0" % server_cpu if args.pin
               else "not pinned: servers and wrk share all %d CPUs" % cpus)

    root = B.corpus(args.workdir, args.n, args.seed)
    with B.scratch(args, "serve-%d" % args.n) as tmp:
        mem, runs, servers, plain, gz = measure(args, binary, root, tmp, server_cpu, client_cpu, pinning)
    report(args, machine, binary, mem, runs, servers, plain, gz, pinning)


def family(pid):
    """PID and its children's (nginx's master and workers), read from /proc."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as fh:
            return [pid] + [int(x) for x in fh.read().split()]
    except OSError:
        return [pid]


def perf_stat(pids):
    """perf stat counting task-clock, cycles and instructions of PIDS until perf_result stops it."""
    cmd = ["perf", "stat", "-x", ",", "-e", "task-clock,cycles,instructions", "-p", ",".join(map(str, pids))]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def perf_result(proc, requests):
    """Stops the perf stat PROC (SIGINT, by PID) and gives its counts per response."""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    counts = {}
    for line in err.splitlines():
        parts = line.split(",")
        if len(parts) > 2:
            try:
                counts[parts[2]] = float(parts[0])
            except ValueError:
                pass
    if not requests:
        return {}
    return {"cpu_us": counts.get("task-clock", 0) * 1000 / requests,  # task-clock is in ms
            "cycles": counts.get("cycles", 0) / requests,
            "instructions": counts.get("instructions", 0) / requests}


def cpu_ticks(pid):
    """User and system CPU time of PID so far, in clock ticks, from /proc."""
    with open("/proc/%d/stat" % pid) as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def settle(pid, idle_ticks=5, timeout=900):
    """Waits until PID uses less than IDLE_TICKS of CPU in a second; gives the seconds waited."""
    start = time.time()
    last = cpu_ticks(pid)
    while time.time() - start < timeout:
        time.sleep(1)
        now = cpu_ticks(pid)
        if now - last < idle_ticks:
            break
        last = now
    return time.time() - start


def measure(args, binary, root, tmp, server_cpu, client_cpu, pinning):
    """Starts clipfeed and nginx in TMP, runs every wrk round, stops both (by PID)."""
    export = os.path.join(tmp, "export")
    d = B.Daemon(binary, os.path.join(tmp, "clipfeed"), [root], taskset=server_cpu,
                 extra_config="export: %s\n" % export)
    ng = ngx = None
    try:
        d.wait_ready()
        c = B.Client(d.port)
        status, _, plain = c.get(FEED)
        status_gz, h, gz = c.get(FEED, {"Accept-Encoding": "gzip"})
        c.close()
        if status != 200 or status_gz != 200 or h.get("content-encoding") != "gzip":
            B.die("clipfeed did not serve %s plain and gzip" % FEED)
        ng = Nginx(os.path.join(tmp, "nginx"), plain, gz, 1 if args.pin else os.cpu_count() or 1,
                   taskset=server_cpu)
        # The export is written by its own thread after the publish: wait for the same bytes.
        deadline = time.time() + 600
        while True:
            try:
                with open(os.path.join(export, FEED.lstrip("/")), "rb") as fh:
                    if fh.read() == plain:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                B.die("the export did not catch up with %s" % FEED)
            time.sleep(0.05)
        ngx = ExportNginx(os.path.join(tmp, "nginx-export"), export, d.port, 1 if args.pin else os.cpu_count() or 1,
                          taskset=server_cpu)
        # The export goes on writing every other feed (gzip and brotli forms) for minutes after
        # the one above: its CPU would be counted as serving's. Time only once the daemon is idle.
        B.log("waiting for clipfeed to be idle (the export written): %.0f s" % settle(d.pid))
        servers = {"clipfeed": d.port, "nginx": ng.port, "nginx-export": ngx.port}
        headers = {name: check(port, plain, gz, name) for name, port in servers.items()}
        B.log("feed %s: %d bytes, gzip %d bytes; %s" % (FEED, len(plain), len(gz), pinning))
        B.log("versions: %s; %s" % (B.tool_version(["nginx", "-v"]), B.tool_version(["wrk", "-v"])))
        runs = {(s, sc): [] for s in servers for sc in SCENARIOS}
        for r in range(args.rounds):
            order = list(servers) if r % 2 == 0 else list(reversed(list(servers)))
            for sc in SCENARIOS:
                for name in order:
                    pids = {"clipfeed": [d.pid], "nginx": family(ng.pid), "nginx-export": family(ngx.pid)}[name]
                    stat = perf_stat(pids) if args.cpu else None
                    res = B.wrk("http://127.0.0.1:%d%s" % (servers[name], FEED), seconds=args.seconds,
                                conns=args.connections, threads=args.threads, headers=headers[name][sc],
                                taskset=client_cpu)
                    if stat:
                        res.update(perf_result(stat, res.get("requests")))
                    runs[(name, sc)].append(res)
                    B.log("  round %d %-5s %-8s %9.0f req/s  p99 %6.2f ms  %6.0f B/response  errors %d/%d%s"
                          % (r + 1, sc, name, res["rps"], res["p99_ms"] or 0, res["bytes_per_response"] or 0,
                             res["non_2xx_3xx"], res["socket_errors"],
                             "  %.2f us CPU, %.0f cycles, %.0f instructions per response"
                             % (res["cpu_us"], res["cycles"], res["instructions"]) if "cpu_us" in res else ""))
                    time.sleep(1)
        mem = d.memory()
    finally:
        if ng:
            ng.stop()
        if ngx:
            ngx.stop()
        d.stop()
    return mem, runs, servers, plain, gz


def report(args, machine, binary, mem, runs, servers, plain, gz, pinning):
    rows, summary = [], {}
    for sc in SCENARIOS:
        for name in servers:
            rs = runs[(name, sc)]
            rps = B.spread([x["rps"] for x in rs])
            p50 = B.spread([x["p50_ms"] for x in rs])
            p99 = B.spread([x["p99_ms"] for x in rs])
            bpr = B.spread([x["bytes_per_response"] for x in rs])
            errors = sum(x["non_2xx_3xx"] + x["socket_errors"] for x in rs)
            summary.setdefault(sc, {})[name] = {"rps": rps, "p50_ms": p50, "p99_ms": p99,
                                                 "bytes_per_response": bpr, "errors": errors,
                                                 "wrk": [x["raw"] for x in rs]}
            rows.append(["%s %s" % (sc, name), rps["median"], rps["min"], rps["max"], p50["median"], p99["median"],
                         bpr["median"], errors])
        summary[sc]["ratio"] = B.ratio(summary[sc]["clipfeed"]["rps"]["median"], summary[sc]["nginx"]["rps"]["median"])
        summary[sc]["ratio_export"] = B.ratio(summary[sc]["clipfeed"]["rps"]["median"],
                                              summary[sc]["nginx-export"]["rps"]["median"])
        # Each scenario must have stayed what it claims, on both servers.
        for name in servers:
            b = summary[sc][name]["bytes_per_response"]["median"]
            wrong = (sc == "plain" and b < 0.98 * len(plain)) or (sc == "gzip" and not 0.98 * len(gz) <= b < len(plain)) or \
                (sc == "304" and b > 1024)
            if wrong:
                B.log("WARNING: %s %s averaged %.0f bytes per response" % (sc, name, b))
    print("\n== serving %s (%d B, gzip %d B), N = %d stored; wrk -t%d -c%d -d%ds, %d rounds; %s"
          % (FEED, len(plain), len(gz), args.n, args.threads, args.connections, args.seconds, args.rounds, pinning))
    print(B.table(["", "req/s", "min", "max", "p50 ms", "p99 ms", "B/resp", "errors"], rows))
    for sc in SCENARIOS:
        ratio = summary[sc]["ratio"]
        print("%-5s clipfeed / nginx = %.2fx; target >= %.1fx: %s" % (sc, ratio, TARGET_RATIO,
                                                                      B.verdict(ratio >= TARGET_RATIO)))
        print("%-5s clipfeed / nginx serving the export (deploy/nginx/clipfeed.conf) = %.2fx"
              % (sc, summary[sc]["ratio_export"]))
        if args.cpu:
            cpu = {name: B.spread([x.get("cpu_us", 0) for x in runs[(name, sc)]]) for name in servers}
            ins = {name: B.spread([x.get("instructions", 0) for x in runs[(name, sc)]]) for name in servers}
            for name in servers:
                summary[sc][name]["cpu_us"], summary[sc][name]["instructions"] = cpu[name], ins[name]
            print("%-5s CPU per response (median, us): %s; instructions: %s" % (
                sc, ", ".join("%s %.2f" % (n, cpu[n]["median"]) for n in servers),
                ", ".join("%s %.0f" % (n, ins[n]["median"]) for n in servers)))
    result = {"figure": "serving", "n": args.n, "seed": args.seed, "machine": machine, "binary": binary,
              "feed": FEED, "bytes": len(plain), "gzip_bytes": len(gz), "pinning": pinning,
              "wrk": {"threads": args.threads, "connections": args.connections, "seconds": args.seconds,
                      "rounds": args.rounds},
              "clipfeed_vmrss_kib": mem.get("VmRSS"), "scenarios": summary, "target_ratio": TARGET_RATIO,
              "nginx_version": B.tool_version(["nginx", "-v"])}
    print("results: %s" % B.save(args.workdir, "serve-%d" % args.n, result))


if __name__ == "__main__":
    main()
