//! JSON bodies for the bridge: protobuf's canonical JSON mapping, through the descriptors the
//! contract embeds (no hand-written schema, nothing generated for it).

use bytes::Bytes;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};

/// The descriptors of the services a server serves.
#[derive(Debug)]
pub(crate) struct Schemas {
    pool: DescriptorPool,
}

// === impl Schemas ===

impl Schemas {
    /// From the encoded descriptor sets of the contracts.
    ///
    /// # Errors
    /// A set that does not decode (a herald-build bug).
    pub(crate) fn new<'a>(sets: impl IntoIterator<Item = &'a [u8]>) -> Result<Schemas, String> {
        let mut pool = DescriptorPool::new();
        for set in sets {
            if set.is_empty() {
                continue;
            }
            pool.decode_file_descriptor_set(set)
                .map_err(|e| format!("a contract's descriptors do not decode: {e}"))?;
        }
        Ok(Schemas { pool })
    }

    /// The (input, output) messages of the method at `path` (`/package.Service/Method`).
    pub(crate) fn method(&self, path: &str) -> Option<(MessageDescriptor, MessageDescriptor)> {
        let (service, method) = path.trim_start_matches('/').split_once('/')?;
        let method = self
            .pool
            .get_service_by_name(service)?
            .methods()
            .find(|m| m.name() == method)?;
        Some((method.input(), method.output()))
    }
}

/// A JSON request body as the encoded `input` message.
///
/// # Errors
/// Not JSON, or not a valid `input` in protobuf's JSON mapping: the reason, for the caller.
pub(crate) fn to_protobuf(input: &MessageDescriptor, body: &[u8]) -> Result<Bytes, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let message = DynamicMessage::deserialize(input.clone(), &mut deserializer)
        .map_err(|e| format!("the body is not a valid {} in JSON: {e}", input.full_name()))?;
    deserializer
        .end()
        .map_err(|e| format!("trailing characters after the JSON body: {e}"))?;
    Ok(Bytes::from(message.encode_to_vec()))
}

/// An encoded `output` message as a JSON body (fields at their default value included, so a
/// caller sees every field).
///
/// # Errors
/// Bytes that are not an `output` (never from herald's own handlers).
pub(crate) fn to_json(output: &MessageDescriptor, message: Bytes) -> Result<Vec<u8>, String> {
    let message = DynamicMessage::decode(output.clone(), message)
        .map_err(|e| format!("the response is not a valid {}: {e}", output.full_name()))?;
    let mut body = Vec::new();
    let mut serializer = serde_json::Serializer::new(&mut body);
    message
        .serialize_with_options(
            &mut serializer,
            &SerializeOptions::new().skip_default_fields(false),
        )
        .map_err(|e| e.to_string())?;
    Ok(body)
}
