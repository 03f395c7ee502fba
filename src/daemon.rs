//! Wiring for `clipfeed serve`: opens the store, publishes what it holds, binds the socket,
//! starts the watcher and the writer thread, serves HTTP until SIGTERM/SIGINT, then stops in
//! order: stop accepting, finish requests (bounded), stop the watcher, let the writer finish its
//! queue and close the store.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use tracing::{info, warn};

use crate::config::Config;
use crate::feed::Links;
use crate::http::{self, AppState, Dynamic};
use crate::ingest::{Ingest, Job};
use crate::site::Site;
use crate::store::{Reader, Store};
use crate::views::Views;
use crate::watch;

/// How long in-flight requests may take to finish after a stop signal.
const GRACE: Duration = Duration::from_secs(10);

/// Runs the daemon until a stop signal.
pub fn serve(cfg: Config) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("clipfeed-http")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve_async(cfg))
}

async fn serve_async(mut cfg: Config) -> Result<()> {
    info!(version = env!("CARGO_PKG_VERSION"), store = %cfg.store.display(), "starting");
    let store = Store::open(&cfg.store)?;
    // Bound before anything is rendered: without a configured base URL, links use the port
    // actually chosen. Connections wait in the backlog until the first feeds are published.
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {} (key 'listen')", cfg.listen))?;
    let addr = listener.local_addr()?;
    cfg.bound_to(addr);
    let cfg = Arc::new(cfg);
    let site = Arc::new(ArcSwap::from_pointee(Site::empty()));
    let ingest = {
        let (cfg, site) = (cfg.clone(), site.clone());
        tokio::task::spawn_blocking(move || Ingest::start(cfg, store, site)).await??
    };
    info!("listening on http://{addr}/");

    let (jobs, jobs_rx) = mpsc::channel();
    let watcher = watch::spawn(&cfg.clippings, cfg.watch, cfg.poll_interval, jobs.clone())?;
    // The first job is the start-up reconcile; events that arrive meanwhile queue behind it.
    jobs.send(Job::Rescan).expect("writer channel open");
    // SIGUSR1 asks for the same comparison of every root with the store.
    let rescan = jobs.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut usr1) = signal(SignalKind::user_defined1()) else { return };
        while usr1.recv().await.is_some() {
            info!("SIGUSR1: rescanning every root");
            if rescan.send(Job::Rescan).is_err() {
                break;
            }
        }
    });
    let writer = std::thread::Builder::new()
        .name("clipfeed-writer".into())
        .spawn(move || ingest.run(jobs_rx))
        .context("cannot start the writer thread")?;

    let views: Arc<dyn Dynamic> =
        Arc::new(Views::new(Reader::open(&cfg.store)?, Links::new(&cfg.base_url), cfg.title.clone()));
    let app = http::router(AppState { site, dynamic: Some(views), max_age: cfg.cache_max_age });

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .await
    });
    let signal = shutdown_signal().await;
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
