//! Calls that carry messages already encoded: for tools that hold descriptors or bytes rather
//! than generated types — `herald call` and `herald bench`, bridges, proxies.
//!
//! The method's contract still applies (deadline, breaker, retries), so a tool can build a
//! [`MethodContract`] for a method it learnt about at run time, e.g. by reflection, and leak it
//! for the life of the process.

use bytes::{Buf, BufMut, Bytes};
use futures_util::Stream;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::app_error::AppError;
use crate::client::channel::Channel;
use crate::client::response_stream::ResponseStream;
use crate::context::Context;
use crate::contract::MethodContract;
use crate::error::CallError;

/// Passes encoded messages through: the bytes of one gRPC message, without its frame prefix.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

// === impl Channel ===

impl Channel {
    /// A unary call whose request and response are encoded protobuf messages, retried as
    /// `method`'s contract allows.
    ///
    /// # Errors
    /// As [`Channel::unary`].
    pub async fn unary_raw<E: AppError>(
        &self,
        ctx: &Context,
        method: &'static MethodContract,
        request: Bytes,
    ) -> Result<Bytes, CallError<E>> {
        self.unary_with::<RawCodec, E>(ctx, method, request).await
    }

    /// A server-streaming call whose request and responses are encoded protobuf messages.
    ///
    /// # Errors
    /// As [`Channel::server_streaming`].
    pub async fn server_streaming_raw<E: AppError>(
        &self,
        ctx: &Context,
        method: &'static MethodContract,
        request: Bytes,
    ) -> Result<ResponseStream<Bytes, E>, CallError<E>> {
        self.server_streaming_with::<RawCodec, E>(ctx, method, request)
            .await
    }

    /// A streaming call whose requests and responses are encoded protobuf messages; serves
    /// client-streaming methods too (the same exchange on the wire, with one response).
    ///
    /// # Errors
    /// As [`Channel::bidi_streaming`].
    pub async fn streaming_raw<E, S>(
        &self,
        ctx: &Context,
        method: &'static MethodContract,
        requests: S,
    ) -> Result<ResponseStream<Bytes, E>, CallError<E>>
    where
        E: AppError,
        S: Stream<Item = Bytes> + Send + 'static,
    {
        self.streaming_with::<RawCodec, E, _>(ctx, method, requests)
            .await
    }
}

// === impl RawCodec ===

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
