//! What the engine needs of a peer identity: the node uses libp2p's `PeerId`, tests and the
//! simulator `u32`.

use std::fmt::Debug;

/// A peer identity: copied freely, ordered (the engine keeps neighbours in a `BTreeMap`), printable.
pub trait PeerId: Copy + Ord + Debug {}
impl<T: Copy + Ord + Debug> PeerId for T {}
