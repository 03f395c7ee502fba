//! Reach beyond the HTTP server, on the writer's side: the hubs a feed's documents advertise,
//! the changed subscription documents handed to the WebSub hub after each publish (to its
//! subscribers, and as pings to the external hubs), the static export told to catch up, the
//! hub's subscription changes kept in the store, and subscriptions revoked when a feed's access
//! changes (a token rotated, a feed made private).
//!
//! None of it waits: [`Hub::publish`] and [`Kick::kick`] return at once, so a slow subscriber or
//! a slow disk never delays the next change. A document goes out only when its bytes changed
//! (its hash), and only its own topic's subscribers get it: a private feed's topic is its URL
//! with its token, and its documents are never pinged to external hubs.

use std::sync::Arc;

use bytes::Bytes;
use tracing::error;

use super::{Core, Ingest};
use crate::export::Kick;
use crate::feed::{FeedKey, Format, Links};
use crate::site::FeedEntry;
use crate::websub::{Change, Hub, Publication, link_header};

/// Where published changes go besides the HTTP server. Empty until the daemon starts them.
#[derive(Default)]
pub(crate) struct Push {
    pub(crate) hub: Option<Hub>,
    pub(crate) export: Option<Kick>,
}

/// A feed's entry before and after one render.
pub(super) type Replaced = (Option<Arc<FeedEntry>>, Arc<FeedEntry>);

impl Ingest {
    /// Hands the published changes to the hub and the export from now on.
    pub(crate) fn set_push(&mut self, push: Push) {
        self.core.push = push;
        if let Some(export) = &self.core.push.export {
            export.kick();
        }
    }

    /// Writes the hub's subscription changes to the store, in order, in one transaction. A
    /// failure is logged: the hub's table in memory stays right, and a later change of the same
    /// subscription writes it again.
    pub(super) fn save_subscriptions(&mut self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let saved = self.store.batch().and_then(|b| {
            for change in &changes {
                b.websub_apply(change)?;
            }
            b.commit()
        });
        if let Err(e) = saved {
            error!(changes = changes.len(), "saving WebSub subscriptions failed: {e:#}");
        }
    }
}

impl Core {
    /// The links of a feed's documents: a private feed's items link to no page here, and the
    /// hubs it advertises, if any.
    pub(super) fn feed_links(&self, key: &FeedKey) -> Links {
        let private = self.cfg.visibility().is_private(key);
        let (links, hubs) = (self.links.for_private(private), self.cfg.advertised_hubs(private));
        if hubs.is_empty() { links } else { links.with_hubs(hubs) }
    }

    /// The topic of a feed's subscription document in `format`: its self URL, with the token for
    /// a private feed (`None` for a private feed that has no token yet).
    fn topic(&self, key: &FeedKey, format: Format) -> Option<(String, bool)> {
        let url = self.links.feed(key, format);
        if !self.cfg.visibility().is_private(key) {
            return Some((url, true));
        }
        let token = self.tokens.get(&key.path_stem())?;
        Some((format!("{url}?token={token}"), false))
    }

    /// After a publish: each subscription document whose bytes changed goes to the hub (every
    /// format is its own topic), and the export catches up.
    /// A render that only settles ambiguous dates (`settling`) tells the export (its files carry
    /// the dates) but not the hub.
    pub(super) fn push_changes(&self, changed: &[Replaced]) {
        if let Some(hub) = self.push.hub.as_ref().filter(|_| !self.settling) {
            let docs: Vec<Publication> =
                changed.iter().flat_map(|(old, new)| self.publications(hub, old, new)).collect();
            if !docs.is_empty() {
                hub.publish(docs);
            }
        }
        if let Some(export) = &self.push.export {
            export.kick();
        }
    }

    fn publications(&self, hub: &Hub, old: &Option<Arc<FeedEntry>>, new: &FeedEntry) -> Vec<Publication> {
        let mut out = Vec::new();
        for format in Format::ALL {
            let doc = new.current(format);
            if old.as_ref().is_some_and(|o| o.current(format).hash == doc.hash) {
                continue;
            }
            let Some((topic, public)) = self.topic(&new.key, format) else { continue };
            let hubs = self.cfg.advertised_hubs(!public);
            let hubs: Vec<&str> = hubs.iter().map(String::as_str).collect();
            // Only a topic with subscribers needs the bytes (a packed document is inflated).
            let body = if hub.has_subscribers(&topic) { doc.plain() } else { Bytes::new() };
            let links = link_header(&hubs, &topic);
            out.push(Publication { topic, content_type: format.content_type().into(), body, links, public });
        }
        out
    }

    /// After the feeds' access changed (tokens re-read, configuration reloaded): subscriptions
    /// whose topic is no longer offered end, each subscriber told `hub.mode=denied`; the export
    /// catches up.
    pub(super) fn access_changed(&self, reason: &str) {
        if let Some(hub) = &self.push.hub {
            hub.recheck(reason);
        }
        if let Some(export) = &self.push.export {
            export.kick();
        }
    }
}
