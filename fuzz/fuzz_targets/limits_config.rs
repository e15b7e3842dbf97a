//! A limits file (YAML text): parsed, compiled against a server's methods, applied.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| herald::fuzzing::limits_config(data));
