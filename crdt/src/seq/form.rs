//! A sequence's encoding, on the wire and on disk: its items as *runs*, so text typed in one go
//! costs its characters and a few bytes, however long it is.
//!
//! A run is the items `first`, `first + 1`, … of one replica, each after the first the right
//! child of the one before: characters typed one after another, as [`Seq::insert_at`] makes
//! them. Runs are maximal and in dot order; each names its replica by an index into a table of
//! the replicas the sequence names, its first counter by the distance from the end of the run
//! before (of the same replica), and its parent relative to itself when it is the same replica's
//! (typing resumed after a cursor move). The elements of the items that read follow, in dot
//! order — deleted items carry none — then the deleted dots, as runs named the same way, and
//! the items held without an element that are not deleted (a deleted item's place, arrived
//! without its deletion: rare and brief). A form of a kilobyte or more — a whole text, a
//! catch-up, not an edit's delta — is deflated ([`packed`]): text compresses to about a third.
//!
//! Decoding checks what the encoding promises (replicas in order, runs that fit, one element
//! per item that reads) and charges the items it makes against the decoder's budget
//! ([`crate::codec::charge_items`]), so a run claiming 2⁶⁴ deleted items is an error, not an
//! allocation. Records written by builds before runs ([`crate::codec::Encoding::ItemByItem`])
//! list every item with its element, deleted or not: they are read (and written, for tests of
//! the upgrade path, when no element is deleted) in that form.

use super::{Place, Seq};
use crate::codec::{self, Encoding};
use crate::dot::{CausalContext, Dot, ReplicaId};
use serde::de::{DeserializeOwned, Error as _};
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

mod packed;
use packed::Packed;

/// The least encoded form worth deflating, in bytes: since encoding 4, a form that takes at
/// least this many and that deflating makes smaller (a whole text, a catch-up) is written
/// deflated ([`packed`]), others (an edit's delta) plain.
const PACK_FROM: usize = 1_024;

/// The encoded form. `E` is an element as written (`&T`) or read (`T`).
#[derive(Serialize, Deserialize)]
struct Form<E> {
    /// Every replica the runs, their parents and the deleted dots name, in order, once.
    replicas: Vec<ReplicaId>,
    runs: Vec<Run>,
    /// The elements of the items that read, in dot order.
    elements: Vec<E>,
    deleted: Vec<Span>,
    /// Items without an element that are not deleted.
    placed_only: Vec<Span>,
}

/// Items `first..first + len` (see the module docs).
#[derive(Serialize, Deserialize)]
struct Run {
    span: Span,
    /// The first item's parent and side: `2 * kind + right`, where kind 0 is the root, 1 the
    /// same replica `below` counters before `first`, and `2 + i` replica `i` at counter `below`.
    parent: u64,
    below: u64,
}

/// Counters `start..start + len` of one replica: `start` is `skip` past the end of the span
/// before when that one is the same replica's, else `skip` itself.
#[derive(Serialize, Deserialize)]
struct Span {
    replica: u32,
    skip: u64,
    len: u64,
}

/// Turns (replica, first, len) triples, in dot order, into spans and back.
#[derive(Default)]
struct Cursor {
    last: Option<(ReplicaId, u64)>,
}

impl Cursor {
    fn span(&mut self, table: &[ReplicaId], r: ReplicaId, first: u64, len: u64) -> Span {
        let replica = table
            .binary_search(&r)
            .expect("every replica is in the table");
        let skip = match self.last {
            Some((p, end)) if p == r => first - (end + 1),
            _ => first,
        };
        self.last = Some((r, first + (len - 1)));
        Span {
            replica: replica as u32,
            skip,
            len,
        }
    }

    /// The span's replica and first and last counters, if it follows the one before in dot
    /// order and fits in a counter.
    fn read(&mut self, table: &[ReplicaId], span: &Span) -> Result<(ReplicaId, u64, u64), String> {
        let r = *table
            .get(span.replica as usize)
            .ok_or("a run names a replica past the table")?;
        let base = match self.last {
            Some((p, _)) if p > r => return Err("runs out of order".into()),
            Some((p, end)) if p == r => end.checked_add(1).ok_or("a run past the last counter")?,
            _ => 0,
        };
        let first = base
            .checked_add(span.skip)
            .ok_or("a run past the last counter")?;
        let last = span
            .len
            .checked_sub(1)
            .and_then(|n| first.checked_add(n))
            .ok_or("an empty run, or one past the last counter")?;
        self.last = Some((r, last));
        Ok((r, first, last))
    }
}

impl<T: Serialize + Clone + Ord + Debug> Serialize for Seq<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if codec::encoding() < Encoding::SeqRuns {
            return item_by_item(self).map_err(S::Error::custom)?.serialize(s);
        }
        codec::count_items_written(self.items.len());
        // Runs: (first dot, its place, length), in dot order, as the sequence holds them.
        let runs: Vec<(Dot, Place, u64)> = self.items.runs().collect();
        let table: Vec<ReplicaId> = runs
            .iter()
            .flat_map(|(d, place, _)| [Some(d.replica), place.parent.map(|p| p.replica)])
            .flatten()
            .chain(self.deleted.runs().map(|(r, ..)| r))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut cursor = Cursor::default();
        let runs = runs
            .into_iter()
            .map(|(first, place, len)| {
                let (kind, below) = match place.parent {
                    None => (0, 0),
                    Some(p) if p.replica == first.replica && p.counter < first.counter => {
                        (1, first.counter - p.counter)
                    }
                    Some(p) => {
                        let i = table.binary_search(&p.replica).expect("in the table");
                        (2 + i as u64, p.counter)
                    }
                };
                Run {
                    span: cursor.span(&table, first.replica, first.counter, len),
                    parent: 2 * kind + u64::from(place.right),
                    below,
                }
            })
            .collect();
        let mut cursor = Cursor::default();
        let deleted = self
            .deleted
            .runs()
            .map(|(r, a, b)| cursor.span(&table, r, a, b - a + 1))
            .collect();
        let mut cursor = Cursor::default();
        let placed_only = self
            .items
            .iter()
            .filter(|(d, _, ch)| ch.is_none() && !self.deleted.contains(d))
            .map(|(d, ..)| cursor.span(&table, d.replica, d.counter, 1))
            .collect();
        let form = Form {
            elements: self.items.elements().collect(),
            replicas: table,
            runs,
            deleted,
            placed_only,
        };
        if codec::encoding() < Encoding::SeqPacked {
            return form.serialize(s);
        }
        // An edit's delta (a few items) is never worth deflating: not even encoded twice.
        if self.items.len() + self.deleted.units() >= 64 {
            let plain = codec::encode_nested(&form).map_err(S::Error::custom)?;
            if plain.len() >= PACK_FROM {
                let packed = codec::deflate(&plain);
                if packed.len() < plain.len() {
                    return Packed::<&Form<&T>>::Deflated(packed).serialize(s);
                }
            }
        }
        Packed::Plain(&form).serialize(s)
    }
}

impl<'de, T: DeserializeOwned + Clone + Ord + Debug> Deserialize<'de> for Seq<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let form = match codec::encoding() {
            e if e < Encoding::SeqRuns => {
                return from_item_by_item(ItemByItem::deserialize(d)?).map_err(D::Error::custom)
            }
            Encoding::SeqRuns => Form::deserialize(d)?,
            _ => Packed::<Form<T>>::read(d)?,
        };
        from_form(form).map_err(D::Error::custom)
    }
}

fn from_form<T: Clone + Ord + Debug>(form: Form<T>) -> Result<Seq<T>, String> {
    let table = &form.replicas;
    if !table.windows(2).all(|w| w[0] < w[1]) {
        return Err("the replica table is not in order".into());
    }
    let mut seq = Seq::<T>::default();
    let mut cursor = Cursor::default();
    for span in &form.deleted {
        let (r, a, b) = cursor.read(table, span)?;
        if a == 0 {
            return Err("a deleted counter 0".into());
        }
        seq.deleted.insert_run(r, a, b);
    }
    let mut placed_only = CausalContext::new();
    let mut cursor = Cursor::default();
    for span in &form.placed_only {
        let (r, a, b) = cursor.read(table, span)?;
        placed_only.insert_run(r, a, b);
    }
    let mut elements = form.elements.into_iter();
    let mut cursor = Cursor::default();
    for run in &form.runs {
        let (r, first, last) = cursor.read(table, &run.span)?;
        codec::charge_items(last - first + 1)?;
        let right = run.parent % 2 == 1;
        let parent = match run.parent / 2 {
            0 => None,
            1 => Some(Dot::new(
                r,
                first
                    .checked_sub(run.below)
                    .filter(|_| run.below > 0)
                    .ok_or("a parent at or past its child")?,
            )),
            i => Some(Dot::new(
                *table
                    .get((i - 2) as usize)
                    .ok_or("a parent names a replica past the table")?,
                run.below,
            )),
        };
        let mut run = Vec::new();
        for c in first..=last {
            let d = Dot::new(r, c);
            run.push(if seq.deleted.contains(&d) || placed_only.contains(&d) {
                None
            } else {
                Some(
                    elements
                        .next()
                        .ok_or("fewer elements than items that read")?,
                )
            });
        }
        seq.items
            .add_run(Dot::new(r, first), Place { parent, right }, run);
    }
    if elements.next().is_some() {
        return Err("more elements than items that read".into());
    }
    Ok(seq)
}

/// The form of builds before runs: every item with its element, deleted or not.
#[derive(Serialize, Deserialize)]
struct ItemByItem<T> {
    items: BTreeMap<Dot, ItemWithElement<T>>,
    deleted: BTreeSet<Dot>,
}

#[derive(Serialize, Deserialize)]
struct ItemWithElement<T> {
    parent: Option<Dot>,
    right: bool,
    ch: T,
}

fn item_by_item<T: Clone>(seq: &Seq<T>) -> Result<ItemByItem<T>, &'static str> {
    let items = seq
        .items
        .iter()
        .map(|(d, place, ch)| {
            let ch = ch.cloned().ok_or(
                "a deleted element cannot be written in encoding 2 (it kept deleted elements)",
            )?;
            Ok((
                d,
                ItemWithElement {
                    parent: place.parent,
                    right: place.right,
                    ch,
                },
            ))
        })
        .collect::<Result<_, &'static str>>()?;
    Ok(ItemByItem {
        items,
        deleted: seq.deleted.dots().collect(),
    })
}

fn from_item_by_item<T: Clone + Ord + Debug>(old: ItemByItem<T>) -> Result<Seq<T>, String> {
    codec::charge_items(old.items.len() as u64)?;
    let mut seq = Seq::<T> {
        deleted: old.deleted.into_iter().collect(),
        ..Seq::default()
    };
    for (d, i) in old.items {
        let ch = (!seq.deleted.contains(&d)).then_some(i.ch);
        let place = Place {
            parent: i.parent,
            right: i.right,
        };
        seq.items.put(d, place, ch);
    }
    Ok(seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lattice::Lattice;
    use crate::seq::Text;

    fn typed(steps: &[(u64, usize, &str, usize)]) -> Text {
        let mut t = Text::default();
        for &(r, at, s, del) in steps {
            if del > 0 {
                let d = t.delete(at, del);
                t.join(&d);
            } else {
                let d = t.insert(ReplicaId(r), at, s);
                t.join(&d);
            }
        }
        t
    }

    /// A form as the network would send it: plain, or deflated.
    fn sent(form: &Form<char>, deflated: bool) -> Vec<u8> {
        if deflated {
            let plain = codec::encode(form).unwrap();
            codec::encode(&Packed::<&Form<char>>::Deflated(codec::deflate(&plain))).unwrap()
        } else {
            codec::encode(&Packed::Plain(form)).unwrap()
        }
    }

    #[test]
    fn typed_text_costs_its_characters_and_a_few_bytes_a_run() {
        let long = "x".repeat(10_000);
        let t = typed(&[(1, 0, &long, 0), (2, 5_000, "abc", 0), (1, 100, "", 2_000)]);
        let bytes = codec::encode_in(Encoding::SeqRuns, &t).unwrap();
        // 8,000 characters read; three runs of one replica and one of another, one deletion.
        assert!(bytes.len() < 8_000 + 60, "{} bytes", bytes.len());
        assert_eq!(
            codec::decode_stored_in::<Text>(Encoding::SeqRuns, &bytes).unwrap(),
            t
        );
    }

    #[test]
    fn a_large_text_is_deflated_and_an_edit_is_not() {
        let words: String = (0..4_000).map(|i| format!("word{} ", i % 97)).collect();
        let t = typed(&[(1, 0, &words, 0), (2, 700, "inserted", 0), (1, 50, "", 300)]);
        let plain = codec::encode_in(Encoding::SeqRuns, &t).unwrap();
        let packed = codec::encode(&t).unwrap();
        assert!(
            packed.len() * 3 < plain.len(),
            "{} against {}",
            packed.len(),
            plain.len()
        );
        assert_eq!(codec::decode::<Text>(&packed).unwrap(), t);
        assert_eq!(codec::decode_stored::<Text>(&packed).unwrap(), t);
        // An edit's delta: its runs as in encoding 3, the table's count doubled (a byte still).
        let edit = t.insert(ReplicaId(3), 10, "hi");
        let bytes = codec::encode(&edit).unwrap();
        let before = codec::encode_in(Encoding::SeqRuns, &edit).unwrap();
        assert_eq!((bytes[0], &bytes[1..]), (2 * before[0], &before[1..]));
        assert_eq!(codec::decode::<Text>(&bytes).unwrap(), edit);
    }

    #[test]
    fn a_run_sent_in_pieces_is_held_as_one() {
        // "abcd" typed by replica 1, sent as two runs: the second's parent is the first's end.
        let run = |skip, parent, below| Run {
            span: Span {
                replica: 0,
                skip,
                len: 2,
            },
            parent,
            below,
        };
        let pieces = Form {
            replicas: vec![ReplicaId(1)],
            runs: vec![run(1, 1, 0), run(0, 3, 1)],
            elements: vec!['a', 'b', 'c', 'd'],
            deleted: vec![],
            placed_only: vec![],
        };
        let read = codec::decode::<Text>(&sent(&pieces, false)).unwrap();
        assert_eq!(read, Text::default().insert(ReplicaId(1), 0, "abcd"));
        assert_eq!(read.items.runs().count(), 1);
    }

    #[test]
    fn malformed_heads_are_errors_not_allocations() {
        // An odd head other than 1; a table claiming 2⁶² replicas that the input does not hold.
        for (bytes, why) in [
            (codec::encode(&(3u64, vec![1u8])).unwrap(), "head"),
            (codec::encode(&(1u64 << 63)).unwrap(), ""),
        ] {
            let err = codec::decode::<Text>(&bytes).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn packed_forms_that_inflate_too_far_or_not_at_all_are_errors() {
        // 64 MiB and a little of one repeated byte: deflates to about 64 KB.
        let bomb = vec![7u8; codec::DECODE_LIMIT + 1_000];
        let bytes = codec::encode(&Packed::<&Form<char>>::Deflated(codec::deflate(&bomb))).unwrap();
        assert!(bytes.len() < 200_000);
        let err = codec::decode::<Text>(&bytes).unwrap_err().to_string();
        assert!(err.contains("inflates to more than"), "{err}");
        // Not DEFLATE data.
        let bytes = codec::encode(&Packed::<&Form<char>>::Deflated(vec![0xff; 40])).unwrap();
        let err = codec::decode::<Text>(&bytes).unwrap_err().to_string();
        assert!(err.contains("does not inflate"), "{err}");
    }

    #[test]
    fn runs_at_the_ends_of_the_counters_round_trip() {
        let mut t = Text::default();
        for (r, first, s) in [(1, u64::MAX - 1, "ab"), (2, 0, "cd"), (1, 7, "e")] {
            let d = t.insert_at(Dot::new(ReplicaId(r), first), 1, s.chars().collect());
            t.join(&d);
        }
        let d = t.delete(0, 1);
        t.join(&d);
        let bytes = codec::encode(&t).unwrap();
        assert_eq!(codec::decode::<Text>(&bytes).unwrap(), t);
    }

    #[test]
    fn an_encode_counts_the_items_a_decode_will_charge() {
        let t = typed(&[(1, 0, "hello", 0), (2, 5, " world", 0), (1, 0, "", 3)]);
        let both = vec![t.clone(), t];
        let (bytes, items) = codec::encode_counting_items(&both).unwrap();
        assert_eq!(items, 22);
        assert_eq!(bytes, codec::encode(&both).unwrap());
    }

    #[test]
    fn a_run_claiming_more_items_than_the_budget_is_an_error_not_an_allocation() {
        let huge = Form::<char> {
            replicas: vec![ReplicaId(1)],
            runs: vec![Run {
                span: Span {
                    replica: 0,
                    skip: 1,
                    len: u64::MAX - 1,
                },
                parent: 1,
                below: 0,
            }],
            elements: vec![],
            deleted: vec![Span {
                replica: 0,
                skip: 1,
                len: u64::MAX - 1,
            }],
            placed_only: vec![],
        };
        for deflated in [false, true] {
            let err = codec::decode::<Text>(&sent(&huge, deflated))
                .unwrap_err()
                .to_string();
            assert!(err.contains("items"), "{err}");
        }
    }

    #[test]
    fn malformed_forms_are_errors() {
        let run = |replica, skip, len, parent, below| Run {
            span: Span { replica, skip, len },
            parent,
            below,
        };
        // Forms without deleted or element-less items: replicas, runs, elements.
        let form = |replicas: Vec<ReplicaId>, runs: Vec<Run>, elements: Vec<char>| Form {
            replicas,
            runs,
            elements,
            deleted: vec![],
            placed_only: vec![],
        };
        let cases: Vec<(Form<char>, &str)> = vec![
            (
                form(vec![ReplicaId(2), ReplicaId(1)], vec![], vec![]),
                "not in order",
            ),
            (
                form(vec![ReplicaId(1)], vec![run(1, 1, 1, 1, 0)], vec!['a']),
                "past the table",
            ),
            (
                form(vec![ReplicaId(1)], vec![run(0, 1, 2, 1, 0)], vec!['a']),
                "fewer elements",
            ),
            (
                form(vec![ReplicaId(1)], vec![run(0, 1, 1, 1, 0)], vec!['a', 'b']),
                "more elements",
            ),
            (
                form(vec![ReplicaId(1)], vec![run(0, 1, 1, 3, 0)], vec!['a']),
                "at or past its child",
            ),
            (
                form(vec![ReplicaId(1)], vec![run(0, 1, 0, 1, 0)], vec![]),
                "empty run",
            ),
        ];
        for (form, why) in cases {
            for deflated in [false, true] {
                let err = codec::decode::<Text>(&sent(&form, deflated))
                    .unwrap_err()
                    .to_string();
                assert!(err.contains(why), "{err} (expected: {why})");
            }
        }
    }

    #[test]
    fn a_record_from_before_runs_reads_with_its_deleted_elements_dropped() {
        let t = typed(&[(1, 0, "hello", 0), (2, 5, " world", 0)]);
        let old = codec::encode_in(Encoding::ItemByItem, &t).unwrap();
        assert_eq!(
            codec::decode_stored_in::<Text>(Encoding::ItemByItem, &old).unwrap(),
            t
        );
        // As older builds wrote it after a deletion: the deleted elements still there.
        let mut with_deleted = item_by_item(&t).unwrap();
        with_deleted
            .deleted
            .extend([Dot::new(ReplicaId(1), 2), Dot::new(ReplicaId(1), 3)]);
        let old = codec::encode_in(Encoding::ItemByItem, &with_deleted).unwrap();
        let read = codec::decode_stored_in::<Text>(Encoding::ItemByItem, &old).unwrap();
        let gone = t.delete(1, 2);
        assert_eq!(read, t.joined(&gone));
        assert_eq!(read.value(), "hlo world");
        assert!(codec::encode_in(Encoding::ItemByItem, &read).is_err());
    }
}
