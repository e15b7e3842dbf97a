//! `herald call`: call any method of a running server, JSON in and out, learning its types
//! by server reflection (what grpcurl does).

use std::io::Read as _;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use futures_util::StreamExt as _;
use herald::Context;
use herald::client::Channel;
use herald::codegen::{CallError, MethodContract, NoAppError, RpcKind};
use http::{HeaderName, HeaderValue};
use prost::Message as _;
use prost_reflect::{DynamicMessage, MessageDescriptor, MethodDescriptor, SerializeOptions};

use crate::cli::CallArgs;
use crate::connect::Server;
use crate::reflect::{self, contract_for};

pub(crate) async fn run(args: CallArgs) -> anyhow::Result<()> {
    let server = Server::resolve(&args.target, &args.connect)?;
    let channel = server.channel(1)?;
    let Some(name) = &args.method else {
        for service in reflect::services(&channel, &args.schema).await? {
            println!("{service}");
        }
        return Ok(());
    };
    let method = reflect::method(&channel, &args.schema, name).await?;
    if args.describe {
        describe(&method);
        return Ok(());
    }
    let requests = parse_requests(&method.input(), &read_data(&args.data)?)?;
    let ctx = context(&args.headers, args.timeout)?;
    let contract = contract_for(&method);
    let output = Output {
        descriptor: method.output(),
        compact: args.compact,
    };
    call(&channel, &ctx, contract, requests, &output).await
}

/// The request data: the argument itself, `@FILE`, or `@-` for stdin.
fn read_data(data: &str) -> anyhow::Result<String> {
    match data.strip_prefix('@') {
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the request from stdin")?;
            Ok(text)
        }
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("cannot read {path}")),
        None => Ok(data.to_owned()),
    }
}

/// Zero or more JSON objects, one after another, each an `input` message in protobuf's JSON
/// mapping, encoded.
pub(crate) fn parse_requests(input: &MessageDescriptor, text: &str) -> anyhow::Result<Vec<Bytes>> {
    let mut messages = Vec::new();
    let stream = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    for (n, value) in stream.enumerate() {
        let value = value.with_context(|| format!("request {} is not JSON", n + 1))?;
        let message = DynamicMessage::deserialize(input.clone(), value)
            .with_context(|| format!("request {} is not a valid {}", n + 1, input.full_name()))?;
        messages.push(Bytes::from(message.encode_to_vec()));
    }
    Ok(messages)
}

fn context(headers: &[String], timeout: f64) -> anyhow::Result<Context> {
    if !(timeout.is_finite() && timeout > 0.0) {
        bail!("--timeout must be a positive number of seconds");
    }
    let mut ctx = Context::background().with_timeout(Duration::from_secs_f64(timeout));
    for header in headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| anyhow!("header {header:?} is not NAME: VALUE"))?;
        let name = HeaderName::try_from(name.trim())
            .with_context(|| format!("{name:?} is not a header name"))?;
        let value = HeaderValue::try_from(value.trim())
            .with_context(|| format!("the value of {name} is not a header value"))?;
        ctx = ctx.with_header(name, value);
    }
    Ok(ctx)
}

/// Prints responses as JSON.
struct Output {
    descriptor: MessageDescriptor,
    compact: bool,
}

impl Output {
    fn print(&self, bytes: Bytes) -> anyhow::Result<()> {
        let message =
            DynamicMessage::decode(self.descriptor.clone(), bytes).with_context(|| {
                format!(
                    "the response is not a valid {}",
                    self.descriptor.full_name()
                )
            })?;
        let options = SerializeOptions::new().skip_default_fields(false);
        let mut out = Vec::new();
        if self.compact {
            let mut serializer = serde_json::Serializer::new(&mut out);
            message.serialize_with_options(&mut serializer, &options)?;
        } else {
            let mut serializer = serde_json::Serializer::pretty(&mut out);
            message.serialize_with_options(&mut serializer, &options)?;
        }
        println!("{}", String::from_utf8_lossy(&out));
        Ok(())
    }
}

async fn call(
    channel: &Channel,
    ctx: &Context,
    method: &'static MethodContract,
    mut requests: Vec<Bytes>,
    output: &Output,
) -> anyhow::Result<()> {
    let failed = |e: CallError<NoAppError>| anyhow!("{}: {}", e.code(), e.message());
    match method.kind {
        RpcKind::Unary | RpcKind::ServerStreaming => {
            let request = match requests.len() {
                0 => Bytes::new(),
                1 => requests.remove(0),
                n => bail!("{} takes one request; got {n}", method.full_name()),
            };
            if method.kind == RpcKind::Unary {
                let response = channel.unary_raw(ctx, method, request).await;
                return output.print(response.map_err(failed)?);
            }
            let mut responses = channel
                .server_streaming_raw(ctx, method, request)
                .await
                .map_err(failed)?;
            while let Some(response) = responses.next().await {
                output.print(response.map_err(failed)?)?;
            }
        }
        RpcKind::ClientStreaming | RpcKind::BidiStreaming => {
            let requests = futures_util::stream::iter(requests);
            let mut responses = channel
                .streaming_raw(ctx, method, requests)
                .await
                .map_err(failed)?;
            while let Some(response) = responses.next().await {
                output.print(response.map_err(failed)?)?;
            }
        }
    }
    Ok(())
}

fn describe(method: &MethodDescriptor) {
    let stream = |s: bool| if s { "stream " } else { "" };
    println!(
        "rpc {}({}{}) returns ({}{})",
        method.full_name(),
        stream(method.is_client_streaming()),
        method.input().full_name(),
        stream(method.is_server_streaming()),
        method.output().full_name()
    );
    for message in [method.input(), method.output()] {
        println!("\nmessage {} {{", message.full_name());
        for field in message.fields() {
            let label = if field.is_list() { "repeated " } else { "" };
            let kind = match field.kind() {
                prost_reflect::Kind::Message(m) => m.full_name().to_owned(),
                prost_reflect::Kind::Enum(e) => e.full_name().to_owned(),
                other => format!("{other:?}").to_lowercase(),
            };
            println!("  {label}{kind} {} = {};", field.name(), field.number());
        }
        println!("}}");
    }
}
