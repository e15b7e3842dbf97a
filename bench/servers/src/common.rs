//! What the echo servers share: flags, and the fixed service time of the overload scenario.

use std::time::{Duration, Instant};

/// The value after `--name` on the command line, parsed; `default` when absent.
pub fn flag<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    let flag = format!("--{name}");
    match std::env::args().skip_while(|a| *a != flag).nth(1) {
        None => Ok(default),
        Some(value) => value
            .parse()
            .map_err(|_| format!("{flag}: cannot parse {value:?}")),
    }
}

/// Burns `micros` of CPU: a handler with a fixed service time, so that a server pinned to one
/// core has a known capacity (about 1,000,000 / micros calls per second).
pub fn work(micros: u64) {
    if micros == 0 {
        return;
    }
    let until = Instant::now() + Duration::from_micros(micros);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}
