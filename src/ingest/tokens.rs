//! Tokens of private feeds: one per private feed, 256 random bits kept in the store. The writer
//! reads them again every few seconds, so `clipfeed token rotate` in another process takes effect.

use std::collections::BTreeSet;
use std::io::Read;

use anyhow::{Context, Result};

use super::Ingest;
use crate::config::Config;
use crate::feed::FeedKey;
use crate::store::Store;

/// The token of every private feed, by path stem, sorted; a feed without one gets one. With
/// `rotate` (a path stem such as `topics/internal`), that feed gets a new token.
pub(crate) fn feed_tokens(store: &mut Store, cfg: &Config, rotate: Option<&str>) -> Result<Vec<(String, String)>> {
    let private: BTreeSet<String> = cfg.visibility().private_feeds().iter().map(FeedKey::path_stem).collect();
    if let Some(stem) = rotate
        && !private.contains(stem)
    {
        anyhow::bail!(
            "{stem} is not a private feed (private: {})",
            private.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let b = store.batch()?;
    let mut tokens = b.tokens()?;
    // A feed the configuration makes public with `private: false` loses its token, so the next
    // configuration need not say so again.
    let released: Vec<String> = tokens
        .keys()
        .filter(|stem| FeedKey::from_stem(stem).is_some_and(|k| cfg.visibility().declared_public(&k)))
        .cloned()
        .collect();
    for stem in released {
        b.delete_token(&stem)?;
        tokens.remove(&stem);
    }
    for stem in &private {
        if !tokens.contains_key(stem) || rotate == Some(stem.as_str()) {
            let token = new_token()?;
            b.set_token(stem, &token)?;
            tokens.insert(stem.clone(), token);
        }
    }
    b.commit()?;
    let mut out: Vec<(String, String)> = tokens.into_iter().filter(|(stem, _)| private.contains(stem)).collect();
    out.sort();
    Ok(out)
}

/// Refuses a configuration that would make public, without saying `private: false`, a feed that
/// has a token in the store (one private today). Checked at start, before anything is served.
pub(crate) fn refuse_loosening(store: &mut Store, cfg: &Config) -> Result<()> {
    let b = store.batch()?;
    let tokens = b.tokens()?;
    drop(b);
    let loosened = cfg.visibility().loosened(tokens.keys().map(String::as_str));
    if !loosened.is_empty() {
        anyhow::bail!("{}", loosening_refused(&loosened));
    }
    Ok(())
}

/// Why a configuration that would make private feeds public is refused, naming them.
pub(crate) fn loosening_refused(feeds: &[String]) -> String {
    format!(
        "the configuration would make these private feeds public: {}; refused (write `private: false` on a feed to make it public on purpose)",
        feeds.join(", ")
    )
}

/// A new random token: 32 bytes from the kernel's generator, as hex.
fn new_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom for a token")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Ingest {
    /// Gives every private feed a token (kept in the store), and loads them.
    pub(super) fn ensure_tokens(&mut self) -> Result<()> {
        self.core.tokens = feed_tokens(&mut self.store, &self.core.cfg, None)?.into_iter().collect();
        Ok(())
    }

    /// Reads the tokens again (`clipfeed token rotate` writes them); whether any changed.
    pub(super) fn refresh_tokens(&mut self) -> Result<bool> {
        let before = self.core.tokens.clone();
        self.ensure_tokens()?;
        Ok(self.core.tokens != before)
    }
}
