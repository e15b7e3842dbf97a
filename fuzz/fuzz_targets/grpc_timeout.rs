//! A `grpc-timeout` value: parsed, and formatted back within the unit's precision.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald::fuzzing::grpc_timeout(data));
