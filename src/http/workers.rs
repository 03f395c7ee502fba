//! The threads that serve connections: one per CPU the process may run on, each with a
//! single-threaded async runtime of its own. The accept loop (the daemon's) hands each admitted
//! connection to the worker holding the fewest, and from then on every request of that
//! connection is read, answered and written on that one thread: no task moves between threads,
//! and no thread wakes another, as in nginx's worker processes. This works the same for a socket
//! systemd passed and for one the daemon bound, since only the accept loop touches the
//! listening socket.
//!
//! What the workers share is what every connection shares already: the connection slots, the
//! registry (`conns`), the phase and the router's state.
//!
//! A handler that runs long on a worker holds up that worker's other connections, so nothing
//! slow runs on one: views are made on blocking threads (`work`); what does run there is a
//! lookup, or at worst the first brotli form of a document (once per document).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};

use super::conns::Ticket;
use super::server::{Phase, Server};

/// A connection on its way to a worker, with what it holds while it is open.
struct Handed {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    phase: watch::Receiver<Phase>,
    ticket: Ticket,
    slot: OwnedSemaphorePermit,
}

/// One worker: where to send it connections, and how many it holds.
struct Worker {
    tx: mpsc::UnboundedSender<Handed>,
    open: Arc<AtomicUsize>,
}

/// The worker threads. Dropping this (or [`Workers::stop`]) ends them: connections still open
/// are closed.
pub struct Workers {
    workers: Vec<Worker>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts `count` workers (at least one) serving with `server`.
    pub fn start(server: &Server, count: usize) -> std::io::Result<Workers> {
        let mut workers = Vec::new();
        let mut threads = Vec::new();
        for i in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (tx, rx) = mpsc::unbounded_channel();
            let open = Arc::new(AtomicUsize::new(0));
            let (server, count) = (server.clone(), open.clone());
            let thread = std::thread::Builder::new()
                .name(format!("clipfeed-http-{i}"))
                .spawn(move || runtime.block_on(run(server, rx, count)))?;
            workers.push(Worker { tx, open });
            threads.push(thread);
        }
        Ok(Workers { workers, threads })
    }

    /// How many workers serve.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Hands a connection to the worker holding the fewest; it holds `slot` and `ticket` until
    /// the connection ends.
    pub fn serve(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        phase: watch::Receiver<Phase>,
        ticket: Ticket,
        slot: OwnedSemaphorePermit,
    ) {
        let Some(worker) = self.workers.iter().min_by_key(|w| w.open.load(Ordering::Relaxed)) else { return };
        // The stream leaves this runtime's reactor and joins the worker's.
        let Ok(stream) = stream.into_std() else { return };
        worker.open.fetch_add(1, Ordering::Relaxed);
        if worker.tx.send(Handed { stream, peer, phase, ticket, slot }).is_err() {
            worker.open.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Ends the workers once the connections they hold have closed or were told to (see
    /// `Phase`): what is still open is dropped.
    pub fn stop(mut self) {
        self.workers.clear();
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("an HTTP worker thread panicked");
            }
        }
    }
}

/// A worker's loop: serves each connection it is handed on a task of its own runtime, until
/// the sending side is dropped.
async fn run(server: Server, mut rx: mpsc::UnboundedReceiver<Handed>, open: Arc<AtomicUsize>) {
    while let Some(Handed { stream, peer, phase, ticket, slot }) = rx.recv().await {
        let stream = match TcpStream::from_std(stream) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(%peer, "cannot serve a connection: {e}");
                open.fetch_sub(1, Ordering::Relaxed);
                continue;
            }
        };
        let (server, open) = (server.clone(), open.clone());
        tokio::spawn(async move {
            server.serve(stream, peer, phase, ticket).await;
            drop(slot);
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}
