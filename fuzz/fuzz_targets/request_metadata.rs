//! Request headers (`name: value` lines): the server's context read from them.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald::fuzzing::request_metadata(data));
