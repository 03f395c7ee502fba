//! `clipfeed check`: a verdict per clipping file, with the configuration's limits, extensions and
//! topics, so its ids and slugs are the daemon's. Given no paths, it checks what the daemon would
//! use: the configuration, each root (a readable folder), the store (its place, and a schema this
//! clipfeed can open) and every clipping in the roots. Exits 1 on any error or rejected file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use crate::clip::{self, Limits};
use crate::config::Config;
use crate::ingest::{clipping_files, read_clipping, root_state};
use crate::item;
use crate::locate::Located;
use crate::store;

/// A file to judge, and the path that identifies it when it has no URL (relative to its root).
type Candidate = (PathBuf, String);

/// Runs `check`: `cfg` is the configuration in use (and where it was found), if any.
pub fn run(cfg: Option<(&Config, &Located)>, paths: &[PathBuf], verbose: bool) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let mut errors = 0usize;
    let mut files = Vec::new();
    let mut walk = |path: &Path, out: &mut dyn Write, errors: &mut usize| -> Result<usize> {
        let (found, problems) = candidates(path, cfg.map(|c| c.0));
        let n = found.len();
        files.extend(found);
        for problem in problems {
            *errors += 1;
            writeln!(out, "error     {problem}")?;
        }
        Ok(n)
    };
    match (paths.is_empty(), cfg) {
        (false, _) => {
            for path in paths {
                walk(path, &mut out, &mut errors)?;
            }
        }
        (true, Some((cfg, found))) => {
            writeln!(out, "config    {}: ok (found by {})", found.path.display(), found.source)?;
            for root in &cfg.clippings {
                match check_root(root) {
                    Ok(()) => {
                        let n = walk(root, &mut out, &mut errors)?;
                        let plural = if n == 1 { "" } else { "s" };
                        writeln!(out, "root      {}: ok, {n} clipping file{plural}", root.display())?;
                    }
                    Err(problem) => {
                        errors += 1;
                        writeln!(out, "error     root {}: {problem}", root.display())?;
                    }
                }
            }
            errors += check_store(&cfg.store, &mut out)?;
        }
        (true, None) => anyhow::bail!("give files or folders to check, or a configuration (--config FILE)"),
    }
    let (good, bad) = judge(&files, cfg.map(|c| c.0), verbose, &mut out)?;
    writeln!(out, "{} files: {good} ok, {bad} rejected", files.len())?;
    if errors > 0 {
        writeln!(out, "{errors} {}", if errors == 1 { "error" } else { "errors" })?;
    }
    Ok(if bad + errors > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// The clipping files at `path` (itself, or the files under it that the configuration counts as
/// clippings, found by the daemon's own scanning code) with their identifying paths, and the
/// entries under it that could not be read.
fn candidates(path: &Path, cfg: Option<&Config>) -> (Vec<Candidate>, Vec<String>) {
    if !path.is_dir() {
        let name = path.file_name().map_or_else(|| path.to_string_lossy(), |n| n.to_string_lossy());
        return (vec![(path.to_path_buf(), name.into_owned())], Vec::new());
    }
    match cfg {
        Some(cfg) => clipping_files(path, cfg),
        None => clipping_files(path, &Config::built_in()),
    }
}

/// Prints a verdict per file; returns how many were accepted and how many rejected.
fn judge(files: &[Candidate], cfg: Option<&Config>, verbose: bool, out: &mut impl Write) -> Result<(usize, usize)> {
    let limits = Limits { max_file_bytes: cfg.map_or(Limits::default().max_file_bytes, |c| c.max_file_bytes) };
    let topics = cfg.map(|c| c.topics.clone()).unwrap_or_default();
    let (mut good, mut bad) = (0usize, 0usize);
    let mut notes: Vec<(&str, clip::KeyNote)> = Vec::new();
    for (path, rel) in files {
        let verdict = match read_clipping(path, limits) {
            Ok((_, Ok(bytes))) => clip::parse_file(&bytes, rel, limits).map_err(|e| e.to_string()),
            Ok((_, Err(too_large))) => Err(too_large.to_string()),
            Err(e) => Err(format!("cannot read: {e}")),
        };
        match verdict {
            Ok(parsed) => {
                good += 1;
                let c = &parsed.clipping;
                // The topics the item would be in: names, aliases, keywords and topic filters applied.
                let source = item::Source { rel_path: rel, clipping: c };
                let merged = item::merge(&[source], chrono::Utc::now(), &topics);
                let slugs: Vec<String> =
                    merged.map(|m| m.topics.into_iter().map(|t| t.slug).collect()).unwrap_or_default();
                let provider = c.provider.as_ref().and_then(|p| p.domain.as_deref()).unwrap_or("-");
                writeln!(
                    out,
                    "ok        {}  id={} topics={} provider={}",
                    path.display(),
                    item::id_for(&item::key_for(c, rel)),
                    if slugs.is_empty() { "-".to_string() } else { slugs.join(",") },
                    provider
                )?;
                if verbose {
                    for w in &parsed.warnings {
                        writeln!(out, "          warning: {w}")?;
                    }
                }
                notes.extend(parsed.key_notes.into_iter().map(|n| (rel.as_str(), n)));
            }
            Err(reason) => {
                bad += 1;
                writeln!(out, "rejected  {}: {reason}", path.display())?;
            }
        }
    }
    // Keys spelt close to known ones: once per key, with the number of files and an example.
    for w in clip::summarise_key_notes(notes.iter().map(|(rel, n)| (*rel, n))) {
        writeln!(out, "warning   {w}")?;
    }
    Ok((good, bad))
}

/// A root must be a folder this process can list (`ingest::root_state` judges). The daemon
/// waits for a missing root; a check reports it, since a mistyped folder would otherwise leave
/// every feed empty.
fn check_root(root: &Path) -> Result<(), String> {
    root_state(root).problem().map_or(Ok(()), Err)
}

/// Checks the store's place and schema; prints one line and returns the number of errors (0 or 1).
fn check_store(path: &Path, out: &mut impl Write) -> Result<usize> {
    let shown = path.display();
    let verdict = match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err("is a folder, not a file".to_string()),
        Ok(_) => match store::recorded_schema(path) {
            Err(e) => Err(format!("cannot be read as a clipfeed store: {e:#}")),
            Ok(None) => Ok("ok (no schema yet; set up at the next start)".to_string()),
            Ok(Some(v)) if v > store::SCHEMA_VERSION => Err(format!(
                "written by a newer clipfeed (schema version {v}; this one understands up to {}): the daemon refuses it; run the newer clipfeed, or delete the store to rebuild it from the clippings",
                store::SCHEMA_VERSION
            )),
            Ok(Some(v)) if v < store::SCHEMA_VERSION => {
                Ok(format!("ok (schema version {v}, brought up to {} at the next start)", store::SCHEMA_VERSION))
            }
            Ok(Some(v)) => Ok(format!("ok (schema version {v})")),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match nearest_existing(path) {
            Some(dir) if dir.is_dir() => Ok(format!("ok (created at the first start, under {})", dir.display())),
            Some(other) => Err(format!("cannot be created: {} is not a folder", other.display())),
            None => Err("cannot be created: no existing folder above it".to_string()),
        },
        Err(e) => Err(format!("cannot be read: {e}")),
    };
    match verdict {
        Ok(note) => {
            let access = writable_note(path);
            writeln!(out, "store     {shown}: {note}{access}")?;
            Ok(0)
        }
        Err(problem) => {
            writeln!(out, "error     store {shown}: {problem}")?;
            Ok(1)
        }
    }
}

/// The closest ancestor of `path` that exists.
fn nearest_existing(path: &Path) -> Option<PathBuf> {
    path.ancestors().skip(1).find(|a| !a.as_os_str().is_empty() && a.symlink_metadata().is_ok()).map(Path::to_path_buf)
}

/// A note when this process could not write the store (or create it): the daemon's user may
/// differ, so it is said, not counted as an error.
fn writable_note(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let target = if path.exists() { Some(path.to_path_buf()) } else { nearest_existing(path) };
    let Some(target) = target else { return String::new() };
    let Ok(c) = std::ffi::CString::new(target.as_os_str().as_bytes()) else { return String::new() };
    // SAFETY: access(2) only reads the NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0 {
        String::new()
    } else {
        format!("; note: {} is not writable by this user, the daemon's user must be able to write it", target.display())
    }
}
