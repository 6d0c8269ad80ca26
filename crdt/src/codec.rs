//! The binary encoding of every replicated value, for the wire, the store on disk and digests.
//! The only module that names the serialisation crate (bincode 2.0.1, pinned), so it can be swapped
//! here, and the compressor (DEFLATE, `miniz_oxide`) that large sequences are packed with.

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
    decode_with(bytes, config(), NETWORK_ITEM_BUDGET, NETWORK_INFLATE_BUDGET)
}

/// Decodes what this node stored itself (a snapshot, a log entry, a checkpoint), which may be
/// larger than anything accepted from the network. The decoder's allocation bound grows with the
/// input, at eight times its size (a state in memory is a few times its encoding): a damaged
/// length prefix still gets an error, not an allocation beyond that. The sequence items it makes
/// are not bounded ([`NETWORK_ITEM_BUDGET`]): they are what the node held.
pub fn decode_stored<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CrdtError> {
    const GIB: usize = 1 << 30;
    match bytes.len().saturating_mul(8) {
        n if n <= DECODE_LIMIT => decode_with(bytes, config(), u64::MAX, u64::MAX),
        n if n <= GIB => decode_with(
            bytes,
            bincode::config::standard().with_limit::<GIB>(),
            u64::MAX,
            u64::MAX,
        ),
        n if n <= 16 * GIB => decode_with(
            bytes,
            bincode::config::standard().with_limit::<{ 16 * GIB }>(),
            u64::MAX,
            u64::MAX,
        ),
        _ => decode_with(
            bytes,
            bincode::config::standard().with_limit::<{ 256 * GIB }>(),
            u64::MAX,
            u64::MAX,
        ),
    }
}

/// The encodings values have had. Durable records and backups name theirs, so a store written
/// by an older build is read in its own and rewritten in the current one once
/// ([`decode_stored_in`]); the network speaks only the current one (the wire version names it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Encoding {
    /// 1: causal contexts with each dot beyond a gap listed alone; stores without documents.
    DotByDot = 1,
    /// 2: causal contexts as runs; sequences item by item, deleted elements with their content.
    ItemByItem = 2,
    /// 3: sequences as runs of items, deleted elements without content.
    SeqRuns = 3,
    /// 4 (current): as 3, a large sequence's runs and elements deflated.
    SeqPacked = 4,
}

impl Encoding {
    /// The one this build writes.
    pub const CURRENT: Encoding = Encoding::SeqPacked;
}

thread_local! {
    /// The encoding values are read and written in: [`Encoding::CURRENT`] but inside
    /// [`decode_stored_in`] and [`encode_in`].
    static ENCODING: std::cell::Cell<Encoding> = const { std::cell::Cell::new(Encoding::CURRENT) };
}

/// The encoding values are being read or written in.
pub(crate) fn encoding() -> Encoding {
    ENCODING.with(|v| v.get())
}

/// Runs `f` with values read and written in `encoding`.
fn with_encoding<R>(encoding: Encoding, f: impl FnOnce() -> R) -> R {
    struct Reset(Encoding);
    impl Drop for Reset {
        fn drop(&mut self) {
            ENCODING.with(|v| v.set(self.0));
        }
    }
    let _reset = Reset(ENCODING.with(|v| v.replace(encoding)));
    f()
}

/// [`decode_stored`] for a record written in `encoding` (by this build or an older one: a store
/// opened after an upgrade rewrites its records in the current one, once).
pub fn decode_stored_in<T: DeserializeOwned>(
    encoding: Encoding,
    bytes: &[u8],
) -> Result<T, CrdtError> {
    with_encoding(encoding, || decode_stored(bytes))
}

/// [`encode`] in `encoding`, as the builds that wrote it did: for tests of the upgrade path.
/// Older encodings list every dot beyond a gap (1) or every item of a sequence (1 and 2) and
/// leave documents out (1), so this is not for states from the network.
pub fn encode_in<T: Serialize>(encoding: Encoding, value: &T) -> Result<Vec<u8>, CrdtError> {
    with_encoding(encoding, || encode(value))
}

thread_local! {
    /// How many more sequence items the decode under way may make ([`charge_items`]).
    static ITEM_BUDGET: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The most sequence items one decode of network input may make: [`DECODE_LIMIT`] over 16
/// (4,194,304). An item costs a few dozen bytes in memory, its order included, but an encoded
/// run of deleted items costs a few bytes however many it claims, so the decoder bounds the items
/// it makes as it bounds allocations. A node's own records ([`decode_stored`]) are not bounded:
/// they hold what it already held.
pub const NETWORK_ITEM_BUDGET: u64 = (DECODE_LIMIT / 16) as u64;

thread_local! {
    /// How many more bytes the decode under way may inflate ([`inflate`]).
    static INFLATE_BUDGET: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The most bytes one decode of network input may inflate, all packed values together: as many
/// as it may read ([`DECODE_LIMIT`]). A node's own records are not bounded.
pub const NETWORK_INFLATE_BUDGET: u64 = DECODE_LIMIT as u64;

/// DEFLATE's level for packed values: its default, which packs real text to about a third in a
/// few milliseconds per 100 KB (BENCHMARKS.md, "Text").
const DEFLATE_LEVEL: u8 = 6;

/// `bytes` deflated (raw DEFLATE, no header).
pub(crate) fn deflate(bytes: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec(bytes, DEFLATE_LEVEL)
}

/// `bytes` inflated, the bytes it makes charged against the decode under way: an error past its
/// budget ([`NETWORK_INFLATE_BUDGET`]), or for what is not DEFLATE data.
pub(crate) fn inflate(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let left = INFLATE_BUDGET.with(|b| b.get());
    let limit = usize::try_from(left).unwrap_or(usize::MAX);
    let out =
        miniz_oxide::inflate::decompress_to_vec_with_limit(bytes, limit).map_err(|e| {
            match e.status {
                miniz_oxide::inflate::TINFLStatus::HasMoreOutput => {
                    format!("inflates to more than one decode may make ({left} bytes left)")
                }
                _ => "a packed value that does not inflate".to_string(),
            }
        })?;
    INFLATE_BUDGET.with(|b| b.set(left - out.len() as u64));
    Ok(out)
}

/// Encodes `value` inside another encode (a packed value's content), in the encoding under way.
pub(crate) fn encode_nested<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| e.to_string())
}

/// Decodes exactly one value filling all of `bytes` inside another decode (a packed value's
/// content, once inflated), under that decode's budgets: its items and inflated bytes are
/// charged to the same, and its allocations are bounded by `bytes` (whose size the inflating
/// already bounded).
pub(crate) fn decode_nested<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match bytes.len() {
        n if n <= DECODE_LIMIT => decode_all(bytes, config()),
        _ => decode_all(
            bytes,
            bincode::config::standard().with_limit::<{ 256 << 30 }>(),
        ),
    }
}

/// Decodes exactly one value filling all of `bytes`, under the decode's budgets as they stand.
fn decode_all<T: DeserializeOwned>(
    bytes: &[u8],
    config: impl bincode::config::Config,
) -> Result<T, String> {
    let (value, read) =
        bincode::serde::decode_from_slice(bytes, config).map_err(|e| e.to_string())?;
    if read != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - read));
    }
    Ok(value)
}

thread_local! {
    /// Sequence items written by the encodes under way ([`encode_counting_items`]).
    static ITEMS_WRITTEN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts `n` sequence items written by the encode under way.
pub(crate) fn count_items_written(n: u64) {
    ITEMS_WRITTEN.with(|c| c.set(c.get().saturating_add(n)));
}

/// Encodes `value`, with how many sequence items it holds: what a receiver's decoder charges
/// against [`NETWORK_ITEM_BUDGET`], so a sender can tell a message no neighbour would take.
pub fn encode_counting_items<T: Serialize>(value: &T) -> Result<(Vec<u8>, u64), CrdtError> {
    let before = ITEMS_WRITTEN.with(|c| c.replace(0));
    let bytes = encode(value);
    let items = ITEMS_WRITTEN.with(|c| c.replace(before));
    Ok((bytes?, items))
}

/// Charges `n` sequence items against the decode under way: an error past its budget.
pub(crate) fn charge_items(n: u64) -> Result<(), String> {
    ITEM_BUDGET.with(|b| {
        let left = b.get();
        if n > left {
            return Err(format!(
                "claims more sequence items than one decode may make ({left} left)"
            ));
        }
        b.set(left - n);
        Ok(())
    })
}

fn decode_with<T: DeserializeOwned>(
    bytes: &[u8],
    config: impl bincode::config::Config,
    items: u64,
    inflated: u64,
) -> Result<T, CrdtError> {
    struct Restore(u64, u64);
    impl Drop for Restore {
        fn drop(&mut self) {
            ITEM_BUDGET.with(|b| b.set(self.0));
            INFLATE_BUDGET.with(|b| b.set(self.1));
        }
    }
    let _restore = Restore(
        ITEM_BUDGET.with(|b| b.replace(items)),
        INFLATE_BUDGET.with(|b| b.replace(inflated)),
    );
    decode_all(bytes, config).map_err(CrdtError::Decode)
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

    /// Inflates each of the blobs it is given, as packed values do.
    #[derive(Debug)]
    struct Inflating(Vec<usize>);

    impl<'de> serde::Deserialize<'de> for Inflating {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            use serde::de::Error as _;
            let blobs: Vec<Vec<u8>> = Vec::deserialize(d)?;
            let sizes = blobs.iter().map(|b| inflate(b).map(|out| out.len()));
            Ok(Inflating(
                sizes.collect::<Result<_, _>>().map_err(D::Error::custom)?,
            ))
        }
    }

    #[test]
    fn one_network_decode_inflates_at_most_its_budget_in_all() {
        let half = deflate(&vec![7u8; DECODE_LIMIT / 2 + 1]);
        let one = encode(&vec![half.clone()]).unwrap();
        assert_eq!(
            decode::<Inflating>(&one).unwrap().0,
            vec![DECODE_LIMIT / 2 + 1]
        );
        // Two halves of the budget in one message: the second is past it.
        let two = encode(&vec![half.clone(), half]).unwrap();
        let err = decode::<Inflating>(&two).unwrap_err().to_string();
        assert!(err.contains("inflates to more than"), "{err}");
        // A node's own record is not bounded.
        assert_eq!(decode_stored::<Inflating>(&two).unwrap().0.len(), 2);
        // Each decode starts with a whole budget.
        assert!(decode::<Inflating>(&one).is_ok());
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
