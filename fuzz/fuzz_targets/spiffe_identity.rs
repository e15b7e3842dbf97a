//! A SPIFFE ID (text), and a DER certificate carrying one.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald::fuzzing::spiffe_identity(data));
