//! The written rules of ARCHITECTURE.md checked by reading the source, so the document cannot
//! drift from the code silently: only the store speaks SQL, only `http` knows axum and hyper,
//! only the scanner opens clipping files (and walks folders), no module is public beyond the
//! exports of `lib.rs`, no source file is over 600 lines outside its tests, and the code map
//! names every module file. Only the part of each file before its `#[cfg(test)]` module counts.

use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

/// A source file: its path relative to `src/`, and its lines before the test module.
struct Source {
    rel: String,
    code: Vec<String>,
}

fn sources() -> Vec<Source> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src.clone()];
    let mut out = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let lines: Vec<String> = text.lines().map(String::from).collect();
                let end = (0..lines.len())
                    .find(|&i| {
                        lines[i].trim() == "#[cfg(test)]" && lines.get(i + 1).is_some_and(|l| l.contains("mod tests"))
                    })
                    .unwrap_or(lines.len());
                let rel = path.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
                out.push(Source { rel, code: lines[..end].to_vec() });
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    assert!(out.len() > 20, "the sources were found");
    out
}

/// The code lines (comments left out) of `src` that contain any of `needles`, as `file:line: text`.
fn uses(src: &Source, needles: &[&str]) -> Vec<String> {
    src.code
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .filter(|(_, l)| needles.iter().any(|n| l.contains(n)))
        .map(|(i, l)| format!("{}:{}: {}", src.rel, i + 1, l.trim()))
        .collect()
}

/// Every use of `needles` outside the files `allowed` (a path, or a folder ending in `/`).
fn outside(needles: &[&str], allowed: &[&str]) -> Vec<String> {
    sources()
        .iter()
        .filter(|s| !allowed.iter().any(|a| if a.ends_with('/') { s.rel.starts_with(a) } else { s.rel == *a }))
        .flat_map(|s| uses(s, needles))
        .collect()
}

#[test]
fn only_the_store_speaks_sql() {
    let sql = [
        "rusqlite",
        "SELECT ",
        "INSERT INTO",
        "INSERT OR",
        "DELETE FROM",
        "CREATE TABLE",
        "CREATE INDEX",
        "PRAGMA ",
        " SET ",
    ];
    let found = outside(&sql, &["store/"]);
    assert!(found.is_empty(), "SQL outside src/store/:\n{}", found.join("\n"));
    // And the store does speak it, so the needles are the right ones.
    assert!(sources().iter().filter(|s| s.rel.starts_with("store/")).any(|s| !uses(s, &["SELECT "]).is_empty()));
}

#[test]
fn only_http_knows_axum_and_hyper() {
    let found = outside(&["axum", "tower_service"], &["http.rs", "http/"]);
    assert!(found.is_empty(), "axum outside src/http:\n{}", found.join("\n"));
    // hyper serves in `http`, and is the client of the WebSub hub's outbound requests.
    let found = outside(&["hyper", "http_body"], &["http.rs", "http/", "websub/"]);
    assert!(found.is_empty(), "hyper outside src/http and the hub:\n{}", found.join("\n"));
}

#[test]
fn only_the_scanner_opens_clippings() {
    // Whatever opens a file to read it, or walks a folder. The other reads are named with what
    // they read, and none of them is a clipping.
    let open = ["File::open", "OpenOptions", "fs::read(", "fs::read_to_string(", "read_to_string(path", "walkdir"];
    let allowed = [
        "ingest/scan.rs",   // clipping files: the scanner
        "config/mod.rs",    // the configuration file (Config::load)
        "ingest/tokens.rs", // /dev/urandom, for tokens
        "websub/client.rs", // websub.ca_file: the operator's extra CA certificates
        "store/health.rs",  // the full-disk test hook's page limit (CLIPFEED_TEST_STORE_PAGES)
        "export/tree.rs",   // the export folder: its manifest and the files clipfeed writes there
        "process.rs",       // /proc/self and /proc/stat, for the process_* metrics
    ];
    let found = outside(&open, &allowed);
    assert!(found.is_empty(), "files opened outside the scanner:\n{}", found.join("\n"));
    let scan = sources().into_iter().find(|s| s.rel == "ingest/scan.rs").expect("the scanner");
    assert!(!uses(&scan, &["OpenOptions"]).is_empty() && !uses(&scan, &["walkdir"]).is_empty());
    let config = sources().into_iter().find(|s| s.rel == "config/mod.rs").expect("config");
    assert_eq!(uses(&config, &open).len(), 1, "config reads its own file once: {:?}", uses(&config, &open));
}

#[test]
fn modules_are_private_and_lib_exports_only_its_surface() {
    let found = outside(&["pub mod "], &["lib.rs"]);
    assert!(found.is_empty(), "public modules:\n{}", found.join("\n"));
    // lib.rs may group exports in a named facade (`pub mod stories { pub use … }`), never expose a
    // module of the crate itself.
    let lib = sources().into_iter().find(|s| s.rel == "lib.rs").unwrap();
    for line in lib.code.iter().filter(|l| l.contains("pub mod ")) {
        assert!(line.trim_end().ends_with('{'), "lib.rs exposes a module file: {line}");
    }
    // Items are exported only from lib.rs, by name: nothing re-exports a whole module.
    let lib = sources().into_iter().find(|s| s.rel == "lib.rs").unwrap();
    let exports = uses(&lib, &["pub use"]);
    assert!(!exports.is_empty());
    for line in &exports {
        assert!(!line.contains("::*"), "a glob export: {line}");
    }
    let roots: Vec<&String> = lib.code.iter().filter(|l| l.starts_with("mod ")).collect();
    assert!(roots.len() > 15, "lib.rs declares the modules privately");
}

#[test]
fn no_source_file_is_over_the_limit() {
    let over: Vec<String> = sources()
        .iter()
        .filter(|s| s.code.len() > MAX_LINES)
        .map(|s| format!("src/{}: {} lines outside its tests", s.rel, s.code.len()))
        .collect();
    assert!(over.is_empty(), "over {MAX_LINES} lines:\n{}", over.join("\n"));
}

#[test]
fn the_code_map_names_every_module_file() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md")).unwrap();
    let missing: Vec<String> = sources()
        .iter()
        .map(|s| s.rel.trim_end_matches(".rs").trim_end_matches("/mod").to_string())
        .filter(|m| m != "lib" && m != "main")
        // Files that are wholly tests belong to the module they test.
        .filter(|m| !(m.ends_with("tests") || m.ends_with("_props") || m.contains("/tests/")))
        .filter(|m| !doc.contains(&format!("`{m}`")))
        .collect();
    assert!(missing.is_empty(), "ARCHITECTURE.md's code map does not name: {}", missing.join(", "));
}
