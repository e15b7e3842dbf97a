//! The admin endpoint's paths.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::admin::state::AdminState;
use crate::admin::{pages, profile};

/// The answer to one admin request.
pub(crate) type Reply = Response<Full<Bytes>>;

pub(crate) async fn handle(state: &AdminState, request: http::Request<Incoming>) -> Reply {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    match (request.method().clone(), path.as_str()) {
        (Method::GET, "/") => pages::index(),
        (Method::GET, "/metrics") => pages::metrics(state),
        (Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (Method::GET, "/readyz") => pages::readyz(state),
        (Method::GET, "/info") => pages::info(state),
        (Method::GET, "/config") => pages::config(state),
        (Method::GET, "/logging") => pages::logging(state),
        (Method::PUT | Method::POST, "/logging") => {
            let body = match request.into_body().collect().await {
                Ok(body) => body.to_bytes(),
                Err(error) => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        &format!("cannot read the body: {error}\n"),
                    );
                }
            };
            pages::set_logging(state, &query, &body)
        }
        (Method::GET, "/connections") => pages::connections(state),
        (Method::GET, "/certs") => pages::certs(state),
        (Method::GET, "/deps") => pages::deps(state),
        (Method::GET, "/debug/pprof/profile") => profile::cpu(&query).await,
        (Method::GET, "/debug/heap") => profile::heap(),
        (_, known) if pages::PATHS.iter().any(|(p, _)| *p == known) => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text(StatusCode::NOT_FOUND, "no such admin page; see /\n"),
    }
}

pub(crate) fn text(status: StatusCode, body: &str) -> Reply {
    respond(
        status,
        "text/plain; charset=utf-8",
        Bytes::from(body.to_owned()),
    )
}

pub(crate) fn json(value: &serde_json::Value) -> Reply {
    let body = serde_json::to_vec_pretty(value).unwrap_or_default();
    respond(StatusCode::OK, "application/json", Bytes::from(body))
}

pub(crate) fn respond(status: StatusCode, content_type: &str, body: Bytes) -> Reply {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, value);
    }
    response
}

/// A query parameter's value, percent-decoded.
pub(crate) fn param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
