//! Which per-call header names a connection has let HPACK index.
//!
//! Every call sends `x-request-id`, `grpc-timeout` and, when tracing, `traceparent`, each
//! with a value of its own; so they go out never-indexed (their `HeaderValue`s are marked
//! sensitive): indexing them would push an entry through both ends' header tables on every
//! call, evicting the entries that do repeat. (The exception: a method's own deadline on a
//! call's first attempt, which repeats and goes out indexable; see
//! `timeout::repeating_header_value`.) But h2 names a never-indexed header by its
//! table index only when the name is already in its dynamic table; otherwise it spells the
//! name out, and the server Huffman-decodes and allocates it on every call (about 0.1 µs of
//! a small call's server time, measured).
//!
//! So the first request on a connection that carries one of these headers sends it
//! indexable: its name enters both tables, and the requests after name it by index and send
//! only the value. Once per name per connection: each indexable request adds an entry that
//! h2's encoder then compares on every later request with the same name. The entries stay
//! while nothing churns the tables; should they be evicted (many distinct values of some
//! other indexed header), the names are spelled out again, which costs time, not
//! correctness.

use std::sync::atomic::{AtomicU8, Ordering};

use http::{HeaderMap, HeaderName};

use crate::header_names::{GRPC_TIMEOUT, REQUEST_ID, TRACEPARENT};

/// The per-call headers, by bit of [`IndexedNames`].
static PER_CALL: [&HeaderName; 3] = [&REQUEST_ID, &GRPC_TIMEOUT, &TRACEPARENT];

/// Every bit of [`PER_CALL`].
const ALL: u8 = (1 << PER_CALL.len()) - 1;

/// `traceparent`'s bit.
const TRACEPARENT_BIT: u8 = 1 << 2;

/// The per-call header names one connection has sent indexable (bit `i`: `PER_CALL[i]`).
#[derive(Debug, Default)]
pub(crate) struct IndexedNames(AtomicU8);

// === impl IndexedNames ===

impl IndexedNames {
    /// A new connection: new tables, no name sent yet.
    pub(crate) fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// Lets HPACK index those of `headers`' per-call headers whose name this connection has
    /// not sent yet; whether there were any (then `never_index` undoes it, should the request
    /// go out on another connection after all).
    pub(crate) fn claim(&self, headers: &mut HeaderMap) -> bool {
        // Without tracing no call carries `traceparent`: looking for it would be a failed
        // lookup on every call, its bit never set.
        let wanted = if crate::observe::trace::installed() {
            ALL
        } else {
            ALL & !TRACEPARENT_BIT
        };
        self.claim_among(headers, wanted)
    }

    /// [`claim`](Self::claim) for the names whose bits are in `wanted`.
    fn claim_among(&self, headers: &mut HeaderMap, wanted: u8) -> bool {
        let sent = self.0.load(Ordering::Relaxed);
        if sent & wanted == wanted {
            return false;
        }
        let mut claimed = false;
        for (i, name) in PER_CALL.iter().enumerate() {
            let bit = 1 << i;
            if sent & bit != 0 || wanted & bit == 0 {
                continue;
            }
            if let Some(value) = headers.get_mut(*name)
                && self.0.fetch_or(bit, Ordering::Relaxed) & bit == 0
            {
                value.set_sensitive(false);
                claimed = true;
            }
        }
        claimed
    }
}

/// Marks the per-call headers of `headers` never-indexed again.
pub(crate) fn never_index(headers: &mut HeaderMap) {
    for name in PER_CALL {
        if let Some(value) = headers.get_mut(name) {
            value.set_sensitive(true);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use http::HeaderValue;
    use tokio::io::AsyncReadExt;

    fn per_call_headers(names: &[&HeaderName]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for name in names {
            let mut value = HeaderValue::from_static("v");
            value.set_sensitive(true);
            headers.insert((*name).clone(), value);
        }
        headers
    }

    fn indexable(headers: &HeaderMap) -> Vec<&str> {
        headers
            .iter()
            .filter(|(_, value)| !value.is_sensitive())
            .map(|(name, _)| name.as_str())
            .collect()
    }

    #[test]
    fn each_name_goes_out_indexable_once_per_connection_and_only_when_present() {
        let names = IndexedNames::default();
        // A first request without grpc-timeout (a method with no deadline) leaves that
        // name to the first request that has it.
        let mut first = per_call_headers(&[&REQUEST_ID]);
        assert!(names.claim_among(&mut first, ALL));
        assert_eq!(indexable(&first), ["x-request-id"]);
        let mut second = per_call_headers(&[&REQUEST_ID, &GRPC_TIMEOUT]);
        assert!(names.claim_among(&mut second, ALL));
        assert_eq!(indexable(&second), ["grpc-timeout"]);
        for _ in 0..3 {
            let mut later = per_call_headers(&PER_CALL);
            names.claim_among(&mut later, ALL);
            assert!(indexable(&later).len() <= 1, "traceparent at most, once");
        }
        let mut last = per_call_headers(&PER_CALL);
        assert!(!names.claim_among(&mut last, ALL));
        assert!(indexable(&last).is_empty());
        // A new connection has new tables.
        names.reset();
        let mut again = per_call_headers(&PER_CALL);
        assert!(names.claim_among(&mut again, ALL));
        assert_eq!(indexable(&again).len(), 3);
        never_index(&mut again);
        assert!(indexable(&again).is_empty());
    }

    #[test]
    fn without_tracing_traceparent_is_not_looked_for_and_the_rest_finish_the_claim() {
        let names = IndexedNames::default();
        let wanted = ALL & !TRACEPARENT_BIT;
        let mut first = per_call_headers(&PER_CALL);
        assert!(names.claim_among(&mut first, wanted));
        assert_eq!(indexable(&first), ["x-request-id", "grpc-timeout"]);
        // Both wanted names sent: nothing more is looked up, whatever the request carries.
        let mut later = per_call_headers(&PER_CALL);
        assert!(!names.claim_among(&mut later, wanted));
        assert!(indexable(&later).is_empty());
        // Tracing installed later: traceparent's name is still to be sent once.
        let mut traced = per_call_headers(&PER_CALL);
        assert!(names.claim_among(&mut traced, ALL));
        assert_eq!(indexable(&traced), ["traceparent"]);
    }

    /// The HEADERS blocks of `requests` as h2 encodes them on one fresh connection, read off
    /// the wire; `claim` decides per request whether `IndexedNames` runs on it.
    async fn header_blocks(requests: &[(&str, bool)]) -> Vec<usize> {
        let names = IndexedNames::default();
        let headers = requests.iter().map(|(id, claim)| {
            let mut headers = HeaderMap::new();
            for (name, value) in [(&REQUEST_ID, *id), (&GRPC_TIMEOUT, "99999u")] {
                let mut value = HeaderValue::from_str(value).expect("value");
                value.set_sensitive(true);
                headers.insert(name.clone(), value);
            }
            if *claim {
                names.claim(&mut headers);
            }
            headers
        });
        blocks_on_the_wire(headers.collect()).await
    }

    /// The sizes of the HEADERS blocks h2 writes for requests with `headers`, in order, on one
    /// fresh connection.
    pub(crate) async fn blocks_on_the_wire(headers: Vec<HeaderMap>) -> Vec<usize> {
        let (io, mut peer) = tokio::io::duplex(1 << 16);
        let (mut sender, connection) =
            hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .handshake::<_, tonic::body::Body>(hyper_util::rt::TokioIo::new(io))
                .await
                .expect("the client side of a handshake needs no answer");
        tokio::spawn(connection);
        let count = headers.len();
        for headers in headers {
            let mut request = http::Request::post("http://peer/s.S/M")
                .body(tonic::body::Body::empty())
                .expect("request");
            *request.headers_mut() = headers;
            // Never answered: only what goes out is read.
            tokio::spawn(sender.send_request(request));
        }
        // The client preface, then frames: 3 bytes of length, a type (1: HEADERS), flags
        // and a stream id.
        let mut preface = [0u8; 24];
        peer.read_exact(&mut preface).await.expect("preface");
        let mut blocks = Vec::new();
        while blocks.len() < count {
            let mut head = [0u8; 9];
            peer.read_exact(&mut head).await.expect("frame");
            let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let mut payload = vec![0u8; len];
            peer.read_exact(&mut payload).await.expect("payload");
            if head[3] == 1 {
                blocks.push(len);
            }
        }
        blocks
    }

    /// What the module relies on h2 for: after one indexable request, a never-indexed header
    /// with the same name goes out with the name by index — not spelled out.
    #[tokio::test]
    async fn after_one_indexable_request_h2_names_the_never_indexed_headers_by_index() {
        let ids = [
            "0123456789abcdef0123456789abcdef",
            "fedcba9876543210fedcba9876543210",
        ];
        let claimed = header_blocks(&[(ids[0], true), (ids[1], true)]).await;
        let never = header_blocks(&[(ids[0], false), (ids[1], false)]).await;
        // Each of the two names spelled out is about 10 bytes (Huffman-coded, with its
        // length); by index, 2.
        assert!(
            never[1] >= claimed[1] + 12,
            "second request's headers: {} bytes after an indexable request, {} without",
            claimed[1],
            never[1]
        );
    }
}
