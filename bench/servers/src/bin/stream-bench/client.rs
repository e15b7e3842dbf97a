//! The client: bare HTTP/2 (h2) over TCP or tokio-rustls, so that it costs as little per byte
//! as a client can — no protobuf decoding, no copies, one pass over each DATA frame to find
//! the gRPC message boundaries. It advertises the flow-control windows of hyper's client (what
//! herald's and tonic's clients use).

use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use h2::client::SendRequest;
use http::{HeaderMap, Request, StatusCode};
use prost::Message;
use rustls::crypto::CryptoProvider;
use rustls::crypto::ring::{cipher_suite, kx_group};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;

use crate::BoxError;
use crate::herald_pb::StreamRequest;

/// hyper's client defaults (`hyper::proto::h2::client`), which herald's and tonic's clients
/// keep.
pub(crate) const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
pub(crate) const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;
pub(crate) const MAX_FRAME: u32 = 16 * 1024;

const PATH: &str = "/bench.Echo/Stream";

/// An open HTTP/2 connection.
pub(crate) struct Connection {
    send: SendRequest<Bytes>,
    authority: String,
    scheme: &'static str,
    /// Protocol, cipher suite and key exchange, when over TLS.
    pub(crate) negotiated: Option<String>,
}

/// What one stream asks for and how the client judges its messages.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ask {
    pub(crate) message_size: u32,
    pub(crate) duration_ms: u64,
    /// Sent as `grpc-timeout`.
    pub(crate) timeout_ms: u64,
}

/// A stream's messages, counted as they complete.
#[derive(Debug, Default)]
pub(crate) struct Counted {
    /// Messages completed inside the window.
    pub(crate) in_window: u64,
    /// Every message of the stream.
    pub(crate) total: u64,
}

/// Finds the gRPC messages in a stream's DATA, checking each one's size.
#[derive(Debug)]
struct Frames {
    /// The encoded size every message must have.
    expected: usize,
    header: [u8; 5],
    header_len: usize,
    /// Bytes of the current message still to come; 0 between messages.
    body_left: usize,
}

// === impl Connection ===

impl Connection {
    /// Connects to the server at `port` on loopback: TLS with `tls` (server name
    /// `localhost`), or plaintext without.
    pub(crate) async fn open(
        port: u16,
        tls: Option<&Arc<ClientConfig>>,
    ) -> Result<Connection, BoxError> {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        tcp.set_nodelay(true)?;
        let mut http2 = h2::client::Builder::new();
        http2
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_frame_size(MAX_FRAME)
            .enable_push(false);
        let Some(tls) = tls else {
            let (send, connection) = http2.handshake(tcp).await?;
            tokio::spawn(async move {
                let _ = connection.await; // its errors reach the streams
            });
            return Ok(Connection {
                send,
                authority: format!("127.0.0.1:{port}"),
                scheme: "http",
                negotiated: None,
            });
        };
        let tls = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(ServerName::try_from("localhost")?, tcp)
            .await?;
        let negotiated = describe(tls.get_ref().1)?;
        let (send, connection) = http2.handshake(tls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection {
            send,
            authority: "localhost".into(),
            scheme: "https",
            negotiated: Some(negotiated),
        })
    }

    /// Calls `bench.Echo/Stream` and reads the stream to its end, counting the messages that
    /// complete within `window`. Checks every message's size and that the call ends with
    /// grpc-status 0.
    pub(crate) async fn stream(
        &self,
        ask: Ask,
        window: (Instant, Instant),
    ) -> Result<Counted, BoxError> {
        let request = Request::post(format!("{}://{}{PATH}", self.scheme, self.authority))
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .header("grpc-timeout", format!("{}m", ask.timeout_ms))
            .body(())?;
        let mut send = self.send.clone().ready().await?;
        let (response, mut body_out) = send.send_request(request, false)?;
        body_out.send_data(grpc_frame(&ask), true)?;
        let response = response.await?;
        let (head, mut body) = response.into_parts();
        if head.status != StatusCode::OK {
            return Err(format!("HTTP status {}", head.status).into());
        }
        let mut frames = Frames::new(ask.message_size);
        let mut counted = Counted::default();
        while let Some(data) = body.data().await {
            let data = data?;
            body.flow_control().release_capacity(data.len())?;
            let now = Instant::now();
            let completed = frames.feed(&data)?;
            counted.total += completed;
            if window.0 <= now && now < window.1 {
                counted.in_window += completed;
            }
        }
        // A call that fails at once sends its status in the headers (trailers-only).
        let trailers = body.trailers().await?.unwrap_or(head.headers);
        check_status(&trailers)?;
        if frames.body_left != 0 || frames.header_len != 0 {
            return Err("the stream ended inside a message".into());
        }
        Ok(counted)
    }
}

/// TLS 1.3 only, with herald's client's preferences (AES-128-GCM first, X25519): the client,
/// not the server, picks the suite. The server is checked against the dev CA as
/// `localhost`; the client presents its own certificate.
pub(crate) fn tls_config(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<Arc<ClientConfig>, BoxError> {
    let provider = CryptoProvider {
        cipher_suites: vec![
            cipher_suite::TLS13_AES_128_GCM_SHA256,
            cipher_suite::TLS13_AES_256_GCM_SHA384,
            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        ],
        kx_groups: vec![kx_group::X25519, kx_group::SECP256R1],
        ..rustls::crypto::ring::default_provider()
    };
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes())?)?;
    let chain = vec![CertificateDer::from_pem_slice(cert_pem.as_bytes())?];
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

fn describe(session: &rustls::ClientConnection) -> Result<String, BoxError> {
    Ok(format!(
        "{:?}, {:?}, {:?}",
        session.protocol_version().ok_or("no TLS version")?,
        session
            .negotiated_cipher_suite()
            .ok_or("no cipher suite")?
            .suite(),
        session
            .negotiated_key_exchange_group()
            .ok_or("no key exchange")?
            .name(),
    ))
}

/// The request: one uncompressed gRPC message.
fn grpc_frame(ask: &Ask) -> Bytes {
    let message = StreamRequest {
        message_size: ask.message_size,
        count: 0,
        duration_ms: ask.duration_ms,
    }
    .encode_to_vec();
    let mut frame = BytesMut::with_capacity(5 + message.len());
    frame.put_u8(0);
    frame.put_u32(message.len() as u32);
    frame.put_slice(&message);
    frame.freeze()
}

fn check_status(trailers: &HeaderMap) -> Result<(), BoxError> {
    let text = |name: &str| trailers.get(name).and_then(|v| v.to_str().ok());
    match text("grpc-status") {
        Some("0") => Ok(()),
        Some(code) => Err(format!(
            "grpc-status {code}: {}",
            text("grpc-message").unwrap_or("(no message)")
        )
        .into()),
        None => Err("no grpc-status at the end of the stream".into()),
    }
}

// === impl Frames ===

impl Frames {
    fn new(message_size: u32) -> Frames {
        // `bench.Msg`: field 1's tag, the payload's length as a varint, the payload.
        let payload = message_size as usize;
        Frames {
            expected: 1 + prost::encoding::encoded_len_varint(payload as u64) + payload,
            header: [0; 5],
            header_len: 0,
            body_left: 0,
        }
    }

    /// Takes the next DATA bytes; returns how many messages they completed.
    fn feed(&mut self, mut data: &[u8]) -> Result<u64, String> {
        let mut completed = 0;
        while !data.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(data.len());
                self.body_left -= n;
                data = &data[n..];
                completed += u64::from(self.body_left == 0);
                continue;
            }
            let n = (5 - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
            self.header_len += n;
            data = &data[n..];
            if self.header_len == 5 {
                self.header_len = 0;
                let [flag, length @ ..] = self.header;
                let length = u32::from_be_bytes(length) as usize;
                if flag != 0 {
                    return Err("a compressed message (none was asked for)".into());
                }
                if length != self.expected {
                    return Err(format!(
                        "a message of {length} bytes, not {} as asked",
                        self.expected
                    ));
                }
                self.body_left = length;
            }
        }
        Ok(completed)
    }
}

#[cfg(test)]
mod tests {
    use super::Frames;

    #[test]
    fn messages_split_anywhere_are_counted_once() {
        let mut frames = Frames::new(3);
        let message = [0, 0, 0, 0, 5, 0x0a, 3, b'x', b'x', b'x'];
        let stream: Vec<u8> = message.iter().chain(&message).copied().collect();
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(frames.feed(a).unwrap() + frames.feed(b).unwrap(), 2);
            assert_eq!((frames.header_len, frames.body_left), (0, 0));
        }
    }

    #[test]
    fn a_message_of_another_size_is_refused() {
        let mut frames = Frames::new(4);
        assert!(frames.feed(&[0, 0, 0, 0, 5]).is_err());
    }
}
