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

    /// Visits ⇓self one irreducible at a time: what [`Decompose::decompose`] returns, without
    /// holding them all. Containers override it so a large state streams (reconciliation hashes
    /// every irreducible of the state).
    fn for_each_irreducible(&self, f: &mut dyn FnMut(Self)) {
        for y in self.decompose() {
            f(y);
        }
    }

    /// A join-decomposition for indexing a state (reconciliation names each piece by its hash):
    /// pieces whose join is `self`, none ⊥, the same for equal states, and as many as the state
    /// *holds* — not necessarily irreducible. A causal context keeps its dots as runs, so its
    /// irreducibles can outnumber what it holds without bound (one run from a peer may claim 2⁶⁴
    /// dots); a type with such runs yields each run as one piece. The default: the irreducibles.
    fn for_each_piece(&self, f: &mut dyn FnMut(Self)) {
        self.for_each_irreducible(f)
    }

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

/// Whether joining `theirs` entries into a sorted tree of `ours` is cheaper entry by entry
/// (about log₂ `ours` comparisons each) than by one linear merge of both into a new tree.
/// State-based sync joins whole states (merge wins); RR joins small groups (inserts win).
pub(crate) fn inserts_are_cheaper(theirs: usize, ours: usize) -> bool {
    let log = (usize::BITS - ours.leading_zeros()) as usize;
    theirs.saturating_mul(log) < ours + theirs
}

/// Merges two sequences sorted by key (keys unique in each) into one, combining the values of
/// keys in both with `both`. The result is sorted, so a `BTreeMap`/`BTreeSet` collects it by bulk
/// build in linear time.
pub(crate) fn merge_sorted<K: Ord, V>(
    ours: impl IntoIterator<Item = (K, V)>,
    theirs: impl IntoIterator<Item = (K, V)>,
    mut both: impl FnMut(V, V) -> V,
) -> Vec<(K, V)> {
    let mut a = ours.into_iter().peekable();
    let mut b = theirs.into_iter().peekable();
    let mut out = Vec::with_capacity(a.size_hint().0.max(b.size_hint().0));
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some((ka, _)), Some((kb, _))) => match ka.cmp(kb) {
                std::cmp::Ordering::Less => a.next(),
                std::cmp::Ordering::Greater => b.next(),
                std::cmp::Ordering::Equal => {
                    let ((k, va), (_, vb)) = (a.next().expect("peeked"), b.next().expect("peeked"));
                    Some((k, both(va, vb)))
                }
            },
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => return out,
        };
        out.extend(next);
    }
}
