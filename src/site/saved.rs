//! Saved feeds: a [`FeedEntry`] as the store keeps it across a clean restart (its fields as
//! JSON, its documents with their compressed forms framed in one blob, with a hash of it), and
//! read back whole or not at all.

use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result};
use arc_swap::ArcSwapOption;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{FeedEntry, Rendered};
use crate::clip::Image;
use crate::feed::{FeedKey, FeedMeta, Format};

impl FeedEntry {
    /// The entry as saved in the store at a clean shutdown, so that the next start serves it as
    /// it was, byte for byte, without rendering: its fields as JSON, and its documents (with the
    /// compressed forms already made) framed in one blob.
    pub(crate) fn save(&self) -> Result<(String, Vec<u8>)> {
        let docs = [&self.rss, &self.atom, &self.json];
        let head = SavedHead {
            key: self.key.path_stem(),
            title: self.meta.title.clone(),
            description: self.meta.description.clone(),
            site_title: self.meta.site_title.clone(),
            updated: self.meta.updated,
            icon: self.meta.icon.clone(),
            items_per_feed: self.items_per_feed,
            page_size: self.page_size,
            archive_pages: self.archive_pages,
            window_start: self.window_start,
            log_len: self.log_len,
            meta_at: self.meta_at,
            retired_pages: self.retired_pages.clone(),
            generation: self.generation,
            history_at: self.history_at,
            history_ambiguous: self.history_ambiguous,
            docs: docs.map(|d| SavedDoc {
                len: d.len,
                hash: d.hash.clone(),
                last_modified: d.last_modified,
                ambiguous: d.ambiguous,
                dated: d.dated,
            }),
        };
        let mut blob = Vec::new();
        for d in docs {
            let plain = d.plain.load_full();
            for part in [plain.as_deref(), d.gzip.get(), d.brotli.get()] {
                match part {
                    Some(bytes) => {
                        blob.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                        blob.extend_from_slice(bytes);
                    }
                    None => blob.extend_from_slice(&u32::MAX.to_le_bytes()),
                }
            }
        }
        let head = SavedEntry { blob_hash: format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&blob)), head };
        Ok((serde_json::to_string(&head)?, blob))
    }

    /// An entry saved by [`FeedEntry::save`]. Anything that does not read back whole is an error
    /// (the caller then renders the feed afresh).
    pub(crate) fn restore(head: &str, blob: Bytes) -> Result<FeedEntry> {
        let SavedEntry { blob_hash, head } = serde_json::from_str(head).context("saved feed head")?;
        anyhow::ensure!(
            format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&blob)) == blob_hash,
            "saved feed documents do not match their hash"
        );
        let key = FeedKey::from_stem(&head.key).with_context(|| format!("saved feed key {:?}", head.key))?;
        let [rss, atom, json] = read_docs(&head.docs, &blob)?;
        Ok(FeedEntry {
            meta: FeedMeta {
                key: key.clone(),
                title: head.title,
                description: head.description,
                site_title: head.site_title,
                updated: head.updated,
                icon: head.icon,
            },
            key,
            rss,
            atom,
            json,
            items_per_feed: head.items_per_feed,
            page_size: head.page_size,
            archive_pages: head.archive_pages,
            window_start: head.window_start,
            log_len: head.log_len,
            meta_at: head.meta_at,
            retired_pages: head.retired_pages,
            generation: head.generation,
            history_at: head.history_at,
            history_ambiguous: head.history_ambiguous,
        })
    }
}

/// The three documents framed in `blob` (each as its original, gzip and brotli forms, any of
/// them absent), checked against what their heads say. They share the blob's memory (no copy).
fn read_docs(saved: &[SavedDoc; 3], blob: &Bytes) -> Result<[Rendered; 3]> {
    let mut at = 0;
    let mut take = || -> Result<Option<Bytes>> {
        let len = blob.get(at..at + 4).context("saved feed documents cut short")?;
        let len = u32::from_le_bytes(len.try_into().expect("four bytes"));
        at += 4;
        if len == u32::MAX {
            return Ok(None);
        }
        let end = at + len as usize;
        anyhow::ensure!(end <= blob.len(), "saved feed documents cut short");
        let part = blob.slice(at..end);
        at = end;
        Ok(Some(part))
    };
    let mut docs = Vec::with_capacity(3);
    for (saved, format) in saved.iter().zip([Format::Rss, Format::Atom, Format::Json]) {
        let (plain, gzip, brotli) = (take()?, take()?, take()?);
        anyhow::ensure!(plain.is_some() || gzip.is_some(), "saved feed document missing");
        if let Some(body) = &plain {
            anyhow::ensure!(
                format!("{:032x}", xxhash_rust::xxh3::xxh3_128(body)) == saved.hash,
                "saved feed document does not match its hash"
            );
        }
        let id = u128::from_str_radix(&saved.hash, 16).context("saved feed document hash")?;
        let r = Rendered {
            plain: ArcSwapOption::new(plain.map(Arc::new)),
            len: saved.len,
            hash: saved.hash.clone(),
            id,
            last_modified: saved.last_modified,
            ambiguous: saved.ambiguous,
            dated: saved.dated,
            content_type: format.content_type(),
            gzip: OnceLock::new(),
            brotli: OnceLock::new(),
            validators: OnceLock::new(),
            heads: OnceLock::new(),
            sealed: Default::default(),
            asked: Default::default(),
        };
        if let Some(g) = gzip {
            let _ = r.gzip.set(g);
        }
        if let Some(b) = brotli {
            let _ = r.brotli.set(b);
        }
        docs.push(r);
    }
    anyhow::ensure!(at == blob.len(), "saved feed documents have trailing bytes");
    Ok(docs.try_into().expect("one document per format"))
}

/// The fields of a [`FeedEntry`] as saved in the store.
#[derive(Serialize, Deserialize)]
struct SavedHead {
    key: String,
    title: String,
    description: String,
    site_title: String,
    updated: DateTime<Utc>,
    icon: Option<Image>,
    items_per_feed: usize,
    page_size: u64,
    archive_pages: u64,
    window_start: u64,
    log_len: u64,
    meta_at: DateTime<Utc>,
    retired_pages: std::collections::BTreeMap<u64, u64>,
    generation: u64,
    history_at: DateTime<Utc>,
    history_ambiguous: bool,
    docs: [SavedDoc; 3],
}

/// A saved entry's head with the hash of its documents' blob, checked before it is used.
#[derive(Serialize, Deserialize)]
struct SavedEntry {
    blob_hash: String,
    head: SavedHead,
}

/// What HTTP needs of a saved document besides its bytes.
#[derive(Serialize, Deserialize)]
struct SavedDoc {
    len: usize,
    hash: String,
    last_modified: DateTime<Utc>,
    ambiguous: bool,
    dated: bool,
}
