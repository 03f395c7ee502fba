//! Bytes → the fast YAML reader and serde_yaml: wherever the fast reader accepts a document it
//! must give serde_yaml's value. The input is tried whole and, when it is a clipping file, as the
//! front matter the parser would hand the reader.
#![no_main]

// Each target uses part of the shared checks.
#[allow(dead_code)]
#[path = "../../tests/it/oracle.rs"]
mod oracle;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    oracle::check_yaml(text);
    if let Ok(Some((front, _))) = clipfeed::split_front_matter(text) {
        oracle::check_yaml(front);
    }
});
