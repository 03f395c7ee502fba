//! Wiring for `clipfeed serve`: opens the store, takes the listening socket (inherited from
//! systemd, or bound), publishes what the store holds, starts the watcher and the writer thread,
//! tells systemd it is ready, serves HTTP, pings the watchdog while the writer and the watcher
//! are alive, reloads the configuration on SIGHUP, and on SIGTERM/SIGINT stops in order: stop
//! accepting, finish requests (bounded), stop the watcher, let the writer finish its queue and
//! close the store.
//!
//! The accept loop is ours (hyper serves each connection, see [`http::Server`], on one of the
//! HTTP workers, [`http::Workers`], one single-threaded runtime per CPU): it holds at
//! most `http.max_connections` connections at once, a number it lowers to what the open-file
//! limit allows after raising that limit's soft value to its hard one. At the limit it stops
//! accepting until a connection closes, so clients wait in the kernel's queue rather than being
//! refused; a warning says so at most once a minute. Each connection is admitted by
//! [`http::Connections`], which holds one address to its share and closes idle connections when
//! the limit is near.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use tokio::signal::unix::Signal;
use tokio::sync::{Semaphore, oneshot};
use tracing::{debug, error, info, warn};

use crate::config::{Config, Reloaded};
use crate::http::{self, AppState, Connections, Phase};
use crate::ingest::Ingest;
use crate::job::Job;
use crate::metrics::Metrics;
use crate::site::Site;
use crate::store::Store;
use crate::systemd::{self, Heartbeat, Notifier};
use crate::views::Views;
use crate::watch;

/// Open files kept for everything but connections: the store and its journals (two connections),
/// the watcher, the clippings being read (one per parsing thread), folders being walked, the
/// notify socket; and the sealed files bodies are sent from (`site::SEALED_MAX_FILES`).
const FD_RESERVE: u64 = 128 + crate::site::SEALED_MAX_FILES as u64;

/// At most one warning about the connection limit, or about failing accepts, per this period.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The pause after an accept fails for want of resources (file descriptors, memory), so the loop
/// does not spin while the connection that caused it waits in the queue.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Changes the log filter when the configuration's `log` changes (unless `RUST_LOG` is set).
pub type LogFilter = Box<dyn Fn(&str) + Send + Sync>;

/// What `serve` takes from the process environment before any thread exists.
struct Inherited {
    /// The listening socket systemd passed, if any.
    listener: Option<std::net::TcpListener>,
    notifier: Arc<Notifier>,
    /// The watchdog period systemd asks for, if any.
    watchdog: Option<Duration>,
}

/// Runs the daemon until a stop signal. `path` is the configuration file, read again on SIGHUP.
pub(crate) fn serve(cfg: Config, path: PathBuf, log_filter: LogFilter) -> Result<()> {
    // glibc gives each thread that allocates under contention an arena of its own, up to eight
    // per core, and memory freed in one is not reused by the others: two keep the resident size
    // near what is live, at no measurable cost to a server of this size.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called before any thread is started; mallopt only tunes the allocator.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    // The environment is read (and systemd's socket variables removed) here, before the async
    // runtime's workers, the store's checkpoint thread or any other thread exists.
    // SAFETY: `clipfeed serve` has one thread until this function builds the runtime: the
    // configuration was read and logging set up (neither starts a thread) on this one.
    let listener = unsafe { systemd::take_inherited_listener() }.context("cannot use the socket systemd passed")?;
    let inherited =
        Inherited { listener, notifier: Arc::new(Notifier::from_env()), watchdog: systemd::watchdog_period() };
    systemd::beat_every();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("clipfeed-async")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve_async(cfg, path, log_filter, inherited))
}

async fn serve_async(mut cfg: Config, path: PathBuf, log_filter: LogFilter, inherited: Inherited) -> Result<()> {
    // The signals' handlers come first, before the store opens: the default action of each of
    // them ends the process at once, and a start can take a while (a store moved to a newer
    // format, a million files to watch). A reload or a rescan asked for meanwhile is answered
    // once the daemon is ready; a stop ends the start at once (`stop_during_start`).
    let signals = Signals::install()?;
    let early_stop = tokio::spawn(stop_during_start()?);
    info!(version = env!("CARGO_PKG_VERSION"), config = %path.display(), store = %cfg.store.display(), "starting");
    let Inherited { listener, notifier, watchdog } = inherited;
    let mut store = Store::open(&cfg.store)?;
    // A configuration that would open a private feed without saying so is refused before
    // anything is served (exit status 78, like every configuration error).
    crate::ingest::refuse_loosening(&mut store, &cfg).map_err(crate::locate::ConfigError::new)?;
    // The socket comes first: without a configured base URL, links use the port actually bound.
    // Connections wait in the backlog until the first feeds are published.
    let listener = listen(listener, &cfg).await?;
    let addr = listener.local_addr()?;
    cfg.bound_to(addr);
    let cfg = Arc::new(cfg);
    let shared = Arc::new(ArcSwap::new(cfg.clone()));
    let metrics = Arc::new(Metrics::default());
    let site = Arc::new(ArcSwap::from_pointee(Site::empty()));
    // The first job is the start-up reconcile; events that arrive meanwhile queue behind it.
    let (jobs, jobs_rx) = mpsc::channel();
    jobs.send(Job::Rescan).expect("writer channel open");
    let saved = crate::reach::saved(&cfg, &mut store)?;
    let (watcher, mut ingest, beats) = start_watching_and_writer(&cfg, store, &site, &metrics, &jobs).await?;
    let push = crate::reach::start(&cfg, &shared, &site, saved, &jobs)?;
    let hub = push.hub.clone();
    ingest.set_push(push);
    let stop_writer = ingest.stop_flag();
    info!("listening on http://{addr}/");

    let writer = std::thread::Builder::new()
        .name("clipfeed-writer".into())
        .spawn(move || ingest.run(jobs_rx))
        .context("cannot start the writer thread")?;

    let views = Views::open(&cfg.store, shared.clone())?;
    let state = AppState::new(site.clone(), Some(views), shared.clone(), metrics).with_hub(hub.clone());
    let server = http::Server::new(state, &cfg.http);
    let workers = http::Workers::start(&server, std::thread::available_parallelism().map_or(1, |n| n.get()))
        .context("cannot start the HTTP workers")?;
    debug!(workers = workers.len(), "HTTP workers started");
    let max_connections = connection_limit(cfg.http.max_connections);
    let conns = Connections::new(&cfg.http, max_connections);
    let (phase_tx, phase_rx) = tokio::sync::watch::channel(Phase::Serving);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let acceptor = tokio::spawn(accept(listener, workers, conns, max_connections, phase_rx, stop_rx));
    // The store is open and the socket bound: ready for systemd (requests are answered from the
    // stored feeds while the first reconcile runs).
    early_stop.abort();
    notifier.notify("READY=1");

    spawn_rescan_on_usr1(signals.usr1, jobs.clone());
    spawn_watchdog(notifier.clone(), watchdog, beats);
    spawn_reload_on_hup(signals.hup, notifier.clone(), path, (shared, site.clone()), jobs.clone(), log_filter);

    let signal = shutdown_signal(signals.term, signals.int).await;
    notifier.notify("STOPPING=1");
    info!(signal, "stopping: no new connections, finishing requests");
    // The writer ends a long batch at its next chunk meanwhile (see `StopFlag`).
    stop_writer.raise();
    // Every connection is told first, then the listening socket closes: a client that finds it
    // closed finds no request it queued answered after the response in flight (the other
    // order let a connection answer them while the stop waited for the accept loop).
    let _ = phase_tx.send(Phase::Draining);
    let _ = stop_tx.send(());
    let workers = acceptor.await;
    if let Err(e) = &workers {
        warn!("the accept loop failed: {e}");
    }
    drain(phase_tx, cfg.http.shutdown_grace).await;
    if let Ok(workers) = workers {
        tokio::task::spawn_blocking(move || workers.stop()).await?;
    }
    drop(watcher);
    if let Some(hub) = &hub {
        hub.stop();
    }
    let _ = jobs.send(Job::Shutdown);
    tokio::task::spawn_blocking(move || writer.join()).await?.map_err(|_| anyhow::anyhow!("writer thread panicked"))?;
    info!("stopped");
    Ok(())
}

/// The listening socket: the one systemd passed, or one bound to `listen`; its connections'
/// reads report what they leave (`http::count_unread`).
async fn listen(inherited: Option<std::net::TcpListener>, cfg: &Config) -> Result<tokio::net::TcpListener> {
    let listener = listen_on(inherited, cfg).await?;
    if let Err(e) = http::count_unread(&listener) {
        debug!("the kernel counts no unread bytes (TCP_INQ): {e}; each read of a request is checked by another");
    }
    Ok(listener)
}

async fn listen_on(inherited: Option<std::net::TcpListener>, cfg: &Config) -> Result<tokio::net::TcpListener> {
    match inherited {
        Some(std_listener) => {
            info!("using the listening socket passed by systemd");
            Ok(tokio::net::TcpListener::from_std(std_listener)?)
        }
        None => tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("cannot listen on {} (key 'listen')", cfg.listen)),
    }
}

/// Sets up the watches and opens the writer (which publishes what the store holds), side by side:
/// both take a while with many clippings (notify stats every entry under the roots). Returns the
/// watcher, the writer ready to run, and the heartbeats of both.
async fn start_watching_and_writer(
    cfg: &Arc<Config>,
    store: Store,
    site: &Arc<ArcSwap<Site>>,
    metrics: &Arc<Metrics>,
    jobs: &mpsc::Sender<Job>,
) -> Result<(watch::Watcher, Ingest, Vec<Heartbeat>)> {
    let writer_beat = Heartbeat::new("writer");
    let watcher_beat = Heartbeat::new("watcher");
    let watching = {
        let (roots, mode, every, jobs, beat) =
            (cfg.clippings.clone(), cfg.watch, cfg.poll_interval, jobs.clone(), watcher_beat.clone());
        tokio::task::spawn_blocking(move || watch::spawn(&roots, mode, every, jobs, beat))
    };
    let ingest = {
        let (cfg, site, metrics, beat) = (cfg.clone(), site.clone(), metrics.clone(), writer_beat.clone());
        tokio::task::spawn_blocking(move || {
            let path = cfg.store.clone();
            Ingest::start(cfg, store, site, metrics, beat).map_err(|e| crate::store::corrupt_hint(&path, e))
        })
    };
    let (watcher, ingest) = tokio::join!(watching, ingest);
    Ok((watcher??, ingest??, vec![writer_beat, watcher_beat]))
}

/// Once the connections are draining (`Phase::Draining`: idle ones close now, the others after
/// their current request) and the listening socket is closed: waits for them, until the grace
/// period ends. Each connection holds a receiver of `phase`, so `closed` means every one has
/// ended.
async fn drain(phase: tokio::sync::watch::Sender<Phase>, grace: Duration) {
    if tokio::time::timeout(grace, phase.closed()).await.is_err() {
        warn!(seconds = grace.as_secs(), "requests still running after the grace period; closing them");
        let _ = phase.send(Phase::Closing);
        let _ = tokio::time::timeout(Duration::from_secs(1), phase.closed()).await;
    }
}

/// Accepts connections until `stop`, each handed to a worker while it holds one of
/// `max_connections` slots and `conns` admits it. Returns the workers once the listening socket
/// is closed.
async fn accept(
    listener: tokio::net::TcpListener,
    workers: http::Workers,
    conns: Arc<Connections>,
    max_connections: usize,
    phase: tokio::sync::watch::Receiver<Phase>,
    mut stop: oneshot::Receiver<()>,
) -> http::Workers {
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut full = Throttle::default();
    let mut failing = Throttle::default();
    let mut crowded = Throttle::default();
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                conns.make_room();
                full.warn(|waits| {
                    warn!(
                        max_connections,
                        times = waits,
                        "connection limit reached; new connections wait until one closes (key 'http.max_connections')"
                    )
                });
                tokio::select! {
                    slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                    _ = &mut stop => return workers,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) if is_transient(&e) => {
                    debug!("accept: {e}");
                    continue;
                }
                Err(e) => {
                    failing.warn(|times| error!(times, "cannot accept connections: {e}"));
                    tokio::select! {
                        _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                        _ = &mut stop => return workers,
                    }
                }
            },
            _ = &mut stop => return workers,
        };
        let ticket = match conns.admit(peer.ip()) {
            Ok(ticket) => ticket,
            Err(http::Refused::PerAddress) => {
                crowded.warn(|times| {
                    warn!(
                        address = %peer.ip(),
                        times,
                        "an address holds as many connections as one may; its new ones get 503 (key 'http.max_connections_per_address')"
                    )
                });
                http::Server::refuse(stream);
                continue;
            }
        };
        // Responses go out in one write; without this, the last partial segment of a large one
        // can wait for the client's delayed acknowledgement.
        let _ = stream.set_nodelay(true);
        workers.serve(stream, peer, phase.clone(), ticket, slot);
    }
}

/// Errors of one incoming connection (it went away before we took it), not of the listener.
fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock)
}

/// Lets an event be logged at most once per [`WARN_EVERY`], counting the occurrences between.
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
    since: u64,
}

impl Throttle {
    fn warn(&mut self, log: impl FnOnce(u64)) {
        self.since += 1;
        if self.last.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            log(self.since);
            self.last = Some(Instant::now());
            self.since = 0;
        }
    }
}

/// The number of connections to allow: `configured`, or fewer when the open-file limit is
/// lower. The soft limit is first raised to the hard one, as systemd recommends for programs
/// that need many descriptors and do not use `select()` (its default soft limit is 1024, the
/// hard one 524288).
fn connection_limit(configured: usize) -> usize {
    let Some(files) = raise_open_file_limit() else { return configured };
    let allowed = usize::try_from(files.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX).max(1);
    if allowed < configured {
        warn!(
            open_file_limit = files,
            max_connections = allowed,
            configured,
            "the open-file limit allows fewer connections than configured (key 'http.max_connections'); raise LimitNOFILE= or ulimit -n"
        );
        allowed
    } else {
        info!(open_file_limit = files, max_connections = configured, "connection limit");
        configured
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the soft limit then in force;
/// `None` when it cannot be read.
fn raise_open_file_limit() -> Option<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct we pass and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            debug!(from = lim.rlim_cur, to = lim.rlim_max, "raised the open-file limit");
            lim.rlim_cur = lim.rlim_max;
        } else {
            debug!("cannot raise the open-file limit: {}", std::io::Error::last_os_error());
        }
    }
    Some(lim.rlim_cur)
}

/// SIGUSR1 asks for the start-up comparison of every root with the store.
fn spawn_rescan_on_usr1(mut usr1: Signal, jobs: mpsc::Sender<Job>) {
    tokio::spawn(async move {
        while usr1.recv().await.is_some() {
            info!("SIGUSR1: rescanning every root");
            if jobs.send(Job::Rescan).is_err() {
                break;
            }
        }
    });
}

/// Pings systemd's watchdog at half its period while every heartbeat is fresh. A hung writer or
/// watcher stops the pings, and systemd restarts the service.
fn spawn_watchdog(notifier: Arc<Notifier>, period: Option<Duration>, beats: Vec<Heartbeat>) {
    let Some(period) = period.filter(|_| notifier.enabled()) else { return };
    info!(seconds = period.as_secs_f32(), "watchdog enabled");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period / 2);
        let mut stalled: Option<&'static str> = None;
        loop {
            tick.tick().await;
            match beats.iter().find(|b| b.age() > period) {
                None => {
                    stalled = None;
                    notifier.notify("WATCHDOG=1");
                }
                Some(b) if stalled != Some(b.name()) => {
                    error!(thread = b.name(), seconds = b.age().as_secs(), "not responding; no watchdog ping");
                    stalled = Some(b.name());
                }
                Some(_) => {}
            }
        }
    });
}

/// SIGHUP reads the configuration file again. A valid one is applied (topics, aliases, keywords,
/// private feeds, limits, titles, cache settings, log level); settings that need a restart keep
/// their running value, with a warning naming them. An invalid one is refused and the running
/// configuration stays.
fn spawn_reload_on_hup(
    mut hup: Signal,
    notifier: Arc<Notifier>,
    path: PathBuf,
    (shared, site): (Arc<ArcSwap<Config>>, Arc<ArcSwap<Site>>),
    jobs: mpsc::Sender<Job>,
    log_filter: LogFilter,
) {
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            notifier.reloading();
            let running = shared.load_full();
            match Config::load(&path).and_then(|new| keeps_privacy(&running, &site.load(), new)) {
                Err(e) => error!("configuration reload refused, the running configuration stays: {e:#}"),
                Ok(new) => {
                    let Reloaded { config: new, need_restart } = running.reloaded(new);
                    if !need_restart.is_empty() {
                        let keys = need_restart.join(", ");
                        warn!(keys = %keys, "these settings changed and take effect only after a restart");
                    }
                    log_filter(&new.log);
                    let new = Arc::new(new);
                    shared.store(new.clone());
                    let (done_tx, done_rx) = mpsc::channel();
                    if jobs.send(Job::Reload(new, done_tx)).is_err() {
                        break;
                    }
                    let _ = tokio::task::spawn_blocking(move || done_rx.recv()).await;
                    info!(config = %path.display(), "configuration reloaded");
                }
            }
            notifier.notify("READY=1");
        }
    });
}

/// A reloaded configuration, unless it would make public a feed that is private today (private
/// under the running configuration, or holding a token) without writing `private: false` on it.
fn keeps_privacy(running: &Config, site: &Site, new: Config) -> Result<Config> {
    let running_private: Vec<String> = running.visibility().private_feeds().iter().map(|k| k.path_stem()).collect();
    let today = running_private.iter().map(String::as_str).chain(site.private.keys().map(String::as_str));
    let loosened = new.visibility().loosened(today);
    if !loosened.is_empty() {
        anyhow::bail!("{}", crate::ingest::loosening_refused(&loosened));
    }
    Ok(new)
}

/// The signals the daemon answers, their handlers installed.
struct Signals {
    term: Signal,
    int: Signal,
    usr1: Signal,
    hup: Signal,
}

impl Signals {
    fn install() -> Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let handler = |kind: SignalKind, name: &str| signal(kind).with_context(|| format!("cannot handle {name}"));
        Ok(Signals {
            term: handler(SignalKind::terminate(), "SIGTERM")?,
            int: handler(SignalKind::interrupt(), "SIGINT")?,
            usr1: handler(SignalKind::user_defined1(), "SIGUSR1")?,
            hup: handler(SignalKind::hangup(), "SIGHUP")?,
        })
    }
}

/// A stop (SIGTERM, SIGINT) asked for before the daemon is ready ends the process at once, as
/// the signal's default action would, with a clean status and a line in the log: nothing is
/// served yet, and the store is as safe as after a crash. The task is aborted once the daemon
/// is ready, and the stop is then `shutdown_signal`'s.
fn stop_during_start() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        let signal = shutdown_signal(term, int).await;
        warn!(signal, "stopping during the start: nothing was served yet");
        std::process::exit(0);
    })
}

/// Waits for SIGTERM or SIGINT and names it.
async fn shutdown_signal(mut term: Signal, mut int: Signal) -> &'static str {
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
