//! A sequence as encoding 4 writes it: its form, or that form deflated.
//!
//! The first value written is a *head*: twice the number of replicas in the form's table, plus
//! one when deflated. A plain form follows it as encoding 3 writes one but for the table's count,
//! which the head holds — so an edit's delta costs not a byte more than before. A deflated one is
//! the form's encoding (with its count) deflated, as bytes, after a head of 1.

use super::Form;
use crate::codec;
use serde::de::{DeserializeOwned, Error as _, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserializer, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;

/// See the module docs. `F` is the form as written (`&Form<&T>`) or read (`Form<T>`).
pub(super) enum Packed<F> {
    Plain(F),
    /// The form's encoding, deflated ([`codec::deflate`]).
    Deflated(Vec<u8>),
}

impl<E: Serialize> Serialize for Packed<&Form<E>> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Packed::Deflated(bytes) => {
                let mut t = s.serialize_tuple(2)?;
                t.serialize_element(&1u64)?;
                t.serialize_element(bytes)?;
                t.end()
            }
            Packed::Plain(form) => {
                let n = form.replicas.len();
                let mut t = s.serialize_tuple(n + 5)?;
                t.serialize_element(&(2 * n as u64))?;
                for r in &form.replicas {
                    t.serialize_element(r)?;
                }
                t.serialize_element(&form.runs)?;
                t.serialize_element(&form.elements)?;
                t.serialize_element(&form.deleted)?;
                t.serialize_element(&form.placed_only)?;
                t.end()
            }
        }
    }
}

impl<E: DeserializeOwned> Packed<Form<E>> {
    /// Reads one, inflating a deflated form (under the decode's budget) and decoding it.
    pub fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Form<E>, D::Error> {
        // The tuple's length is not written: its elements are read as the head says.
        match d.deserialize_tuple(usize::MAX, PackedVisitor(PhantomData))? {
            Packed::Plain(form) => Ok(form),
            Packed::Deflated(bytes) => codec::inflate(&bytes)
                .and_then(|plain| codec::decode_nested(&plain))
                .map_err(D::Error::custom),
        }
    }
}

struct PackedVisitor<E>(PhantomData<E>);

impl<'de, E: DeserializeOwned> Visitor<'de> for PackedVisitor<E> {
    type Value = Packed<Form<E>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence, plain or deflated")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        fn next<'de, T: serde::Deserialize<'de>, A: SeqAccess<'de>>(
            seq: &mut A,
        ) -> Result<T, A::Error> {
            seq.next_element()?
                .ok_or_else(|| A::Error::custom("a sequence cut short"))
        }
        let head: u64 = next(&mut seq)?;
        match head {
            1 => return Ok(Packed::Deflated(next(&mut seq)?)),
            h if h % 2 == 1 => return Err(A::Error::custom("a deflated sequence's head")),
            _ => {}
        }
        // One by one: a forged count ends with the input, having allocated what it held.
        let mut replicas = Vec::new();
        for _ in 0..head / 2 {
            replicas.push(next(&mut seq)?);
        }
        Ok(Packed::Plain(Form {
            replicas,
            runs: next(&mut seq)?,
            elements: next(&mut seq)?,
            deleted: next(&mut seq)?,
            placed_only: next(&mut seq)?,
        }))
    }
}
