//! Property-test harness shared by every type's tests: the lattice laws, the decomposition laws, Δ,
//! `delta_and_merge`, delta-mutator minimality, encoding, and convergence of random multi-replica
//! histories delivered in any order. Each type's test module supplies a random delta-mutator and
//! calls [`lattice_laws!`].

use crate::codec;
use crate::dot::ReplicaId;
use crate::lattice::Decompose;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// One step of a random history: `(replica, what, arg)`. `what % 5 == 0` merges the full state of
/// replica `arg`; anything else is a local operation chosen by the type's mutator from `what, arg`.
pub(crate) type Step = (u8, u8, u8);

/// Random histories of up to 40 steps.
pub(crate) fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 0..40)
}

/// Runs `steps` on `n` replicas. Returns their states and every delta each mutator produced,
/// checking on the way that each delta is exactly what its operation caused: Δ(x ⊔ d, x) = d.
pub(crate) fn run_history<L: Decompose>(
    steps: &[Step],
    n: usize,
    mutate: &impl Fn(&L, ReplicaId, u8, u8) -> L,
) -> Result<(Vec<L>, Vec<L>), TestCaseError> {
    let mut states = vec![L::bottom(); n];
    let mut deltas = Vec::new();
    for &(who, what, arg) in steps {
        let i = who as usize % n;
        if what % 5 == 0 {
            let other = states[arg as usize % n].clone();
            states[i].join(&other);
        } else {
            let d = mutate(&states[i], ReplicaId(i as u64 + 1), what, arg);
            let after = states[i].clone().joined(&d);
            prop_assert_eq!(
                after.delta(&states[i]),
                d.clone(),
                "a delta-mutator returned more than its effect"
            );
            states[i] = after;
            deltas.push(d);
        }
    }
    Ok((states, deltas))
}

/// Δ by its definition, materialising ⇓a: the reference the types' fast `delta` is checked against.
pub(crate) fn reference_delta<L: Decompose>(a: &L, b: &L) -> L {
    a.decompose()
        .into_iter()
        .filter(|y| !y.leq(b))
        .fold(L::bottom(), |acc, y| acc.joined(&y))
}

/// Every law on three (reachable) states.
pub(crate) fn check_laws<L: Decompose + Serialize + DeserializeOwned>(
    a: &L,
    b: &L,
    c: &L,
) -> Result<(), TestCaseError> {
    let ab = a.clone().joined(b);
    // Semilattice.
    prop_assert_eq!(&ab, &b.clone().joined(a), "join is not commutative");
    prop_assert_eq!(
        ab.clone().joined(c),
        a.clone().joined(&b.clone().joined(c)),
        "join is not associative"
    );
    prop_assert_eq!(&a.clone().joined(a), a, "join is not idempotent");
    prop_assert_eq!(&L::bottom().joined(a), a, "bottom is not the identity");
    // Order.
    prop_assert_eq!(a.leq(b), &ab == b, "leq disagrees with join");
    prop_assert!(a.leq(&ab) && b.leq(&ab) && L::bottom().leq(a));
    if a.leq(b) && b.leq(a) {
        prop_assert_eq!(
            a,
            b,
            "equal in the order but not as values: representation not canonical"
        );
    }
    // Decomposition: joins back to a, irreducible, irredundant; streamed, the same irreducibles.
    let parts = a.decompose();
    let mut streamed = Vec::new();
    a.for_each_irreducible(&mut |y| streamed.push(y));
    prop_assert_eq!(
        &streamed,
        &parts,
        "for_each_irreducible differs from decompose"
    );
    prop_assert_eq!(
        &parts.iter().fold(L::bottom(), |acc, y| acc.joined(y)),
        a,
        "⊔⇓a ≠ a"
    );
    for (i, y) in parts.iter().enumerate() {
        prop_assert!(!y.is_bottom(), "⊥ in a decomposition");
        prop_assert_eq!(
            y.decompose(),
            vec![y.clone()],
            "an element of ⇓a is not irreducible"
        );
        let others = parts
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .fold(L::bottom(), |acc, (_, z)| acc.joined(z));
        prop_assert!(!y.leq(&others), "an element of ⇓a is redundant");
    }
    // Pieces (for indexing): join back to a, none ⊥, each below a, no more than the irreducibles.
    let mut pieces = Vec::new();
    a.for_each_piece(&mut |y| pieces.push(y));
    prop_assert_eq!(
        &pieces.iter().fold(L::bottom(), |acc, y| acc.joined(y)),
        a,
        "the pieces of a do not join back to a"
    );
    prop_assert!(pieces.iter().all(|y| !y.is_bottom() && y.leq(a)));
    prop_assert!(pieces.len() <= parts.len());
    // Δ: complete, minimal, equal to its definition; delta_and_merge agrees.
    let d = a.delta(b);
    prop_assert_eq!(
        &d,
        &reference_delta(a, b),
        "fast Δ differs from its definition"
    );
    prop_assert_eq!(&b.clone().joined(&d), &ab, "b ⊔ Δ(a, b) ≠ a ⊔ b");
    prop_assert!(d.leq(a));
    for y in d.decompose() {
        prop_assert!(!y.leq(b), "Δ(a, b) holds something b has");
    }
    let mut merged = b.clone();
    let got = merged.delta_and_merge(a);
    prop_assert_eq!(&merged, &ab, "delta_and_merge did not join");
    prop_assert_eq!(&got, &d, "delta_and_merge returned another delta than Δ");
    // Encoding round-trips; digests agree with equality.
    let bytes = codec::encode(a).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(
        &codec::decode::<L>(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?,
        a
    );
    let (da, db) = (codec::digest(a).unwrap(), codec::digest(b).unwrap());
    prop_assert_eq!(da == db, a == b, "digests disagree with equality");
    Ok(())
}

/// Every replica receiving every delta, in its own random order and with duplicates, converges to
/// the join of all the replicas' states.
pub(crate) fn check_convergence<L: Decompose>(
    states: &[L],
    deltas: &[L],
    seed: u64,
) -> Result<(), TestCaseError> {
    let expected = states.iter().fold(L::bottom(), |acc, s| acc.joined(s));
    let mut rng = seed;
    for _ in states {
        let mut order: Vec<usize> = (0..deltas.len()).chain(0..deltas.len() / 2).collect();
        for i in (1..order.len()).rev() {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            order.swap(i, (rng >> 33) as usize % (i + 1));
        }
        let mut x = L::bottom();
        for i in order {
            x.delta_and_merge(&deltas[i]);
        }
        // States also hold merges of each other, which are joins of deltas: so all deltas suffice.
        prop_assert_eq!(&x, &expected, "replicas did not converge");
    }
    Ok(())
}

/// Generates the property tests for one type: laws over states of random 3-replica histories, and
/// convergence of random 3–5-replica histories. `$mutate: Fn(&T, ReplicaId, u8, u8) -> T`.
macro_rules! lattice_laws {
    ($ty:ty, $mutate:expr) => {
        use proptest::prelude::*;
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]
            #[test]
            fn lattice_and_decomposition_laws(steps in $crate::laws::steps()) {
                let (s, _) = $crate::laws::run_history::<$ty>(&steps, 3, &$mutate)?;
                $crate::laws::check_laws(&s[0], &s[1], &s[2])?;
                $crate::laws::check_laws(&s[1], &s[2], &s[0])?;
            }

            #[test]
            fn histories_merged_in_any_order_converge(steps in $crate::laws::steps(), n in 3usize..=5, seed: u64) {
                let (s, d) = $crate::laws::run_history::<$ty>(&steps, n, &$mutate)?;
                $crate::laws::check_convergence(&s, &d, seed)?;
            }
        }
    };
}
pub(crate) use lattice_laws;
