//! Per-message compression (gRPC's `grpc-encoding`).
//!
//! herald servers always *accept* gzip-compressed requests (decompressed within the same
//! message-size limit as any other, so a small compressed message cannot expand past it).
//! Whether they *send* compressed responses is a choice: [`Server::builder().compression`]
//! turns it on; a server then compresses a response when its caller said it accepts the
//! encoding, and a handler can opt one response out with
//! [`Context::set_response_compression`](crate::Context::set_response_compression).
//!
//! A channel says it accepts compressed responses only when told to, as tonic's and grpc-go's
//! clients do: [`Channel::builder(..).compression`] compresses requests and accepts compressed
//! responses, [`accept_compressed`] accepts them alone.
//!
//! [`Server::builder().compression`]: crate::server::Builder::compression
//! [`Channel::builder(..).compression`]: crate::client::Builder::compression
//! [`accept_compressed`]: crate::client::Builder::accept_compressed

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

/// What every herald server accepts.
pub(crate) const ACCEPTED: CompressionEncoding = CompressionEncoding::Gzip;
