//! The algebra every replicated type implements: a join-semilattice, its irredundant
//! join-decomposition, and the minimal delta Δ(a, b) built from it (Enes et al., ICDE 2019, §III).

use std::fmt::Debug;

/// A join-semilattice with a bottom element.
///
/// Implementations keep a *canonical* representation, so that lattice equality
/// (`a ⊑ b ∧ b ⊑ a`) and `PartialEq` agree; digests rely on it.
pub trait Lattice: Clone + PartialEq + Debug {
    /// The least element ⊥.
    fn bottom() -> Self;

    /// Whether this is ⊥.
    fn is_bottom(&self) -> bool;

    /// `self ← self ⊔ other`.
    fn join(&mut self, other: &Self);

    /// The partial order: `self ⊑ other` (equivalently `self ⊔ other = other`).
    fn leq(&self, other: &Self) -> bool;

    /// `self ⊔ other`, by value.
    fn joined(mut self, other: &Self) -> Self {
        self.join(other);
        self
    }
}

/// A lattice with an irredundant join-decomposition and the minimal delta it induces.
pub trait Decompose: Lattice {
    /// ⇓x: a set of join-irreducible elements whose join is `self`, none of them redundant.
    /// Materialises every irreducible: for tests and small states, never the hot path.
    fn decompose(&self) -> Vec<Self>;

    /// Δ(self, base) = ⊔{y ∈ ⇓self | y ⋢ base}: the smallest part of `self` that `base` lacks.
    /// Types compute it without materialising ⇓self, at a cost proportional to `self`.
    fn delta(&self, base: &Self) -> Self {
        let mut d = Self::bottom();
        for y in self.decompose() {
            if !y.leq(base) {
                d.join(&y);
            }
        }
        d
    }

    /// Joins `received` into `self` and returns what was new: Δ(received, self) before the merge.
    /// This is RR's hot path; it costs about the size of `received`, not of `self`.
    fn delta_and_merge(&mut self, received: &Self) -> Self {
        let d = received.delta(self);
        if !d.is_bottom() {
            self.join(&d);
        }
        d
    }
}

/// Sizes in the paper's units, for the experiments' transmission and memory accounting.
pub trait Measure {
    /// Payload: set elements, counter entries, map entries, register values.
    fn payload_units(&self) -> u64;
    /// Metadata: dots, causal-context entries (sequence numbers and acks are counted by the protocol).
    fn metadata_units(&self) -> u64 {
        0
    }
}
