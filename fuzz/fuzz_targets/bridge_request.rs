//! A legacy-bridge request: content type, gRPC framing and JSON through the descriptors.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald::fuzzing::bridge_request(data));
