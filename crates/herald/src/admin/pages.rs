//! The admin pages that read the server's state.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

use crate::admin::routes::{Reply, json, param, respond, text};
use crate::admin::state::AdminState;
use crate::observe::deps;
use crate::observe::server_metrics::caller_label;

/// Every page, with what it shows (the index links them).
pub(crate) const PATHS: [(&str, &str); 11] = [
    ("/metrics", "Prometheus metrics (text exposition format)"),
    ("/healthz", "liveness: 200 while the process runs"),
    ("/readyz", "readiness: 503 once draining"),
    (
        "/info",
        "version, git hash, build time, command line, pid, uptime, identity",
    ),
    (
        "/config",
        "effective limits per method, and the last reload error",
    ),
    (
        "/logging",
        "the log filter; PUT ?filter=... (or the body) to change it",
    ),
    (
        "/connections",
        "open connections: peer, identity, requests, bytes, since",
    ),
    ("/certs", "certificates in use: subject, SANs, validity"),
    ("/deps", "callers (by identity) and callees of this service"),
    (
        "/debug/pprof/profile?seconds=5",
        "CPU profile (pprof protobuf; &format=svg for a flame graph)",
    ),
    ("/debug/heap", "allocator statistics (jemalloc)"),
];

pub(crate) fn index() -> Reply {
    let links: String = PATHS
        .iter()
        .map(|(path, what)| format!("<li><a href=\"{path}\">{path}</a> — {what}</li>\n"))
        .collect();
    let html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>herald admin</title></head>\n\
         <body><h1>herald admin</h1>\n<ul>\n{links}</ul></body></html>\n"
    );
    respond(
        StatusCode::OK,
        "text/html; charset=utf-8",
        Bytes::from(html),
    )
}

pub(crate) fn metrics(state: &AdminState) -> Reply {
    let Ok(body) = crate::observe::encode_all(&state.registry) else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode the metrics\n",
        );
    };
    respond(
        StatusCode::OK,
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        Bytes::from(body),
    )
}

pub(crate) fn readyz(state: &AdminState) -> Reply {
    if state.health.is_draining() {
        text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else {
        text(StatusCode::OK, "ready\n")
    }
}

pub(crate) fn info(state: &AdminState) -> Reply {
    let started = state
        .started_at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    json(&json!({
        "version": env!("CARGO_PKG_VERSION"),
        "git_hash": option_env!("HERALD_GIT_HASH").unwrap_or("unknown"),
        "build_time": option_env!("HERALD_BUILD_TIME").unwrap_or("unknown"),
        "command_line": std::env::args().collect::<Vec<_>>(),
        "pid": std::process::id(),
        "started_unix": started,
        "uptime_seconds": state.started.elapsed().as_secs_f64(),
        "identity": state.tls.as_ref().map(|t| t.identity().to_string()),
        "trust_domain": state.tls.as_ref().map(|t| t.trust_domain().to_string()),
        "services": state.services,
        "draining": state.health.is_draining(),
    }))
}

pub(crate) fn config(state: &AdminState) -> Reply {
    let status = state.limits.status();
    let compiled = state.limits.current();
    let methods: serde_json::Map<String, serde_json::Value> = state
        .methods
        .iter()
        .map(|m| {
            (
                m.method.contract.full_name().to_owned(),
                compiled.methods[m.index].describe(),
            )
        })
        .collect();
    json(&json!({
        "limits_file": status.file.map(|f| f.display().to_string()),
        "reloads_applied": status.reloads,
        "reloads_refused": status.failures,
        "last_reload_error": status.last_error,
        "methods": methods,
    }))
}

pub(crate) fn logging(state: &AdminState) -> Reply {
    match &state.logging {
        Some(control) => json(&json!({ "filter": control.filter() })),
        None => text(
            StatusCode::NOT_FOUND,
            "this server was given no log control (Builder::log_control)\n",
        ),
    }
}

pub(crate) fn set_logging(state: &AdminState, query: &str, body: &[u8]) -> Reply {
    let Some(control) = &state.logging else {
        return text(
            StatusCode::NOT_FOUND,
            "this server was given no log control (Builder::log_control)\n",
        );
    };
    let filter =
        param(query, "filter").unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    if filter.is_empty() {
        return text(
            StatusCode::BAD_REQUEST,
            "give the new filter as ?filter=... or as the body\n",
        );
    }
    match control.set(&filter) {
        Ok(()) => {
            tracing::info!(%filter, "log filter changed from the admin endpoint");
            json(&json!({ "filter": control.filter() }))
        }
        Err(error) => text(StatusCode::BAD_REQUEST, &format!("{error}\n")),
    }
}

pub(crate) fn connections(state: &AdminState) -> Reply {
    let list: Vec<_> = state
        .connections
        .snapshot()
        .iter()
        .map(|c| {
            let since = c
                .since
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            json!({
                "id": c.id,
                "peer": c.peer.to_string(),
                "identity": c.identity.get().map(ToString::to_string),
                "since_unix": since,
                "requests": c.requests.load(Relaxed),
                "active_requests": c.active.load(Relaxed),
                "bytes_read": c.bytes_read.load(Relaxed),
                "bytes_written": c.bytes_written.load(Relaxed),
            })
        })
        .collect();
    json(&json!({ "connections": list }))
}

pub(crate) fn certs(state: &AdminState) -> Reply {
    match &state.tls {
        Some(tls) => json(&json!({ "certificates": tls.describe_certificates() })),
        None => json(&json!({ "certificates": [], "note": "plaintext server: no certificates" })),
    }
}

pub(crate) fn deps(state: &AdminState) -> Reply {
    let mut callers: std::collections::BTreeMap<
        String,
        serde_json::Map<String, serde_json::Value>,
    > = Default::default();
    for method in &state.methods {
        for (caller, calls) in method.metrics.callers() {
            let caller = caller_label(caller.as_ref()).to_owned();
            callers
                .entry(caller)
                .or_default()
                .insert(method.method.contract.full_name().to_owned(), json!(calls));
        }
    }
    let callees: Vec<_> = deps::callees_of(&state.services)
        .into_iter()
        .map(|(service, calls)| json!({ "service": service, "calls": calls }))
        .collect();
    json(&json!({
        "identity": state.tls.as_ref().map(|t| t.identity().to_string()),
        "serves": state.services,
        "callers": callers.into_iter().map(|(identity, methods)| json!({ "identity": identity, "methods": methods })).collect::<Vec<_>>(),
        "callees": callees,
    }))
}
