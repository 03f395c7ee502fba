//! Bytes → the HTTP fast path's reading of a request head (`clipfeed::check_fast_head`): it either
//! leaves the bytes to hyper or takes a head that hyper reads exactly as it does (method, target,
//! version, fields, length), with nothing in it that hyper acts on. Any panic is a crash.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    clipfeed::check_fast_head(data);
});
