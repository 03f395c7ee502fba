//! The daemon's wiring of what reaches past its HTTP server: the WebSub hub and the static
//! export thread. It starts the hub with the subscriptions the store kept, tells it which URLs
//! are topics ([`offered`]), sends its subscription changes to the writer (which alone writes
//! the store), and starts the export thread. Nothing starts when the configuration asks for
//! neither (`websub.enabled`, `websub.hubs`, `export`).
//!
//! What a topic is, is decided here once: exactly the self URL of a published feed document
//! (`feed.rss`, `topics/ai.atom`, …) — no filtered views, no archive pages — and for a private
//! feed only with its current token (`?token=…`) and nothing else in the query.

use std::sync::Arc;
use std::sync::mpsc::Sender;

use anyhow::Result;
use arc_swap::ArcSwap;

use crate::config::Config;
use crate::feed::Format;
use crate::ingest::Push;
use crate::job::Job;
use crate::site::Site;
use crate::store::Store;
use crate::websub::{Hub, Persist, Subscription, TopicCheck, normalize_topic};

/// The subscriptions the store kept whose lease has not ended (read before the writer owns
/// the store; none when the hub is off).
pub(crate) fn saved(cfg: &Config, store: &mut Store) -> Result<Vec<Subscription>> {
    if !cfg.websub.enabled {
        return Ok(Vec::new());
    }
    let b = store.batch()?;
    let saved = b.websub_subscriptions(unix_now())?;
    b.commit()?;
    Ok(saved)
}

/// Starts what the configuration asks for, once `site` holds the published feeds (the hub asks
/// it whether the saved subscriptions' topics are still offered). `jobs` is the writer's queue.
pub(crate) fn start(
    cfg: &Arc<Config>,
    shared: &Arc<ArcSwap<Config>>,
    site: &Arc<ArcSwap<Site>>,
    saved: Vec<Subscription>,
    jobs: &Sender<Job>,
) -> Result<Push> {
    let mut push = Push::default();
    if cfg.websub.active() {
        let (site, shared) = (site.clone(), shared.clone());
        let topics: TopicCheck = Arc::new(move |url| offered(&site.load(), &shared.load(), url));
        let jobs = std::sync::Mutex::new(jobs.clone());
        let persist: Persist = Arc::new(move |change| {
            let _ = jobs.lock().expect("jobs lock").send(Job::Subscription(change));
        });
        let rt = tokio::runtime::Handle::current();
        let hub = Hub::start(cfg.websub.clone(), saved, topics, persist, &rt)?;
        tracing::info!(
            enabled = cfg.websub.enabled,
            external_hubs = cfg.websub.hubs.len(),
            subscriptions = hub.stats().subscriptions,
            "WebSub started"
        );
        push.hub = Some(hub);
    }
    if let Some(target) = &cfg.export {
        push.export = Some(crate::export::spawn(target.clone(), site.clone(), shared.clone())?);
    }
    Ok(push)
}

/// Whether `url` (normalised as [`normalize_topic`] does) is the self URL of a feed document
/// that may be subscribed now.
pub(crate) fn offered(site: &Site, cfg: &Config, url: &str) -> bool {
    is_topic(cfg.base_url.as_str(), url, |stem| site.feeds.contains_key(stem), |stem| site.private.get(stem))
}

/// [`offered`], given the base URL, which feeds exist and the private feeds' tokens.
fn is_topic<'a>(
    base: &str,
    url: &str,
    exists: impl Fn(&str) -> bool,
    token_of: impl Fn(&str) -> Option<&'a String>,
) -> bool {
    let Some(base) = normalize_topic(base) else { return false };
    let Some(rest) = url.strip_prefix(&base) else { return false };
    if url.contains('#') {
        return false;
    }
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let Some((stem, ext)) = path.rsplit_once('.') else { return false };
    if Format::from_extension(ext).is_none() || !exists(stem) {
        return false;
    }
    match token_of(stem) {
        None => query.is_empty(),
        Some(token) => {
            let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
            matches!(pairs.as_slice(), [(k, v)] if k == "token" && v == token)
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_feed_self_urls_and_private_ones_need_their_token() {
        let feeds = ["feed", "topics/ai", "topics/secret"];
        let token = "tok123".to_string();
        let yes = |u: &str| {
            is_topic(
                "http://news.example/cf/",
                &normalize_topic(u).unwrap(),
                |s| feeds.contains(&s),
                |s| (s == "topics/secret").then_some(&token),
            )
        };
        assert!(yes("http://news.example/cf/feed.rss"));
        assert!(yes("HTTP://NEWS.example:80/cf/topics/ai.json"));
        assert!(yes("http://news.example/cf/topics/secret.atom?token=tok123"));
        assert!(!yes("http://news.example/cf/topics/secret.atom"));
        assert!(!yes("http://news.example/cf/topics/secret.atom?token=wrong"));
        assert!(!yes("http://news.example/cf/topics/secret.atom?token=tok123&q=x"));
        assert!(!yes("http://news.example/cf/topics/ai.rss?q=x"));
        assert!(!yes("http://news.example/cf/topics/ai.html"));
        assert!(!yes("http://news.example/cf/topics/none.rss"));
        assert!(!yes("http://news.example/cf/topics/ai/archive/25-0.rss"));
        assert!(!yes("http://other.example/cf/feed.rss"));
        assert!(!yes("https://news.example/cf/feed.rss"));
    }
}
