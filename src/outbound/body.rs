//! Reading a response body with a bound: chunk by chunk, stopping at the limit, so a peer
//! serving an endless or huge body costs at most `max` bytes of memory and reading.

use bytes::{Bytes, BytesMut};

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The body is (or declares itself) longer than allowed.
    #[error("response body exceeds {0} bytes")]
    TooLarge(usize),
    /// The connection failed or timed out while reading.
    #[error("reading the response body failed: {0}")]
    Read(String),
}

/// The body of `resp`, at most `max` bytes: refused at once when `Content-Length` says more,
/// and reading stops as soon as the chunks received pass `max` (the connection is dropped).
pub async fn read_limited(mut resp: reqwest::Response, max: usize) -> Result<Bytes, BodyError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge(max));
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| BodyError::Read(e.without_url().to_string()))? {
        if buf.len().saturating_add(chunk.len()) > max {
            return Err(BodyError::TooLarge(max));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
