//! # crdt — delta-state CRDTs with join-decompositions
//!
//! The algebra deltanode replicates: every type is a join-semilattice with an irredundant
//! join-decomposition ⇓x and the minimal delta Δ(a, b) = ⊔{y ∈ ⇓a | y ⋢ b} of Enes et al.,
//! "Efficient Synchronization of State-based CRDTs" (ICDE 2019). Operations are delta-mutators: they
//! return the delta they cause and change nothing; joining that delta into the state applies them.
//! No I/O, no clock: time comes in as an argument.
//!
//! | module | what |
//! |---|---|
//! | [`lattice`] | the `Lattice`, `Decompose` (⇓, Δ, `delta_and_merge`) and `Measure` traits |
//! | [`dot`] | replica ids, dots and the compact causal context |
//! | [`kernel`] | the dot kernel: the one causal store behind the add-wins types |
//! | [`gcounter`], [`pncounter`] | grow-only and increment/decrement counters |
//! | [`gset`], [`twopset`], [`awset`] | grow-only, two-phase and add-wins sets |
//! | [`lww`], [`mvregister`] | last-writer-wins and multi-value registers |
//! | [`ormap`], [`gmap`] | add-wins map of multi-value registers; grow-only map (LWW map) |
//! | [`seq`] | sequences (a Fugue tree): collaborative text and the lists of the `doc` type |
//! | [`doc`] | JSON documents: nested maps, lists and texts as one lattice |
//! | [`value`] | the canonical JSON values users store |
//! | [`resolution`] | a `resolve` write: which type a clashing key keeps |
//! | [`conflict`] | type clashes and concurrent values, as read paths list them |
//! | [`kind`] | the object types, their API names, and the type-clash rule |
//! | [`shared`] | a lattice behind an `Arc`, copied on write: what makes store snapshots cheap |
//! | [`store`] | the store of named objects: one lattice, with typed operations |
//! | [`revert`] | rollback: the compensating operations back to a checkpoint |
//! | [`codec`] | the binary encoding and digests (the only module naming bincode) |
//! | [`error`] | the crate's error type |

#![deny(missing_docs)]

pub mod awset;
pub mod codec;
pub mod conflict;
pub mod doc;
pub mod dot;
pub mod error;
pub mod gcounter;
pub mod gmap;
pub mod gset;
pub mod kernel;
pub mod kind;
pub mod lattice;
pub mod lww;
pub mod mvregister;
pub mod ormap;
pub mod pncounter;
pub mod resolution;
pub mod revert;
pub mod seq;
pub mod shared;
pub mod store;
pub mod twopset;
pub mod value;

#[cfg(test)]
mod laws;

pub use awset::AwSet;
pub use doc::Doc;
pub use dot::{CausalContext, Dot, ReplicaId};
pub use error::CrdtError;
pub use gcounter::GCounter;
pub use gmap::{GMap, LwwMap};
pub use gset::GSet;
pub use kind::Kind;
pub use lattice::{Decompose, Lattice, Measure};
pub use lww::LwwRegister;
pub use mvregister::MvRegister;
pub use ormap::OrMap;
pub use pncounter::PNCounter;
pub use seq::{Seq, Text};
pub use store::{Object, Op, Page, Store, Writer};
pub use twopset::TwoPSet;
pub use value::Value;
