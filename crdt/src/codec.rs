//! The binary encoding of every replicated value, for the wire, the store on disk and digests.
//! The only module that names the serialisation crate (bincode 2.0.1, pinned), so it can be swapped here.

use crate::error::CrdtError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// The most bytes `decode` reads: also the most any length prefix inside an input may claim, so a
/// forged length cannot make the decoder allocate more than this.
pub const DECODE_LIMIT: usize = 64 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<DECODE_LIMIT>()
}

/// Encodes `value`. Our types always encode; an error means a bug in a `Serialize` impl.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CrdtError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| CrdtError::Encode(e.to_string()))
}

/// Decodes exactly one value filling all of `bytes`. Garbage gives an error, never a panic.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CrdtError> {
    if bytes.len() > DECODE_LIMIT {
        return Err(CrdtError::TooLarge {
            size: bytes.len(),
            limit: DECODE_LIMIT,
        });
    }
    let (value, read) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| CrdtError::Decode(e.to_string()))?;
    if read != bytes.len() {
        return Err(CrdtError::Decode(format!(
            "{} trailing bytes",
            bytes.len() - read
        )));
    }
    Ok(value)
}

/// SHA-256 of the canonical encoding. Every type keeps a canonical representation, so equal
/// states have equal digests (and different ones, different digests, but for hash collisions).
pub fn digest<T: Serialize>(value: &T) -> Result<[u8; 32], CrdtError> {
    Ok(Sha256::digest(encode(value)?).into())
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
