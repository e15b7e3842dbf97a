//! The messages of `bench.Echo/Stream`, shared by every server that implements it, so that
//! herald and tonic do the same work per message.

use std::time::{Duration, Instant};

/// The largest payload a `Stream` call may ask for: gRPC's usual 4 MiB message limit, less
/// room for the protobuf field's tag and length.
pub const MAX_PAYLOAD: u32 = 4 * 1024 * 1024 - 16;

/// The payloads a `Stream` request asks for: `size` bytes each, `count` of them (0: no
/// limit), until `duration_ms` from now (0: no limit).
///
/// # Errors
/// `size` is 0 or above [`MAX_PAYLOAD`].
pub fn payloads(
    size: u32,
    count: u64,
    duration_ms: u64,
) -> Result<impl Iterator<Item = Vec<u8>> + Send + 'static, String> {
    if size == 0 || size > MAX_PAYLOAD {
        return Err(format!(
            "message_size {size}: must be between 1 and {MAX_PAYLOAD}"
        ));
    }
    let template = vec![b'x'; size as usize];
    let end = (duration_ms > 0).then(|| Instant::now() + Duration::from_millis(duration_ms));
    let count = if count == 0 { u64::MAX } else { count };
    // A fresh copy per message, as a handler building real messages would make.
    Ok((0..count).map_while(move |_| match end {
        Some(end) if Instant::now() >= end => None,
        _ => Some(template.clone()),
    }))
}
