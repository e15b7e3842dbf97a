//! `grpc.testing.TestService`, served by herald.
//!
//! As gRPC's interop description says: `x-grpc-test-echo-initial` comes back as initial
//! metadata and `x-grpc-test-echo-trailing-bin` as trailing metadata (also when the call
//! fails); `response_status` ends the call with that code and message; `response_compressed`
//! asks for a compressed (or uncompressed) response; `expect_compressed` is checked against
//! how the request came.
//!
//! Limits, from tonic underneath: a server stream is compressed as a whole or not at all (no
//! per-message choice), and a handler sees whether the *call* is compressed
//! (`grpc-encoding`), not each message's flag. `expect_compressed: true` on an uncompressed
//! call is refused; `false` on a compressed call cannot be told apart and is accepted.

use std::time::Duration;

use futures_util::StreamExt as _;
use herald::{BoxStream, Code, Context, Error, RequestStream};
use http::HeaderName;

use crate::pb::test_service_server::TestService;
use crate::pb::{
    BoolValue, EchoStatus, Empty, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse,
};
use crate::{ECHO_INITIAL, ECHO_TRAILING, zeros};

/// The largest payload a case may ask for (the biggest in the description is 314159 bytes).
const MAX_PAYLOAD: i32 = 4 << 20;

/// The interop test service.
#[derive(Debug, Clone, Default)]
pub struct TestServiceImpl;

impl TestService for TestServiceImpl {
    async fn empty_call(&self, ctx: &Context, _request: Empty) -> Result<Empty, Error> {
        echo_metadata(ctx);
        Ok(Empty {})
    }

    async fn unary_call(
        &self,
        ctx: &Context,
        request: SimpleRequest,
    ) -> Result<SimpleResponse, Error> {
        echo_metadata(ctx);
        check_compressed(ctx, request.expect_compressed.as_ref())?;
        fail_if_asked(request.response_status.as_ref())?;
        if let Some(compressed) = &request.response_compressed {
            ctx.set_response_compression(compressed.value);
        }
        Ok(SimpleResponse {
            payload: Some(zeros(size(request.response_size)?)),
            ..SimpleResponse::default()
        })
    }

    type StreamingOutputCallStream = BoxStream<StreamingOutputCallResponse>;

    async fn streaming_output_call(
        &self,
        ctx: &Context,
        request: StreamingOutputCallRequest,
    ) -> Result<Self::StreamingOutputCallStream, Error> {
        echo_metadata(ctx);
        fail_if_asked(request.response_status.as_ref())?;
        let params = request.response_parameters;
        Ok(futures_util::stream::iter(params).then(respond).boxed())
    }

    async fn streaming_input_call(
        &self,
        ctx: &Context,
        mut requests: RequestStream<StreamingInputCallRequest>,
    ) -> Result<StreamingInputCallResponse, Error> {
        echo_metadata(ctx);
        let mut total = 0usize;
        while let Some(request) = requests.next().await {
            let request = request?;
            check_compressed(ctx, request.expect_compressed.as_ref())?;
            total += request.payload.map_or(0, |p| p.body.len());
        }
        Ok(StreamingInputCallResponse {
            aggregated_payload_size: i32::try_from(total)
                .map_err(|_| Error::invalid_argument("more than 2 GiB in all"))?,
        })
    }

    type FullDuplexCallStream = BoxStream<StreamingOutputCallResponse>;

    async fn full_duplex_call(
        &self,
        ctx: &Context,
        requests: RequestStream<StreamingOutputCallRequest>,
    ) -> Result<Self::FullDuplexCallStream, Error> {
        echo_metadata(ctx);
        // Each request is answered as it comes: its status, or its responses.
        let answers = requests.flat_map(|request| match request {
            Err(error) => futures_util::stream::iter(vec![Err(error.into())]).boxed(),
            Ok(request) => match fail_if_asked(request.response_status.as_ref()) {
                Err(error) => futures_util::stream::iter(vec![Err(error)]).boxed(),
                Ok(()) => futures_util::stream::iter(request.response_parameters)
                    .then(respond)
                    .boxed(),
            },
        });
        Ok(answers.boxed())
    }

    type HalfDuplexCallStream = BoxStream<StreamingOutputCallResponse>;

    async fn half_duplex_call(
        &self,
        ctx: &Context,
        mut requests: RequestStream<StreamingOutputCallRequest>,
    ) -> Result<Self::HalfDuplexCallStream, Error> {
        echo_metadata(ctx);
        let mut params = Vec::new();
        while let Some(request) = requests.next().await {
            let request = request?;
            fail_if_asked(request.response_status.as_ref())?;
            params.extend(request.response_parameters);
        }
        Ok(futures_util::stream::iter(params).then(respond).boxed())
    }

    async fn unimplemented_call(&self, ctx: &Context, _request: Empty) -> Result<Empty, Error> {
        echo_metadata(ctx);
        Err(Error::new(
            Code::Unimplemented,
            "UnimplementedCall is implemented by no server",
        ))
    }
}

/// One response of a stream, after its interval.
async fn respond(params: ResponseParameters) -> Result<StreamingOutputCallResponse, Error> {
    if params.interval_us > 0 {
        tokio::time::sleep(Duration::from_micros(u64::from(
            params.interval_us.unsigned_abs(),
        )))
        .await;
    }
    Ok(StreamingOutputCallResponse {
        payload: Some(zeros(size(params.size)?)),
    })
}

fn size(requested: i32) -> Result<usize, Error> {
    if !(0..=MAX_PAYLOAD).contains(&requested) {
        return Err(Error::invalid_argument(format!(
            "response size {requested} is not within 0..={MAX_PAYLOAD}"
        )));
    }
    Ok(usize::try_from(requested).unwrap_or_default())
}

fn echo_metadata(ctx: &Context) {
    if let Some(value) = ctx.request_header(ECHO_INITIAL) {
        ctx.set_response_header(HeaderName::from_static(ECHO_INITIAL), value.clone());
    }
    if let Some(value) = ctx.request_header(ECHO_TRAILING) {
        ctx.set_response_trailer(HeaderName::from_static(ECHO_TRAILING), value.clone());
    }
}

/// `expect_compressed: true` on a call that is not compressed is refused.
fn check_compressed(ctx: &Context, expect: Option<&BoolValue>) -> Result<(), Error> {
    let compressed = ctx
        .request_header("grpc-encoding")
        .is_some_and(|e| e.as_bytes() != b"identity");
    if expect.is_some_and(|e| e.value) && !compressed {
        return Err(Error::invalid_argument(
            "expect_compressed is true but the request came uncompressed",
        ));
    }
    Ok(())
}

/// The status a request asks for, if not OK.
fn fail_if_asked(status: Option<&EchoStatus>) -> Result<(), Error> {
    match status {
        Some(status) if status.code != 0 => Err(Error::new(
            Code::from_i32(status.code),
            status.message.clone(),
        )),
        _ => Ok(()),
    }
}
