//! HTTP: the routes, query filters, content negotiation, conditional requests, response headers,
//! who the client is and what it may do. The only module that knows HTTP (and the only one that
//! imports axum and hyper). Subscription feeds, the index and the OPML list are looked up in the
//! current [`Site`] snapshot: nothing is parsed, queried or rendered for them. Archive pages,
//! filtered views and clipping pages come from [`Views`] (rendered once, then cached).
//!
//! Request paths never name files: every route looks its name up in the snapshot, the store or
//! the view cache, after checking it against the shape of a feed name, an archive page name or a
//! clipping id. Path segments are percent-decoded exactly once, so `%252e%252e` stays the literal
//! `%2e%2e`, which names nothing.
//!
//! The parts, each in its own file:
//! - `routes`: the route table's handlers;
//! - `hot`: the hot path, a public subscription document for a feed reader answered before the
//!   router with the same functions, so each request it takes gets the router's answer;
//! - `gate`: the first layer every request meets (malformed requests, methods no route takes,
//!   the client's address, per-client limits behind a proxy, request metrics);
//! - `client`: who the client is, directly or behind a trusted proxy, and the key its limits
//!   count under;
//! - `routes::websub`: the WebSub hub's endpoint, handing the bounded form to
//!   [`Hub::request`](crate::websub::Hub::request);
//! - `access`: private-feed tokens and the operators' rule (`metrics.allow`, bearer token);
//! - `work`: views made on request, in lanes of their own, within a time budget, abandoned
//!   when the client goes;
//! - `respond` (conditional requests, validators, cache headers, short answers) and
//!   `negotiate` (content coding, browsers);
//! - `conns`: the connections open at once, per client address, idle ones closed first when
//!   the limit is near; [`server`]: one TCP connection served by hyper within the limits;
//!   `workers`: the threads connections are served on, one single-threaded runtime per CPU.
//!
//! `router` is what tests drive with `tower::ServiceExt::oneshot`, without a socket.

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::site::Site;
use crate::views::Views;

mod access;
mod client;
mod conns;
mod fast;
mod gate;
mod head;
mod hot;
mod negotiate;
mod recv;
mod respond;
mod routes;
mod server;
mod stories;
#[cfg(test)]
mod tests;
mod timer;
mod work;
mod workers;

pub use conns::{Connections, Refused};
pub use head::check as check_fast_head;
pub use recv::count_unread;
pub use server::{Phase, Server};
pub use workers::Workers;

/// What handlers share. Every request clones it (the router's state, the first layer's), so it
/// is one reference-counted pointer: one atomic increment per clone, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The fields of [`AppState`].
pub struct Shared {
    site: Arc<ArcSwap<Site>>,
    /// Views made on request; `None` in tests that have no store.
    views: Option<Arc<Views>>,
    /// The configuration in force (replaced on SIGHUP): cache lifetime, access rules, limits.
    config: Arc<ArcSwap<Config>>,
    metrics: Arc<Metrics>,
    /// The turns to make views, per lane.
    lanes: work::Lanes,
    /// Requests in flight per client behind a trusted proxy.
    proxied: client::InFlight,
    /// The WebSub hub, when it runs (`/websub` answers only when `websub.enabled`).
    hub: Option<crate::websub::Hub>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(
        site: Arc<ArcSwap<Site>>,
        views: Option<Views>,
        config: Arc<ArcSwap<Config>>,
        metrics: Arc<Metrics>,
    ) -> AppState {
        AppState(Arc::new(Shared {
            site,
            views: views.map(Arc::new),
            config,
            metrics,
            lanes: work::Lanes::default(),
            proxied: client::InFlight::default(),
            hub: None,
        }))
    }

    /// This state with the WebSub hub (call before the state is shared).
    pub fn with_hub(mut self, hub: Option<crate::websub::Hub>) -> AppState {
        Arc::get_mut(&mut self.0).expect("the state is not shared yet").hub = hub;
        self
    }

    fn max_age(&self) -> u32 {
        self.config.load().cache_max_age
    }
}

/// Every route clipfeed serves.
pub fn router(state: AppState) -> Router {
    use routes::{archive, feed};
    Router::new()
        .route("/", get(routes::index))
        .route("/feeds.opml", get(routes::opml))
        .route("/feed.xsl", get(routes::stylesheet))
        .route(
            "/feed.rss",
            get(|s: State<AppState>, h: HeaderMap, q: RawQuery| async move { feed(s, h, q, "feed", "rss").await }),
        )
        .route(
            "/feed.atom",
            get(|s: State<AppState>, h: HeaderMap, q: RawQuery| async move { feed(s, h, q, "feed", "atom").await }),
        )
        .route(
            "/feed.json",
            get(|s: State<AppState>, h: HeaderMap, q: RawQuery| async move { feed(s, h, q, "feed", "json").await }),
        )
        .route(
            "/feed/archive/{file}",
            get(|s: State<AppState>, h: HeaderMap, q: RawQuery, Path(file): Path<String>| async move {
                archive(s, h, q, "feed".into(), file).await
            }),
        )
        .route(
            "/{dir}/{file}",
            get(
                |s: State<AppState>, h: HeaderMap, q: RawQuery, Path((dir, file)): Path<(String, String)>| async move {
                    routes::feed_or_page(s, h, q, dir, file).await
                },
            ),
        )
        .route(
            "/{dir}/{name}/archive/{file}",
            get(
                |s: State<AppState>,
                 h: HeaderMap,
                 q: RawQuery,
                 Path((dir, name, file)): Path<(String, String, String)>| async move {
                    if matches!(dir.as_str(), "topics" | "providers") && routes::valid_name(&name) {
                        archive(s, h, q, format!("{dir}/{name}"), file).await
                    } else {
                        respond::not_found()
                    }
                },
            ),
        )
        .route("/websub", post(routes::websub))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .route("/api/status", get(routes::status))
        .fallback(|| async { respond::not_found() })
        .layer(axum::middleware::from_fn_with_state(state.clone(), gate::gate))
        .with_state(state)
}
