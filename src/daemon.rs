//! Wiring for `clipfeed serve`: opens the store, takes the listening socket (inherited from
//! systemd, or bound), publishes what the store holds, starts the watcher and the writer thread,
//! tells systemd it is ready, serves HTTP, pings the watchdog while the writer and the watcher
//! are alive, reloads the configuration on SIGHUP, and on SIGTERM/SIGINT stops in order: stop
//! accepting, finish requests (bounded), stop the watcher, let the writer finish its queue and
//! close the store.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::http::{self, AppState, Dynamic};
use crate::ingest::{Ingest, Job};
use crate::metrics::Metrics;
use crate::site::Site;
use crate::store::{Reader, Store};
use crate::systemd::{self, Heartbeat, Notifier};
use crate::views::Views;
use crate::watch;

/// How long in-flight requests may take to finish after a stop signal.
const GRACE: Duration = Duration::from_secs(10);

/// Changes the log filter when the configuration's `log` changes (unless `RUST_LOG` is set).
pub type LogFilter = Box<dyn Fn(&str) + Send + Sync>;

/// Runs the daemon until a stop signal. `path` is the configuration file, read again on SIGHUP.
pub fn serve(cfg: Config, path: PathBuf, log_filter: LogFilter) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("clipfeed-http")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve_async(cfg, path, log_filter))
}

async fn serve_async(mut cfg: Config, path: PathBuf, log_filter: LogFilter) -> Result<()> {
    info!(version = env!("CARGO_PKG_VERSION"), config = %path.display(), store = %cfg.store.display(), "starting");
    let notifier = Arc::new(Notifier::from_env());
    let store = Store::open(&cfg.store)?;
    // The socket comes first: without a configured base URL, links use the port actually bound.
    // Connections wait in the backlog until the first feeds are published.
    let listener = match systemd::inherited_listener().context("cannot use the socket systemd passed")? {
        Some(std_listener) => {
            info!("using the listening socket passed by systemd");
            tokio::net::TcpListener::from_std(std_listener)?
        }
        None => tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("cannot listen on {} (key 'listen')", cfg.listen))?,
    };
    let addr = listener.local_addr()?;
    cfg.bound_to(addr);
    let cfg = Arc::new(cfg);
    let shared = Arc::new(ArcSwap::new(cfg.clone()));
    let metrics = Arc::new(Metrics::default());
    let site = Arc::new(ArcSwap::from_pointee(Site::empty()));
    let writer_beat = Heartbeat::new("writer");
    let ingest = {
        let (cfg, site, metrics, beat) = (cfg.clone(), site.clone(), metrics.clone(), writer_beat.clone());
        tokio::task::spawn_blocking(move || Ingest::start(cfg, store, site, metrics, beat)).await??
    };
    info!("listening on http://{addr}/");

    let (jobs, jobs_rx) = mpsc::channel();
    let watcher_beat = Heartbeat::new("watcher");
    let watcher = watch::spawn(&cfg.clippings, cfg.watch, cfg.poll_interval, jobs.clone(), watcher_beat.clone())?;
    // The first job is the start-up reconcile; events that arrive meanwhile queue behind it.
    jobs.send(Job::Rescan).expect("writer channel open");
    let writer = std::thread::Builder::new()
        .name("clipfeed-writer".into())
        .spawn(move || ingest.run(jobs_rx))
        .context("cannot start the writer thread")?;

    let views: Arc<dyn Dynamic> = Arc::new(Views::new(Reader::open(&cfg.store)?, shared.clone()));
    let state = AppState { site: site.clone(), dynamic: Some(views), config: shared.clone(), metrics };
    let app = http::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .await
    });
    // The store is open and the socket bound: ready for systemd (requests are answered from the
    // stored feeds while the first reconcile runs).
    notifier.notify("READY=1");

    spawn_rescan_on_usr1(jobs.clone());
    spawn_watchdog(notifier.clone(), vec![writer_beat, watcher_beat]);
    spawn_reload_on_hup(notifier.clone(), path, shared, jobs.clone(), log_filter);

    let signal = shutdown_signal().await;
    notifier.notify("STOPPING=1");
    info!(signal, "stopping: no new connections, finishing requests");
    let _ = stop_tx.send(());
    match tokio::time::timeout(GRACE, server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => warn!("server ended with an error: {e}"),
        Ok(Err(e)) => warn!("server task failed: {e}"),
        Err(_) => warn!(seconds = GRACE.as_secs(), "requests still running after the grace period; closing them"),
    }
    drop(watcher);
    let _ = jobs.send(Job::Shutdown);
    tokio::task::spawn_blocking(move || writer.join()).await?.map_err(|_| anyhow::anyhow!("writer thread panicked"))?;
    info!("stopped");
    Ok(())
}

/// SIGUSR1 asks for the start-up comparison of every root with the store.
fn spawn_rescan_on_usr1(jobs: mpsc::Sender<Job>) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut usr1) = signal(SignalKind::user_defined1()) else { return };
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
fn spawn_watchdog(notifier: Arc<Notifier>, beats: Vec<Heartbeat>) {
    let Some(period) = systemd::watchdog_period().filter(|_| notifier.enabled()) else { return };
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
    notifier: Arc<Notifier>,
    path: PathBuf,
    shared: Arc<ArcSwap<Config>>,
    jobs: mpsc::Sender<Job>,
    log_filter: LogFilter,
) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
        while hup.recv().await.is_some() {
            notifier.reloading();
            let running = shared.load_full();
            match Config::load(&path) {
                Err(e) => error!("configuration reload refused, the running configuration stays: {e:#}"),
                Ok(mut new) => {
                    let mut restart = Vec::new();
                    if new.listen != running.listen {
                        restart.push("listen");
                    }
                    if new.store != running.store {
                        restart.push("store");
                    }
                    if new.clippings != running.clippings {
                        restart.push("clippings");
                    }
                    if new.watch != running.watch || new.poll_interval != running.poll_interval {
                        restart.push("watch/poll_interval");
                    }
                    if !restart.is_empty() {
                        warn!(keys = %restart.join(", "), "these settings changed and take effect only after a restart");
                    }
                    new.listen = running.listen;
                    new.store = running.store.clone();
                    new.clippings = running.clippings.clone();
                    new.watch = running.watch;
                    new.poll_interval = running.poll_interval;
                    if !new.base_url_given {
                        new.base_url = running.base_url.clone();
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

/// Waits for SIGTERM or SIGINT and names it.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
