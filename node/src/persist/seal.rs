//! Checksummed records. Every value the store writes — log entries, the snapshot, checkpoints —
//! is *sealed*: a marker byte and a CRC-32 of its bytes before them. Damage to the file is then
//! found when a record is read, and refused, never loaded as another state (redb checks its own
//! structure, not the values it holds).

/// The first byte of a sealed record.
const MARKER: u8 = 0xD5;
/// Marker and checksum.
const HEADER: usize = 5;

/// `payload`, sealed.
pub fn seal(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.push(MARKER);
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The payload of a sealed record, or what is wrong with it.
pub fn unseal(record: &[u8]) -> Result<&[u8], &'static str> {
    if record.len() < HEADER || record[0] != MARKER {
        return Err("not a sealed record");
    }
    let (header, payload) = record.split_at(HEADER);
    let sum = u32::from_le_bytes(header[1..].try_into().expect("4 bytes"));
    if crc32fast::hash(payload) != sum {
        return Err("checksum mismatch");
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A sealed record opens to its payload; any one byte changed, or the record cut short,
        /// is refused.
        #[test]
        fn any_damaged_byte_or_truncation_is_refused(
            payload in prop::collection::vec(any::<u8>(), 0..300),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let sealed = seal(&payload);
            prop_assert_eq!(unseal(&sealed), Ok(&payload[..]));
            let i = at.index(sealed.len());
            let mut damaged = sealed.clone();
            damaged[i] ^= flip;
            prop_assert!(unseal(&damaged).is_err());
            prop_assert!(unseal(&sealed[..i]).is_err());
        }
    }
}
