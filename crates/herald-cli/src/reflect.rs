//! What a running server serves, learnt through gRPC server reflection (`grpc.reflection.v1`):
//! its services, and the descriptors of their messages, so JSON can be turned into protobuf and
//! back without the caller holding any `.proto` file.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use herald::Context;
use herald::client::{Channel, ResponseStream};
use herald::codegen::{ClientPolicy, MethodContract, NoAppError, RpcKind};
use prost::Message as _;
use prost_reflect::{DescriptorPool, MethodDescriptor};

use crate::cli::SchemaArgs;
use prost_types::FileDescriptorProto;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

/// The reflection service's one method: a stream of questions and answers.
static REFLECTION: MethodContract = MethodContract {
    service: "grpc.reflection.v1.ServerReflection",
    method: "ServerReflectionInfo",
    path: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    kind: RpcKind::BidiStreaming,
    deadline: None,
    client: ClientPolicy {
        timeout: None,
        idempotent: true,
        retry: None,
        circuit_breaker: None,
    },
};

/// How long reflection may take, all questions together.
const REFLECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// One reflection conversation with a server.
pub(crate) struct Reflection {
    questions: mpsc::Sender<ServerReflectionRequest>,
    answers: ResponseStream<ServerReflectionResponse, NoAppError>,
}

// === impl Reflection ===

impl Reflection {
    /// Opens the conversation.
    ///
    /// # Errors
    /// The server cannot be reached, or serves no reflection.
    pub(crate) async fn start(channel: &Channel) -> anyhow::Result<Reflection> {
        let ctx = Context::background().with_timeout(REFLECTION_TIMEOUT);
        let (questions, receiver) = mpsc::channel(4);
        let answers = channel
            .bidi_streaming(&ctx, &REFLECTION, ReceiverStream::new(receiver))
            .await
            .map_err(|e| anyhow!("server reflection: {e}"))?;
        Ok(Reflection { questions, answers })
    }

    async fn ask(&mut self, question: MessageRequest) -> anyhow::Result<MessageResponse> {
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(question),
        };
        self.questions
            .send(request)
            .await
            .map_err(|_| anyhow!("server reflection: the server ended the conversation"))?;
        let answer = self
            .answers
            .message()
            .await
            .map_err(|e| anyhow!("server reflection: {e}"))?
            .and_then(|a| a.message_response)
            .ok_or_else(|| anyhow!("server reflection: the server ended the conversation"))?;
        if let MessageResponse::ErrorResponse(error) = &answer {
            bail!("server reflection: {}", error.error_message);
        }
        Ok(answer)
    }

    /// The names of the services the server offers, sorted.
    ///
    /// # Errors
    /// As [`Reflection::start`].
    pub(crate) async fn services(&mut self) -> anyhow::Result<Vec<String>> {
        match self
            .ask(MessageRequest::ListServices(String::new()))
            .await?
        {
            MessageResponse::ListServicesResponse(list) => {
                let names: BTreeSet<String> = list.service.into_iter().map(|s| s.name).collect();
                Ok(names.into_iter().collect())
            }
            _ => bail!("server reflection: unexpected answer to list services"),
        }
    }

    /// Every file the server describes `symbol` with, and their imports.
    ///
    /// # Errors
    /// The symbol is unknown to the server, or a file does not decode.
    pub(crate) async fn pool_for(&mut self, symbol: &str) -> anyhow::Result<DescriptorPool> {
        let mut files: Vec<FileDescriptorProto> = Vec::new();
        let mut known: HashSet<String> = HashSet::new();
        let mut wanted = vec![MessageRequest::FileContainingSymbol(symbol.to_owned())];
        while let Some(question) = wanted.pop() {
            let MessageResponse::FileDescriptorResponse(answer) = self.ask(question).await? else {
                bail!("server reflection: unexpected answer to a file request");
            };
            for bytes in answer.file_descriptor_proto {
                let file = FileDescriptorProto::decode(bytes.as_slice())
                    .context("server reflection: a file descriptor does not decode")?;
                if !known.insert(file.name().to_owned()) {
                    continue;
                }
                for import in &file.dependency {
                    if !known.contains(import) {
                        wanted.push(MessageRequest::FileByFilename(import.clone()));
                    }
                }
                files.push(file);
            }
        }
        let mut pool = DescriptorPool::new();
        pool.add_file_descriptor_protos(files)
            .context("server reflection: the server's descriptors do not form a whole")?;
        Ok(pool)
    }

    /// The method `name` names: `package.Service/Method` or `package.Service.Method`.
    ///
    /// # Errors
    /// The name is malformed, or the server has no such service or method.
    pub(crate) async fn method(&mut self, name: &str) -> anyhow::Result<MethodDescriptor> {
        let (service, _) = split_method(name)?;
        let pool = self.pool_for(service).await?;
        method_in(&pool, name, "the server")
    }
}

/// Where a method's types come from: `.proto` files given on the command line, or else the
/// server's reflection service.
pub(crate) async fn method(
    channel: &Channel,
    schema: &SchemaArgs,
    name: &str,
) -> anyhow::Result<MethodDescriptor> {
    match local_pool(schema)? {
        Some(pool) => method_in(&pool, name, "the .proto files"),
        None => Reflection::start(channel).await?.method(name).await,
    }
}

/// The services of the `.proto` files, or else those the server lists.
pub(crate) async fn services(
    channel: &Channel,
    schema: &SchemaArgs,
) -> anyhow::Result<Vec<String>> {
    match local_pool(schema)? {
        Some(pool) => Ok(pool.services().map(|s| s.full_name().to_owned()).collect()),
        None => Reflection::start(channel).await?.services().await,
    }
}

fn local_pool(schema: &SchemaArgs) -> anyhow::Result<Option<DescriptorPool>> {
    if schema.proto.is_empty() {
        return Ok(None);
    }
    let includes = if schema.import_path.is_empty() {
        vec![std::path::PathBuf::from(".")]
    } else {
        schema.import_path.clone()
    };
    let bytes = herald_build::descriptor_set(&schema.proto, &includes)
        .map_err(|e| anyhow!("{}", e.to_string().replace('\n', "; ")))?;
    let pool = DescriptorPool::decode(bytes.as_slice()).context("the compiled .proto files")?;
    Ok(Some(pool))
}

/// The method `name` in `pool`; `source` says where the pool came from, for errors.
fn method_in(pool: &DescriptorPool, name: &str, source: &str) -> anyhow::Result<MethodDescriptor> {
    let (service, method) = split_method(name)?;
    let service_descriptor = pool
        .get_service_by_name(service)
        .ok_or_else(|| anyhow!("no service {service} in {source}"))?;
    let found = service_descriptor.methods().find(|m| m.name() == method);
    found.ok_or_else(|| {
        let names: Vec<String> = service_descriptor
            .methods()
            .map(|m| m.name().to_owned())
            .collect();
        anyhow!(
            "{service} has no method {method}; it has: {}",
            names.join(", ")
        )
    })
}

/// `package.Service/Method` or `package.Service.Method` → (service, method).
fn split_method(name: &str) -> anyhow::Result<(&str, &str)> {
    let split = name
        .split_once('/')
        .or_else(|| name.rsplit_once('.'))
        .filter(|(s, m)| !s.is_empty() && !m.is_empty() && !m.contains(['/', '.']));
    split
        .ok_or_else(|| anyhow!("{name:?} is not a method name; write it as package.Service/Method"))
}

/// A contract for a method found by reflection, made once per process: no deadline or
/// client policy of its own (the caller's `--timeout` bounds each call), no retries (a tool
/// reports what happened), no breaker.
pub(crate) fn contract_for(method: &MethodDescriptor) -> &'static MethodContract {
    let kind = match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, false) => RpcKind::Unary,
        (false, true) => RpcKind::ServerStreaming,
        (true, false) => RpcKind::ClientStreaming,
        (true, true) => RpcKind::BidiStreaming,
    };
    let service = method.parent_service().full_name().to_owned();
    let path = format!("/{service}/{}", method.name());
    Box::leak(Box::new(MethodContract::bare(
        service.leak(),
        method.name().to_owned().leak(),
        path.leak(),
        kind,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_in_both_spellings() {
        assert_eq!(
            split_method("cache.Cache/Get").ok(),
            Some(("cache.Cache", "Get"))
        );
        assert_eq!(
            split_method("cache.Cache.Get").ok(),
            Some(("cache.Cache", "Get"))
        );
        for bad in ["Get", "cache.Cache/", "/Get", "a/b/c", ""] {
            assert!(split_method(bad).is_err(), "{bad:?} accepted");
        }
    }
}
