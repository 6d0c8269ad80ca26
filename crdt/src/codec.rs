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
    decode_with(bytes, config())
}

/// Decodes what this node stored itself (a snapshot, a log entry, a checkpoint), which may be
/// larger than anything accepted from the network. The decoder's allocation bound grows with the
/// input, at eight times its size (a state in memory is a few times its encoding): a damaged
/// length prefix still gets an error, not an allocation beyond that.
pub fn decode_stored<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CrdtError> {
    const GIB: usize = 1 << 30;
    match bytes.len().saturating_mul(8) {
        n if n <= DECODE_LIMIT => decode(bytes),
        n if n <= GIB => decode_with(bytes, bincode::config::standard().with_limit::<GIB>()),
        n if n <= 16 * GIB => decode_with(
            bytes,
            bincode::config::standard().with_limit::<{ 16 * GIB }>(),
        ),
        _ => decode_with(
            bytes,
            bincode::config::standard().with_limit::<{ 256 * GIB }>(),
        ),
    }
}

thread_local! {
    /// Whether values read and write *encoding 1*, that of older builds: causal contexts with
    /// each dot beyond a gap listed alone (before contexts were runs), and stores without
    /// documents. Set only inside [`decode_stored_v1`] and [`encode_v1`].
    static V1_ENCODING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether values are being read or written in encoding 1.
pub(crate) fn v1_encoding() -> bool {
    V1_ENCODING.with(|v| v.get())
}

/// Runs `f` in encoding 1.
fn with_v1_encoding<R>(f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            V1_ENCODING.with(|v| v.set(false));
        }
    }
    V1_ENCODING.with(|v| v.set(true));
    let _reset = Reset;
    f()
}

/// [`decode_stored`] for a record in encoding 1, written by a build before causal contexts were
/// runs and stores held documents (a store opened after an upgrade rewrites its records with it,
/// once).
pub fn decode_stored_v1<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CrdtError> {
    with_v1_encoding(|| decode_stored(bytes))
}

/// [`encode`] in encoding 1, as older builds did: for tests of the upgrade path. It lists every
/// dot beyond a gap and leaves documents out, so it is not for states from the network.
pub fn encode_v1<T: Serialize>(value: &T) -> Result<Vec<u8>, CrdtError> {
    with_v1_encoding(|| encode(value))
}

fn decode_with<T: DeserializeOwned>(
    bytes: &[u8],
    config: impl bincode::config::Config,
) -> Result<T, CrdtError> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, config)
        .map_err(|e| CrdtError::Decode(e.to_string()))?;
    if read != bytes.len() {
        return Err(CrdtError::Decode(format!(
            "{} trailing bytes",
            bytes.len() - read
        )));
    }
    Ok(value)
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// SHA-256 of the canonical encoding. Every type keeps a canonical representation, so equal
/// states have equal digests (and different ones, different digests, but for hash collisions).
/// The encoding is hashed as it is produced: no copy of it is held.
pub fn digest<T: Serialize>(value: &T) -> Result<[u8; 32], CrdtError> {
    struct Hashing(Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            sha2::Digest::update(&mut self.0, buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut h = Hashing(Sha256::new());
    bincode::serde::encode_into_std_write(value, &mut h, config())
        .map_err(|e| CrdtError::Encode(e.to_string()))?;
    Ok(h.0.finalize().into())
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_hashes_the_encoding() {
        let v: Vec<String> = (0..1000).map(|i| format!("value {i}")).collect();
        assert_eq!(digest(&v).unwrap(), sha256(&encode(&v).unwrap()));
    }

    #[test]
    fn stored_values_past_the_network_limit_decode_and_garbage_does_not() {
        // 700,000 strings of 100 bytes: ~70 MB encoded, beyond the network bound.
        let big: Vec<String> = (0..700_000u32).map(|i| format!("{i:0100}")).collect();
        let bytes = encode(&big).unwrap();
        assert!(
            decode::<Vec<String>>(&bytes).is_err(),
            "too big for the network decoder"
        );
        assert_eq!(decode_stored::<Vec<String>>(&bytes).unwrap(), big);
        let mut damaged = bytes.clone();
        damaged.truncate(bytes.len() / 2);
        assert!(decode_stored::<Vec<String>>(&damaged).is_err());
    }
}
