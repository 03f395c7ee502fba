//! The process's own figures for the standard `process_*` metrics, read from the kernel at
//! scrape time: `/proc/self/stat` (CPU time, start, memory), `/proc/self/fd` (open descriptors),
//! the descriptor limit and the boot time. A figure that cannot be read is 0; a scrape never
//! fails for it.

use crate::metrics::ProcessSample;

/// Reads the process's figures now.
pub(crate) fn sample() -> ProcessSample {
    let mut s = ProcessSample {
        open_fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64),
        max_fds: max_fds(),
        ..ProcessSample::default()
    };
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|t| boot_time(&t)).unwrap_or(0);
        // SAFETY: sysconf only reads a system constant.
        let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
        if let Some(f) = parse_stat(&stat) {
            let ticks = ticks.max(1) as f64;
            s.cpu_seconds = (f.utime + f.stime) as f64 / ticks;
            s.start_time_seconds = boot as f64 + f.start_ticks as f64 / ticks;
            s.virtual_bytes = f.vsize;
            s.resident_bytes = f.rss_pages * page.max(0) as u64;
        }
    }
    s
}

/// The fields of `/proc/self/stat` the metrics use (see proc(5)).
#[derive(Debug, PartialEq)]
struct Stat {
    utime: u64,
    stime: u64,
    start_ticks: u64,
    vsize: u64,
    rss_pages: u64,
}

/// Reads `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may hold spaces
/// and parentheses itself, so the fields are counted from after its last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name, the first field is field 3 (state): field n is at n - 3.
    let n = |field: usize| f.get(field - 3).and_then(|v| v.parse::<u64>().ok());
    Some(Stat { utime: n(14)?, stime: n(15)?, start_ticks: n(22)?, vsize: n(23)?, rss_pages: n(24)? })
}

/// The boot time (`btime`, seconds since the epoch) from `/proc/stat`.
fn boot_time(text: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

/// The soft limit on open descriptors.
fn max_fds() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct it is given, which lives for the call.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    if ok { lim.rlim_cur } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        let line = "4242 (clip (feed) x) S 1 2 3 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 123456 987654321 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        let s = parse_stat(line).unwrap();
        assert_eq!(s, Stat { utime: 250, stime: 50, start_ticks: 123456, vsize: 987654321, rss_pages: 2048 });
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 5\n"), Some(1700000000));
    }

    #[test]
    fn this_process_is_measured() {
        let s = sample();
        // Other tests open and close files meanwhile, so one file more could be hidden by two
        // closed elsewhere: 256 held files must show as far more than the count before.
        let held: Vec<_> = (0..256).map(|_| std::fs::File::open("/proc/self/stat").unwrap()).collect();
        let with = sample().open_fds;
        assert!(with >= s.open_fds + 128, "256 open files count: {} before, {with} with them", s.open_fds);
        drop(held);
        assert!(s.resident_bytes > 1 << 20 && s.virtual_bytes >= s.resident_bytes, "{s:?}");
        assert!(s.max_fds >= 64, "{s:?}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!(s.start_time_seconds > now - 3600.0 && s.start_time_seconds <= now + 1.0, "{s:?}");
    }
}
