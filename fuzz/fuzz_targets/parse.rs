//! Bytes → the clipping parser; every accepted clipping is rendered into each feed it belongs to,
//! in RSS, Atom and JSON Feed, and read back (`tests/it/oracle.rs` says what is checked). Any
//! panic, in the parser or in a check, is a crash.
#![no_main]

// Each target uses part of the shared checks.
#[allow(dead_code)]
#[path = "../../tests/it/oracle.rs"]
mod oracle;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    oracle::check_file(data);
});
