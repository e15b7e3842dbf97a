//! Per-message compression (gRPC's `grpc-encoding`).
//!
//! herald servers and clients always *accept* gzip-compressed messages (decompressed within the
//! same message-size limit as any other, so a small compressed message cannot expand past it).
//! Whether they *send* compressed messages is a choice: [`Server::builder().compression`]
//! and [`Channel::builder(..).compression`] turn it on; a server then compresses a response
//! when its caller said it accepts the encoding, and a handler can opt one response out with
//! [`Context::set_response_compression`](crate::Context::set_response_compression).
//!
//! [`Server::builder().compression`]: crate::server::Builder::compression
//! [`Channel::builder(..).compression`]: crate::client::Builder::compression

use tonic::codec::CompressionEncoding;

/// A message compression algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// gzip, the one every gRPC implementation supports.
    Gzip,
}

// === impl Compression ===

impl Compression {
    pub(crate) fn encoding(self) -> CompressionEncoding {
        match self {
            Compression::Gzip => CompressionEncoding::Gzip,
        }
    }
}

/// What every herald endpoint accepts.
pub(crate) const ACCEPTED: CompressionEncoding = CompressionEncoding::Gzip;
