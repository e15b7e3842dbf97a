//! The interop client cases, as gRPC's interop description (and `interop/python/client.py`)
//! has them, run by herald's generated client against any TestService server.
//!
//! Where herald's client differs from grpcio's, a case checks what herald can see, and says
//! so: a call is cancelled by dropping it (the case then checks that the channel goes on
//! serving); compression is seen per call (`grpc-encoding`), not per message. A streaming call
//! returns once the server's response head arrives, and some servers (grpcio, grpc-js) send it
//! only with their first message: a duplex case queues its first request before the call.

use std::time::Duration;

use herald::client::Channel;
use herald::{CallError, Code, Compression, Context, MetadataCapture, NoAppError};
use http::{HeaderName, HeaderValue};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::pb::test_service_client::TestServiceClient;
use crate::pb::unimplemented_service_client::UnimplementedServiceClient;
use crate::pb::{
    BoolValue, EchoStatus, Empty, Payload, PayloadType, ResponseParameters, SimpleRequest,
    StreamingInputCallRequest, StreamingOutputCallRequest,
};
use crate::{ECHO_INITIAL, ECHO_TRAILING, zeros};

/// Every case, in the order of the interop description.
pub const CASES: &[&str] = &[
    "empty_unary",
    "large_unary",
    "client_compressed_unary",
    "server_compressed_unary",
    "client_streaming",
    "client_compressed_streaming",
    "server_streaming",
    "server_compressed_streaming",
    "ping_pong",
    "empty_stream",
    "custom_metadata",
    "status_code_and_message",
    "special_status_message",
    "unimplemented_method",
    "unimplemented_service",
    "cancel_after_begin",
    "cancel_after_first_response",
    "timeout_on_sleeping_server",
];

/// How a case did not pass.
#[derive(Debug)]
pub enum NotPassed {
    /// It failed, for this reason.
    Failed(String),
    /// herald's client cannot express it, for this reason (never counted as passed).
    Skipped(String),
}

type Outcome = Result<(), NotPassed>;

/// The server under test, through herald clients.
#[derive(Debug, Clone)]
pub struct Peer {
    plain: TestServiceClient,
    gzip: TestServiceClient,
    unimplemented: UnimplementedServiceClient,
    timeout: Duration,
}

// === impl Peer ===

impl Peer {
    /// Clients over `channel` (uncompressed requests) and `gzip` (compressed requests), to
    /// the same server; each call gets `timeout`.
    pub fn new(channel: Channel, gzip: Channel, timeout: Duration) -> Peer {
        Peer {
            plain: TestServiceClient::new(channel.clone()),
            gzip: TestServiceClient::new(gzip),
            unimplemented: UnimplementedServiceClient::new(channel),
            timeout,
        }
    }

    fn ctx(&self) -> Context {
        Context::background().with_timeout(self.timeout)
    }

    /// Runs the case `name`.
    ///
    /// # Errors
    /// The case failed or was skipped, with the reason.
    pub async fn run(&self, name: &str) -> Outcome {
        match name {
            "empty_unary" => self.empty_unary().await,
            "large_unary" => self.large_unary().await,
            "client_compressed_unary" => self.client_compressed_unary().await,
            "server_compressed_unary" => self.server_compressed_unary().await,
            "client_streaming" => self.client_streaming().await,
            "client_compressed_streaming" => Err(NotPassed::Skipped(
                "needs a compressed first and an uncompressed second message in one client \
                 stream; tonic underneath compresses all or none of a call's messages"
                    .into(),
            )),
            "server_streaming" => self.server_streaming().await,
            "server_compressed_streaming" => self.server_compressed_streaming().await,
            "ping_pong" => self.ping_pong().await,
            "empty_stream" => self.empty_stream().await,
            "custom_metadata" => self.custom_metadata().await,
            "status_code_and_message" => self.status_case("test status message", true).await,
            "special_status_message" => {
                self.status_case(
                    "\t\ntest with whitespace\r\nand Unicode BMP \u{263a} and non-BMP \u{1f608}\t\n",
                    false,
                )
                .await
            }
            "unimplemented_method" => {
                let result = self.plain.unimplemented_call(&self.ctx(), Empty {}).await;
                expect_code(result, Code::Unimplemented, None)
            }
            "unimplemented_service" => {
                let result = self
                    .unimplemented
                    .unimplemented_call(&self.ctx(), Empty {})
                    .await;
                expect_code(result, Code::Unimplemented, None)
            }
            "cancel_after_begin" => self.cancel_after_begin().await,
            "cancel_after_first_response" => self.cancel_after_first_response().await,
            "timeout_on_sleeping_server" => self.timeout_on_sleeping_server().await,
            other => Err(NotPassed::Failed(format!("no case named {other}"))),
        }
    }

    async fn empty_unary(&self) -> Outcome {
        let response = self
            .plain
            .empty_call(&self.ctx(), Empty {})
            .await
            .map_err(rpc)?;
        check(response == Empty {}, "the response is not empty")
    }

    async fn large_unary(&self) -> Outcome {
        let response = self
            .plain
            .unary_call(&self.ctx(), large_request())
            .await
            .map_err(rpc)?;
        check_payload(response.payload.as_ref(), 314_159)
    }

    async fn client_compressed_unary(&self) -> Outcome {
        // The probe: an uncompressed request claiming to be compressed must be refused.
        let claim = SimpleRequest {
            expect_compressed: Some(BoolValue { value: true }),
            ..large_request()
        };
        let probe = self.plain.unary_call(&self.ctx(), claim.clone()).await;
        expect_code(probe, Code::InvalidArgument, None)?;
        let response = self
            .gzip
            .unary_call(&self.ctx(), claim)
            .await
            .map_err(rpc)?;
        check_payload(response.payload.as_ref(), 314_159)?;
        let plain = SimpleRequest {
            expect_compressed: Some(BoolValue { value: false }),
            ..large_request()
        };
        let response = self
            .plain
            .unary_call(&self.ctx(), plain)
            .await
            .map_err(rpc)?;
        check_payload(response.payload.as_ref(), 314_159)
    }

    async fn server_compressed_unary(&self) -> Outcome {
        for compressed in [true, false] {
            let (ctx, seen) = self.ctx().capture_response_metadata();
            let request = SimpleRequest {
                response_compressed: Some(BoolValue { value: compressed }),
                ..large_request()
            };
            let response = self.plain.unary_call(&ctx, request).await.map_err(rpc)?;
            check_payload(response.payload.as_ref(), 314_159)?;
            // herald sees compression per call: a compressed response needs a gzip call.
            if compressed {
                check(
                    gzip_call(&seen),
                    "response_compressed=true but the response came uncompressed",
                )?;
            }
        }
        Ok(())
    }

    async fn client_streaming(&self) -> Outcome {
        let requests = [27_182, 8, 1828, 45_904].map(|n| StreamingInputCallRequest {
            payload: Some(zeros(n)),
            expect_compressed: None,
        });
        let response = self
            .plain
            .streaming_input_call(&self.ctx(), futures_util::stream::iter(requests))
            .await
            .map_err(rpc)?;
        check(
            response.aggregated_payload_size == 74_922,
            &format!(
                "aggregated_payload_size {}, want 74922",
                response.aggregated_payload_size
            ),
        )
    }

    async fn server_streaming(&self) -> Outcome {
        let sizes = [31_415, 9, 2653, 58_979];
        let mut responses = self
            .plain
            .streaming_output_call(&self.ctx(), output_request(&sizes, 0))
            .await
            .map_err(rpc)?;
        for size in sizes {
            let response = next(&mut responses).await?;
            check_payload(response.payload.as_ref(), size)?;
        }
        ended(&mut responses).await
    }

    async fn server_compressed_streaming(&self) -> Outcome {
        let request = StreamingOutputCallRequest {
            response_type: PayloadType::Compressable.into(),
            response_parameters: vec![params(31_415, Some(true)), params(92_653, Some(false))],
            ..StreamingOutputCallRequest::default()
        };
        let (ctx, seen) = self.ctx().capture_response_metadata();
        let mut responses = self
            .plain
            .streaming_output_call(&ctx, request)
            .await
            .map_err(rpc)?;
        for size in [31_415, 92_653] {
            let response = next(&mut responses).await?;
            check_payload(response.payload.as_ref(), size)?;
        }
        ended(&mut responses).await?;
        check(
            gzip_call(&seen),
            "a response asked compressed, but the call came uncompressed",
        )
    }

    async fn ping_pong(&self) -> Outcome {
        let (requests, stream) = mpsc::channel(4);
        let pairs = [(27_182, 31_415), (8, 9), (1828, 2653), (45_904, 58_979)];
        send(&requests, output_request(&[pairs[0].1], pairs[0].0)).await?;
        let mut responses = self
            .plain
            .full_duplex_call(&self.ctx(), ReceiverStream::new(stream))
            .await
            .map_err(rpc)?;
        for (i, (up, down)) in pairs.into_iter().enumerate() {
            if i > 0 {
                send(&requests, output_request(&[down], up)).await?;
            }
            let response = next(&mut responses).await?;
            check_payload(response.payload.as_ref(), down)?;
        }
        drop(requests);
        ended(&mut responses).await
    }

    async fn empty_stream(&self) -> Outcome {
        let mut responses = self
            .plain
            .full_duplex_call(&self.ctx(), futures_util::stream::empty())
            .await
            .map_err(rpc)?;
        ended(&mut responses).await
    }

    async fn custom_metadata(&self) -> Outcome {
        let initial = HeaderValue::from_static("test_initial_metadata_value");
        // \xab\xab\xab, base64 as binary metadata travels.
        let trailing = HeaderValue::from_static("q6ur");
        let (ctx, seen) = self
            .ctx()
            .with_header(HeaderName::from_static(ECHO_INITIAL), initial.clone())
            .with_header(HeaderName::from_static(ECHO_TRAILING), trailing.clone())
            .capture_response_metadata();
        let echoed = |what: &str| {
            let got = seen.get();
            check(
                got.get(ECHO_INITIAL) == Some(&initial),
                &format!("{what}: {ECHO_INITIAL} not echoed: {got:?}"),
            )?;
            check(
                got.get(ECHO_TRAILING) == Some(&trailing),
                &format!("{what}: {ECHO_TRAILING} not echoed: {got:?}"),
            )
        };
        let response = self
            .plain
            .unary_call(&ctx, large_request())
            .await
            .map_err(rpc)?;
        check_payload(response.payload.as_ref(), 314_159)?;
        echoed("UnaryCall")?;

        let (requests, stream) = mpsc::channel(1);
        send(&requests, output_request(&[314_159], 271_828)).await?;
        let mut responses = self
            .plain
            .full_duplex_call(&ctx, ReceiverStream::new(stream))
            .await
            .map_err(rpc)?;
        check_payload(next(&mut responses).await?.payload.as_ref(), 314_159)?;
        drop(requests);
        ended(&mut responses).await?;
        echoed("FullDuplexCall")
    }

    async fn status_case(&self, message: &str, duplex: bool) -> Outcome {
        let status = EchoStatus {
            code: 2, // UNKNOWN
            message: message.to_owned(),
        };
        let request = SimpleRequest {
            response_status: Some(status.clone()),
            ..SimpleRequest::default()
        };
        let result = self.plain.unary_call(&self.ctx(), request).await;
        expect_code(result, Code::Unknown, Some(message))?;
        if !duplex {
            return Ok(());
        }
        let request = StreamingOutputCallRequest {
            response_status: Some(status),
            ..StreamingOutputCallRequest::default()
        };
        let result = async {
            let mut responses = self
                .plain
                .full_duplex_call(&self.ctx(), futures_util::stream::iter([request]))
                .await?;
            while responses.message().await?.is_some() {}
            Ok(())
        }
        .await;
        expect_code(result, Code::Unknown, Some(message))
    }

    async fn cancel_after_begin(&self) -> Outcome {
        // A client stream with nothing sent yet, dropped: RST_STREAM(CANCEL) to the server.
        let (requests, stream) = mpsc::channel::<StreamingInputCallRequest>(1);
        let ctx = self.ctx();
        let call = self
            .plain
            .streaming_input_call(&ctx, ReceiverStream::new(stream));
        tokio::select! {
            result = call => return Err(NotPassed::Failed(format!(
                "the call ended before it was cancelled: {result:?}"
            ))),
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        drop(requests);
        // The channel goes on serving after the cancel.
        self.empty_unary().await
    }

    async fn cancel_after_first_response(&self) -> Outcome {
        let (requests, stream) = mpsc::channel(1);
        send(&requests, output_request(&[31_415], 27_182)).await?;
        let mut responses = self
            .plain
            .full_duplex_call(&self.ctx(), ReceiverStream::new(stream))
            .await
            .map_err(rpc)?;
        check_payload(next(&mut responses).await?.payload.as_ref(), 31_415)?;
        drop(responses);
        drop(requests);
        self.empty_unary().await
    }

    async fn timeout_on_sleeping_server(&self) -> Outcome {
        let ctx = Context::background().with_timeout(Duration::from_millis(1));
        let result = async {
            let (requests, stream) = mpsc::channel(1);
            let _queued = requests.send(output_request(&[], 27_182)).await;
            let mut responses = self
                .plain
                .full_duplex_call(&ctx, ReceiverStream::new(stream))
                .await?;
            while responses.message().await?.is_some() {}
            Ok(())
        }
        .await;
        expect_code(result, Code::DeadlineExceeded, None)
    }
}

/// The request of large_unary: 271828 bytes up, 314159 bytes down.
fn large_request() -> SimpleRequest {
    SimpleRequest {
        response_type: PayloadType::Compressable.into(),
        response_size: 314_159,
        payload: Some(zeros(271_828)),
        ..SimpleRequest::default()
    }
}

fn params(size: i32, compressed: Option<bool>) -> ResponseParameters {
    ResponseParameters {
        size,
        interval_us: 0,
        compressed: compressed.map(|value| BoolValue { value }),
    }
}

fn output_request(sizes: &[i32], payload: usize) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_type: PayloadType::Compressable.into(),
        response_parameters: sizes.iter().map(|s| params(*s, None)).collect(),
        payload: Some(zeros(payload)),
        ..StreamingOutputCallRequest::default()
    }
}

fn check(condition: bool, reason: &str) -> Outcome {
    if condition {
        Ok(())
    } else {
        Err(NotPassed::Failed(reason.to_owned()))
    }
}

fn check_payload(payload: Option<&Payload>, size: i32) -> Outcome {
    let Some(payload) = payload else {
        return Err(NotPassed::Failed("no payload".into()));
    };
    check(
        payload.r#type == i32::from(PayloadType::Compressable),
        "payload type is not COMPRESSABLE",
    )?;
    let want = usize::try_from(size).unwrap_or_default();
    check(
        payload.body.len() == want,
        &format!("payload of {} bytes, want {want}", payload.body.len()),
    )?;
    check(
        payload.body.iter().all(|b| *b == 0),
        "payload body is not all zeros",
    )
}

/// Whether the call's responses came gzip-compressed.
fn gzip_call(seen: &MetadataCapture) -> bool {
    seen.get()
        .get("grpc-encoding")
        .is_some_and(|e| e.as_bytes() == b"gzip")
}

fn rpc(error: CallError<NoAppError>) -> NotPassed {
    NotPassed::Failed(format!(
        "RPC ended with {} {:?}",
        error.code(),
        error.message()
    ))
}

fn expect_code<T: std::fmt::Debug>(
    result: Result<T, CallError<NoAppError>>,
    code: Code,
    message: Option<&str>,
) -> Outcome {
    match result {
        Ok(response) => Err(NotPassed::Failed(format!(
            "succeeded with {response:?}, want {code}"
        ))),
        Err(error) if error.code() != code => Err(NotPassed::Failed(format!(
            "ended with {} {:?}, want {code}",
            error.code(),
            error.message()
        ))),
        Err(error) => match message {
            Some(want) if error.message() != want => Err(NotPassed::Failed(format!(
                "status message {:?}, want {want:?}",
                error.message()
            ))),
            _ => Ok(()),
        },
    }
}

async fn send(
    requests: &mpsc::Sender<StreamingOutputCallRequest>,
    request: StreamingOutputCallRequest,
) -> Outcome {
    requests
        .send(request)
        .await
        .map_err(|_| NotPassed::Failed("the request stream closed early".into()))
}

async fn next<T: Unpin>(
    responses: &mut herald::client::ResponseStream<T, NoAppError>,
) -> Result<T, NotPassed> {
    match responses.message().await.map_err(rpc)? {
        Some(response) => Ok(response),
        None => Err(NotPassed::Failed("the response stream ended early".into())),
    }
}

async fn ended<T: Unpin>(responses: &mut herald::client::ResponseStream<T, NoAppError>) -> Outcome {
    match responses.message().await.map_err(rpc)? {
        None => Ok(()),
        Some(_) => Err(NotPassed::Failed("a response more than asked for".into())),
    }
}

/// Channels to a server with and without request compression; both accept compressed
/// responses (the `server_compressed_*` cases ask for them).
///
/// # Errors
/// The channels cannot be built.
pub fn channels(
    build: impl Fn() -> herald::client::Builder,
) -> Result<(Channel, Channel), herald::client::ChannelError> {
    Ok((
        build().accept_compressed(Compression::Gzip).build()?,
        build().compression(Compression::Gzip).build()?,
    ))
}
