//! The log on standard error: its format, its filter, and how it reads under journald.
//!
//! - Format: text lines for people, or one JSON object per line (`log_format: json`) for log
//!   pipelines, with the message and fields at the top level.
//! - Journald: when standard error is the journal's stream (systemd sets `JOURNAL_STREAM` to its
//!   device and inode), every line starts with its syslog priority, `<3>` error, `<4>` warn,
//!   `<6>` info, `<7>` debug and trace (the sd-daemon convention journald reads, so
//!   `journalctl -p warning` works), and carries no time stamp (the journal adds one) or colour.
//! - Filter: `RUST_LOG`, taken as it is, when set; else the configuration's `log`, in which a bare
//!   level (`debug`) is clipfeed's own level while other crates (html5ever, hyper, ...) keep to
//!   warnings and errors. Directives naming a crate (`html5ever=debug`) apply as written.

use std::sync::atomic::{AtomicBool, Ordering};

use serde::Deserialize;
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, JsonFields, Writer};
use tracing_subscriber::fmt::{self as tfmt, FmtContext};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written (configuration key `log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `LEVEL target: message key=value ...`
    #[default]
    Text,
    /// `{"timestamp":...,"level":"INFO","message":...,"key":value,...,"target":...}`
    Json,
}

use crate::daemon::LogFilter;

/// Set once the daemon's log is installed: fatal errors then go through it (same format, same
/// priority prefix) instead of a bare line.
static DAEMON_LOG: AtomicBool = AtomicBool::new(false);

/// Installs the daemon's log: `log` is the configuration's filter, `format` its `log_format`.
pub fn init_daemon(log: &str, format: LogFormat) -> LogFilter {
    let filter = init(log, format);
    DAEMON_LOG.store(true, Ordering::Relaxed);
    filter
}

/// Installs the log of a command-line tool (`check`, `render`, `token`): warnings and errors, as
/// text.
pub fn init_tool() {
    let _ = init("warn", LogFormat::Text);
}

fn init(log: &str, format: LogFormat) -> LogFilter {
    use tracing_subscriber::prelude::*;
    let from_env = std::env::var_os("RUST_LOG").is_some();
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(directives(log)))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let journal = journald();
    let ansi = !journal && format == LogFormat::Text && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::registry().with(filter).with(layer(format, journal, ansi)).try_init();
    Box::new(move |log: &str| {
        if from_env {
            return;
        }
        if let Ok(f) = EnvFilter::try_new(directives(log)) {
            let _ = handle.reload(f);
        }
    })
}

/// The formatting layer for `format`, with priority prefixes and without time stamps under
/// journald.
fn layer<S>(format: LogFormat, journal: bool, ansi: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let text = tfmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    let json = tfmt::format().json().flatten_event(true).with_current_span(false).with_span_list(false);
    match (format, journal) {
        (LogFormat::Text, false) => text.boxed(),
        (LogFormat::Text, true) => text.event_format(Journal(tfmt::format().without_time())).boxed(),
        (LogFormat::Json, false) => text.fmt_fields(JsonFields::new()).event_format(json).boxed(),
        (LogFormat::Json, true) => text.fmt_fields(JsonFields::new()).event_format(Journal(json)).boxed(),
    }
}

/// The filter directives for the configuration's `log`: a bare level is clipfeed's, and other
/// crates are held at `warn` (or the bare level, if that is quieter).
pub fn directives(log: &str) -> String {
    let parts: Vec<&str> = log.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    let names_clipfeed = parts.iter().any(|p| p.split_once('=').is_some_and(|(target, _)| target == "clipfeed"));
    let mut out = Vec::new();
    for part in parts {
        match part.parse::<LevelFilter>() {
            Ok(level) if !part.contains('=') => {
                out.push(level.min(LevelFilter::WARN).to_string().to_ascii_lowercase());
                if !names_clipfeed {
                    out.push(format!("clipfeed={}", level.to_string().to_ascii_lowercase()));
                }
            }
            _ => out.push(part.to_string()),
        }
    }
    out.join(",")
}

/// The syslog priority of a level: error 3, warning 4, informational 6, debug 7.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// Whether standard error is the journal's stream: `JOURNAL_STREAM` names its device and inode.
/// The variable alone is not enough: a program started from a service (a shell in a terminal
/// under a user manager) inherits it while writing elsewhere.
pub fn journald() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else { return false };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else { return false };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else { return false };
    let Ok(fd) = std::os::fd::AsFd::as_fd(&std::io::stderr()).try_clone_to_owned() else { return false };
    std::fs::File::from(fd).metadata().is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// Writes a fatal error: through the daemon's log once it is installed, else as one line per
/// line of the message, `clipfeed: ...`, with priority 3 under journald.
pub fn fatal(err: &anyhow::Error) {
    if DAEMON_LOG.load(Ordering::Relaxed) {
        tracing::error!("{err:#}");
        return;
    }
    let prefix = if journald() { "<3>" } else { "" };
    for line in format!("clipfeed: {err:#}").lines() {
        eprintln!("{prefix}{line}");
    }
}

/// Puts the event's syslog priority before each line `F` writes.
struct Journal<F>(F);

impl<S, N, F> FormatEvent<S, N> for Journal<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let mut text = String::new();
        self.0.format_event(ctx, Writer::new(&mut text), event)?;
        let priority = priority(*event.metadata().level());
        for line in text.lines() {
            writeln!(writer, "<{priority}>{line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn a_bare_level_is_clipfeeds_and_other_crates_keep_to_warnings() {
        assert_eq!(directives("debug"), "warn,clipfeed=debug");
        assert_eq!(directives("info"), "warn,clipfeed=info");
        assert_eq!(directives("error"), "error,clipfeed=error");
        assert_eq!(directives("debug,html5ever=trace"), "warn,clipfeed=debug,html5ever=trace");
        assert_eq!(directives("debug,clipfeed=info"), "warn,clipfeed=info");
        assert_eq!(directives("clipfeed::ingest=trace"), "clipfeed::ingest=trace");
        for log in ["debug", "info,hyper=debug", "off"] {
            assert!(EnvFilter::try_new(directives(log)).is_ok(), "{log}");
        }
    }

    /// Formats events with `layer`'s formatting for `format` under journald into a string.
    fn journal_lines(format: LogFormat, emit: impl FnOnce()) -> String {
        let out = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = out.clone();
        let writer = move || Sink(sink.clone());
        use tracing_subscriber::prelude::*;
        let fmt = tfmt::layer().with_writer(writer).with_ansi(false);
        let layer: Box<dyn Layer<_> + Send + Sync> = match format {
            LogFormat::Text => fmt.event_format(Journal(tfmt::format().without_time())).boxed(),
            LogFormat::Json => fmt
                .fmt_fields(JsonFields::new())
                .event_format(Journal(tfmt::format().json().flatten_event(true)))
                .boxed(),
        };
        let subscriber = tracing_subscriber::registry().with(LevelFilter::TRACE).with(layer);
        tracing::subscriber::with_default(subscriber, emit);
        String::from_utf8(out.lock().unwrap().clone()).unwrap()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn under_journald_every_line_starts_with_its_priority() {
        let text = journal_lines(LogFormat::Text, || {
            tracing::error!("broken");
            tracing::warn!(path = "a.md", "rejected");
            tracing::info!("two\nlines");
            tracing::debug!("detail");
            tracing::trace!("finer");
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        let prefixes: Vec<&str> = lines.iter().map(|l| &l[..3]).collect();
        assert_eq!(prefixes, ["<3>", "<4>", "<6>", "<6>", "<7>", "<7>"], "{text}");
        assert!(lines[1].contains("WARN") && lines[1].contains("path=\"a.md\""), "{text}");
        assert_eq!(lines[3], "<6>lines");

        let json = journal_lines(LogFormat::Json, || tracing::warn!(count = 3, "rejected"));
        let line = json.strip_prefix("<4>").expect("priority prefix");
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).expect("one JSON object after the prefix");
        assert_eq!(
            (v["level"].as_str(), v["message"].as_str(), v["count"].as_u64()),
            (Some("WARN"), Some("rejected"), Some(3))
        );
    }
}
