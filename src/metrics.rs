//! Counters, gauges and histograms for `/metrics`, in the Prometheus text format, by the usual
//! conventions: `clipfeed_build_info`, the standard `process_*` metrics (sampled by `process`
//! and written here), every labelled counter present at 0 from the start, no ratios since
//! start (a dashboard computes them with `rate()`). Lock-free (atomics). Written by the writer
//! and the HTTP layer, read at scrape time; nothing here does IO. The HTTP counters, which every
//! response adds to, are kept in shards of their own cache lines, one per counting thread (as far
//! as there are shards), and summed when read: two HTTP threads counting at once never write to
//! the same line, and every count stays exact.

use std::cell::Cell;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// A histogram with fixed bucket bounds, in seconds.
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// Bounds for durations from a millisecond to a minute.
const DURATION_BOUNDS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub(crate) fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micros.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", bucket.load(Ordering::Relaxed));
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Every metric the daemon keeps.
pub struct Metrics {
    /// Clipping files read and parsed (accepted or rejected), the rejections among them, and
    /// files the store knew that went away; counted by the writer once recorded.
    pub(crate) files_parsed: AtomicU64,
    pub(crate) files_rejected: AtomicU64,
    pub(crate) files_removed: AtomicU64,
    /// Feed documents rendered (one per feed and format set) and the time each took.
    pub(crate) renders: AtomicU64,
    pub(crate) render_seconds: Histogram,
    /// Writer jobs (changed paths or rescans) and the time each took.
    pub(crate) ingest_seconds: Histogram,
    /// From the first file event of a batch to the new feeds being served.
    pub(crate) watch_to_publish_seconds: Histogram,
    pub(crate) rescans: AtomicU64,
    pub(crate) reloads: AtomicU64,
    /// Current state, set by the writer when it publishes.
    pub(crate) clippings_live: AtomicU64,
    pub(crate) files_rejected_now: AtomicU64,
    pub(crate) files_pending: AtomicU64,
    pub(crate) feeds: AtomicU64,
    /// 1 while the store takes writes and its file is the one opened, else 0; and the failed
    /// writes (and store files found deleted or replaced) since start.
    pub(crate) store_ok: AtomicU64,
    pub(crate) store_errors: AtomicU64,
    /// Configured roots by state (`ROOT_STATES`), as the last reconcile found them.
    roots: [AtomicU64; ROOT_STATES.len()],
    /// HTTP responses by route class and status, and body bytes by route class: plain atomic
    /// counters in fixed slots, so counting a request takes no lock; one set per shard (`shard`).
    http: Box<[HttpCounts]>,
}

/// Response counts by route class and status (`requests`), and body bytes by route class, of
/// one shard; aligned so that no two shards share a cache line (or the pair the prefetcher
/// fetches together).
#[repr(align(128))]
struct HttpCounts {
    requests: [AtomicU64; ROUTES.len() * (STATUSES.len() + 1)],
    bytes: [AtomicU64; ROUTES.len()],
}

/// How many shards the HTTP counters have: more than the HTTP threads of any machine this runs
/// on would be wasted memory (about 1.6 KB each); two threads sharing one still count exactly.
const SHARDS: usize = 16;

/// The shard of the calling thread: given out in turn to each thread at its first count.
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    MINE.with(|mine| {
        if mine.get() == usize::MAX {
            mine.set(NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS);
        }
        mine.get()
    })
}

/// The states a configured root can be in (`ingest::RootState::label`).
const ROOT_STATES: [&str; 4] = ["ok", "missing", "not a folder", "unreadable"];

/// The standard `process_*` metrics, as `process` reads them from the kernel.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessSample {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    /// Since the Unix epoch.
    pub start_time_seconds: f64,
}

/// The route classes requests are counted under (`http::route_class`); anything else counts as
/// the last.
const ROUTES: [&str; 11] =
    ["index", "opml", "stylesheet", "health", "status", "metrics", "page", "archive", "filtered", "feed", "other"];
/// The statuses counted one by one; any other counts as `other`.
const STATUSES: [u16; 16] = [200, 204, 206, 301, 304, 400, 401, 403, 404, 405, 408, 414, 429, 431, 500, 503];

fn route_slot(route: &str) -> usize {
    ROUTES.iter().position(|r| *r == route).unwrap_or(ROUTES.len() - 1)
}

fn status_slot(status: u16) -> usize {
    STATUSES.iter().position(|s| *s == status).unwrap_or(STATUSES.len())
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            files_parsed: AtomicU64::new(0),
            files_rejected: AtomicU64::new(0),
            files_removed: AtomicU64::new(0),
            renders: AtomicU64::new(0),
            render_seconds: Histogram::new(DURATION_BOUNDS),
            ingest_seconds: Histogram::new(DURATION_BOUNDS),
            watch_to_publish_seconds: Histogram::new(DURATION_BOUNDS),
            rescans: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            clippings_live: AtomicU64::new(0),
            files_rejected_now: AtomicU64::new(0),
            files_pending: AtomicU64::new(0),
            feeds: AtomicU64::new(0),
            store_ok: AtomicU64::new(1),
            store_errors: AtomicU64::new(0),
            roots: Default::default(),
            http: (0..SHARDS)
                .map(|_| HttpCounts {
                    requests: std::array::from_fn(|_| AtomicU64::new(0)),
                    bytes: std::array::from_fn(|_| AtomicU64::new(0)),
                })
                .collect(),
        }
    }
}

impl Metrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn set(gauge: &AtomicU64, n: u64) {
        gauge.store(n, Ordering::Relaxed);
    }

    /// Sets the roots-by-state gauge from each configured root's state label.
    pub(crate) fn set_roots<'a>(&self, states: impl Iterator<Item = &'a str>) {
        let mut counts = [0u64; ROOT_STATES.len()];
        for state in states {
            if let Some(i) = ROOT_STATES.iter().position(|s| *s == state) {
                counts[i] += 1;
            }
        }
        for (gauge, n) in self.roots.iter().zip(counts) {
            Metrics::set(gauge, n);
        }
    }

    /// Records one HTTP response, in the calling thread's shard.
    pub(crate) fn request(&self, route: &'static str, status: u16, body_bytes: u64) {
        let r = route_slot(route);
        let counts = &self.http[shard()];
        counts.requests[r * (STATUSES.len() + 1) + status_slot(status)].fetch_add(1, Ordering::Relaxed);
        if body_bytes > 0 {
            counts.bytes[r].fetch_add(body_bytes, Ordering::Relaxed);
        }
    }

    /// One HTTP counter (`of` picks it in a shard), summed over the shards.
    fn http_sum(&self, of: impl Fn(&HttpCounts) -> &AtomicU64) -> u64 {
        self.http.iter().map(|c| of(c).load(Ordering::Relaxed)).sum()
    }

    /// Everything, in the Prometheus text exposition format (version 0.0.4), with the process's
    /// own figures.
    pub(crate) fn render(&self, process: &ProcessSample) -> String {
        let mut out = String::with_capacity(16384);
        write_build_and_process(&mut out, process);
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        };
        counter(
            "clipfeed_files_parsed_total",
            "Clipping files read and parsed, accepted or rejected.",
            load(&self.files_parsed),
        );
        counter(
            "clipfeed_rejections_total",
            "Clipping files rejected (each time one is read and refused).",
            load(&self.files_rejected),
        );
        counter("clipfeed_files_removed_total", "Clipping files that went away.", load(&self.files_removed));
        counter(
            "clipfeed_renders_total",
            "Feeds rendered (every format of one feed counts once).",
            load(&self.renders),
        );
        counter(
            "clipfeed_rescans_total",
            "Comparisons of every root with the store (start-up, overflow, SIGUSR1, polling).",
            load(&self.rescans),
        );
        counter("clipfeed_reloads_total", "Configuration reloads applied (SIGHUP).", load(&self.reloads));
        counter(
            "clipfeed_store_errors_total",
            "Updates the store could not commit (full disk, I/O error), and store files found deleted or replaced.",
            load(&self.store_errors),
        );
        let _ = writeln!(out, "# HELP clipfeed_clippings Clippings by state.\n# TYPE clipfeed_clippings gauge");
        let _ = writeln!(out, "clipfeed_clippings{{state=\"live\"}} {}", load(&self.clippings_live));
        let _ = writeln!(out, "clipfeed_clippings{{state=\"rejected\"}} {}", load(&self.files_rejected_now));
        let _ = writeln!(out, "clipfeed_clippings{{state=\"pending\"}} {}", load(&self.files_pending));
        let _ = writeln!(
            out,
            "# HELP clipfeed_store_ok 1 while the store takes writes and its file is the one opened, else 0.\n# TYPE clipfeed_store_ok gauge\nclipfeed_store_ok {}",
            load(&self.store_ok)
        );
        let _ = writeln!(
            out,
            "# HELP clipfeed_feeds Feeds served.\n# TYPE clipfeed_feeds gauge\nclipfeed_feeds {}",
            load(&self.feeds)
        );
        let _ = writeln!(
            out,
            "# HELP clipfeed_roots Configured clippings roots by state at the last reconcile.\n# TYPE clipfeed_roots gauge"
        );
        for (state, n) in ROOT_STATES.iter().zip(&self.roots) {
            let _ = writeln!(out, "clipfeed_roots{{state=\"{state}\"}} {}", load(n));
        }
        self.ingest_seconds.write(
            &mut out,
            "clipfeed_ingest_seconds",
            "Time the writer took per job (changed files or a rescan).",
        );
        self.render_seconds.write(&mut out, "clipfeed_render_seconds", "Time to render one feed in every format.");
        self.watch_to_publish_seconds.write(
            &mut out,
            "clipfeed_watch_to_publish_seconds",
            "From the first file event of a batch to its feeds being served.",
        );
        self.write_http(&mut out);
        out
    }

    /// The HTTP part: responses by route class and status, bytes sent by route class. Every
    /// label set is written, at 0 before it is first counted.
    fn write_http(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP clipfeed_http_requests_total HTTP responses by route class and status.\n# TYPE clipfeed_http_requests_total counter"
        );
        for (r, route) in ROUTES.iter().enumerate() {
            for s in 0..=STATUSES.len() {
                let n = self.http_sum(|c| &c.requests[r * (STATUSES.len() + 1) + s]);
                let status = STATUSES.get(s).map_or_else(|| "other".to_string(), u16::to_string);
                let _ = writeln!(out, "clipfeed_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP clipfeed_http_response_bytes_total Body bytes sent, by route class.\n# TYPE clipfeed_http_response_bytes_total counter"
        );
        for (r, route) in ROUTES.iter().enumerate() {
            let _ = writeln!(
                out,
                "clipfeed_http_response_bytes_total{{route=\"{route}\"}} {}",
                self.http_sum(|c| &c.bytes[r])
            );
        }
    }
}

/// `clipfeed_build_info` and the standard `process_*` metrics.
fn write_build_and_process(out: &mut String, p: &ProcessSample) {
    let _ = writeln!(
        out,
        "# HELP clipfeed_build_info The running build: its version, as a label; the value is always 1.\n# TYPE clipfeed_build_info gauge\nclipfeed_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    let metric = |out: &mut String, name: &str, kind: &str, help: &str, value: String| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    };
    metric(
        out,
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        p.cpu_seconds.to_string(),
    );
    metric(
        out,
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        p.resident_bytes.to_string(),
    );
    metric(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", p.virtual_bytes.to_string());
    metric(out, "process_open_fds", "gauge", "Number of open file descriptors.", p.open_fds.to_string());
    metric(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.", p.max_fds.to_string());
    metric(
        out,
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
        p.start_time_seconds.to_string(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample line `name{labels}` in `text`.
    fn sample(text: &str, line: &str) -> u64 {
        let found = text.lines().find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')).expect(line);
        found.parse().unwrap()
    }

    /// More threads than shards count at once, each its own mix of routes, statuses and bytes;
    /// every count read afterwards is the exact sum.
    #[test]
    fn counts_from_many_threads_at_once_are_exact() {
        let m = Metrics::default();
        let threads = SHARDS + 5;
        let per_thread = 20_000u64;
        std::thread::scope(|s| {
            for t in 0..threads as u64 {
                let m = &m;
                s.spawn(move || {
                    for i in 0..per_thread {
                        m.request("feed", if i % 3 == 0 { 304 } else { 200 }, if i % 3 == 0 { 0 } else { 10 + t });
                        m.request("page", 404, 1);
                    }
                });
            }
        });
        let text = m.render(&ProcessSample::default());
        let n = threads as u64 * per_thread;
        let fresh = threads as u64 * per_thread.div_ceil(3);
        let full = n - fresh;
        assert_eq!(sample(&text, "clipfeed_http_requests_total{route=\"feed\",status=\"304\"}"), fresh);
        assert_eq!(sample(&text, "clipfeed_http_requests_total{route=\"feed\",status=\"200\"}"), full);
        assert_eq!(sample(&text, "clipfeed_http_requests_total{route=\"page\",status=\"404\"}"), n);
        assert_eq!(sample(&text, "clipfeed_http_requests_total{route=\"feed\",status=\"404\"}"), 0);
        let bytes: u64 = (0..threads as u64).map(|t| (per_thread - per_thread.div_ceil(3)) * (10 + t)).sum();
        assert_eq!(sample(&text, "clipfeed_http_response_bytes_total{route=\"feed\"}"), bytes);
        assert_eq!(sample(&text, "clipfeed_http_response_bytes_total{route=\"page\"}"), n);
    }

    #[test]
    fn exposition_format() {
        let m = Metrics::default();
        Metrics::add(&m.files_parsed, 3);
        m.render_seconds.observe(Duration::from_millis(3));
        m.render_seconds.observe(Duration::from_secs(100));
        m.request("feed", 200, 1000);
        m.request("feed", 304, 0);
        m.request("feed", 304, 0);
        let text = m.render(&ProcessSample { open_fds: 7, ..Default::default() });
        assert!(text.contains("clipfeed_files_parsed_total 3"), "{text}");
        assert!(text.contains("clipfeed_render_seconds_bucket{le=\"0.0025\"} 0"), "{text}");
        assert!(text.contains("clipfeed_render_seconds_bucket{le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("clipfeed_render_seconds_bucket{le=\"+Inf\"} 2"), "{text}");
        assert!(text.contains("clipfeed_render_seconds_count 2"), "{text}");
        assert!(text.contains("clipfeed_http_requests_total{route=\"feed\",status=\"304\"} 2"), "{text}");
        assert!(!text.contains("_ratio"), "no ratio since start: {text}");
        assert!(text.contains("process_open_fds 7\n"), "{text}");
        assert!(text.contains(&format!("clipfeed_build_info{{version=\"{}\"}} 1\n", env!("CARGO_PKG_VERSION"))));
        assert!(text.contains("clipfeed_http_response_bytes_total{route=\"feed\"} 1000"), "{text}");
        // Labelled counters are there before anything is counted under their labels.
        assert!(text.contains("clipfeed_http_requests_total{route=\"archive\",status=\"503\"} 0\n"), "{text}");
        assert!(text.contains("clipfeed_http_response_bytes_total{route=\"opml\"} 0\n"), "{text}");
        assert!(text.contains("clipfeed_roots{state=\"missing\"} 0\n"), "{text}");
        m.set_roots(["ok", "missing", "ok"].into_iter());
        let text = m.render(&ProcessSample::default());
        assert!(
            text.contains("clipfeed_roots{state=\"ok\"} 2\n") && text.contains("clipfeed_roots{state=\"missing\"} 1\n")
        );
        // Every sample line is `name{labels} value`, every metric has HELP and TYPE.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
