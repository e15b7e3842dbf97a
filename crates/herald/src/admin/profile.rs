//! `/debug/pprof/profile`: a CPU profile of the whole process, and `/debug/heap`: what the
//! allocator holds.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

use crate::admin::pprof_proto;
use crate::admin::routes::{Reply, json, param, respond, text};

/// Samples per second: a prime, so sampling does not beat with periodic work.
const FREQUENCY: i32 = 99;
/// The longest profile asked for: the request holds a thread meanwhile.
const MAX_SECONDS: u64 = 60;

/// Profiles the process for `?seconds=N` (default 5), answering pprof protobuf, or a flame
/// graph with `&format=svg`.
pub(crate) async fn cpu(query: &str) -> Reply {
    let seconds = match param(query, "seconds").map(|s| s.parse::<u64>()) {
        None => 5,
        Some(Ok(n)) if (1..=MAX_SECONDS).contains(&n) => n,
        Some(_) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("seconds must be 1 to {MAX_SECONDS}\n"),
            );
        }
    };
    let svg = param(query, "format").as_deref() == Some("svg");
    let duration = Duration::from_secs(seconds);
    // The profiler is process-wide and not Send: it runs on a blocking thread of its own.
    let outcome = tokio::task::spawn_blocking(move || -> Result<(String, Vec<u8>), String> {
        let guard = pprof::ProfilerGuardBuilder::default()
            .frequency(FREQUENCY)
            .blocklist(&["libc", "libgcc", "pthread", "vdso"])
            .build()
            .map_err(|e| format!("cannot start the profiler (is another profile running?): {e}"))?;
        std::thread::sleep(duration);
        let report = guard
            .report()
            .build()
            .map_err(|e| format!("cannot build the profile: {e}"))?;
        if svg {
            let mut out = Vec::new();
            report
                .flamegraph(&mut out)
                .map_err(|e| format!("cannot draw the flame graph: {e}"))?;
            Ok(("image/svg+xml".to_owned(), out))
        } else {
            Ok((
                "application/octet-stream".to_owned(),
                pprof_proto::encode(&report, FREQUENCY, duration),
            ))
        }
    })
    .await;
    match outcome {
        Ok(Ok((content_type, body))) => respond(StatusCode::OK, &content_type, Bytes::from(body)),
        Ok(Err(error)) => text(StatusCode::CONFLICT, &format!("{error}\n")),
        Err(error) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("the profiler failed: {error}\n"),
        ),
    }
}

/// jemalloc's statistics; meaningful when the binary uses jemalloc as its allocator
/// (`#[global_allocator] static A: tikv_jemallocator::Jemalloc = ...;`).
pub(crate) fn heap() -> Reply {
    use tikv_jemalloc_ctl::{epoch, stats};
    if epoch::advance().is_err() {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot read jemalloc's statistics\n",
        );
    }
    let read = |r: tikv_jemalloc_ctl::Result<usize>| r.unwrap_or(0);
    let allocated = read(stats::allocated::read());
    json(&json!({
        "allocator": if allocated > 0 { "jemalloc" } else { "not jemalloc (these statistics stay at zero)" },
        "allocated_bytes": allocated,
        "active_bytes": read(stats::active::read()),
        "metadata_bytes": read(stats::metadata::read()),
        "resident_bytes": read(stats::resident::read()),
        "mapped_bytes": read(stats::mapped::read()),
        "retained_bytes": read(stats::retained::read()),
    }))
}
