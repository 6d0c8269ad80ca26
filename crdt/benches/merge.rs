//! Join and `delta_and_merge` at 10^3..10^6 elements, side by side with the same merges in the
//! `crdts` crate (rust-crdt): `Orswot` against our `AwSet`, `GSet` against our `GSet`, `GCounter`
//! against our `GCounter`.
//!
//! - `join/*`: merge a full state holding N elements into another holding the same N plus 10 new
//!   ones (state-based sync's merge: cost grows with N for everyone).
//! - `merge_group/*`: merge a 10-element delta-group from another replica into an N-element state
//!   (RR's hot path: ours should cost about the 10, not the N). For `crdts`, the group is an
//!   `Orswot` holding just those 10 adds, the closest thing it has to a delta.
//!
//! Run: `cargo bench -p crdt --bench merge` (`-- merge_group` for one group; `BENCH_MAX=100000`
//! stops at 10^5).

use crdt::{AwSet, Decompose, GCounter as OurGCounter, GSet as OurGSet, Lattice, ReplicaId};
use crdts::{CmRDT, CvRDT, GCounter as TheirGCounter, GSet as TheirGSet, Orswot};
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use std::hint::black_box;
use std::time::{Duration, Instant};

const GROUP: u64 = 10;

/// A benchmark group with this file's settings: 10 samples of 2 s after a 0.5 s warm-up.
fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g
}

fn sizes() -> Vec<u64> {
    let max: u64 = std::env::var("BENCH_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    [1_000, 10_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|n| *n <= max)
        .collect()
}

fn our_set(replica: u64, elems: impl Iterator<Item = u64>) -> AwSet<u64> {
    let mut s = AwSet::default();
    for e in elems {
        let d = s.add(ReplicaId(replica), e);
        s.join(&d);
    }
    s
}

fn their_set(actor: u64, elems: impl Iterator<Item = u64>) -> Orswot<u64, u64> {
    let mut s = Orswot::new();
    for e in elems {
        let op = s.add(e, s.read_ctx().derive_add_ctx(actor));
        s.apply(op);
    }
    s
}

/// Times `merge(state, group k)` over fresh groups. The state is re-cloned (untimed) every
/// `chunk` merges so that it stays within 10% of its nominal size.
fn time_group_merges<S: Clone, G>(
    iters: u64,
    n: u64,
    state: &S,
    group: impl Fn(u64) -> G,
    merge: impl Fn(&mut S, G),
) -> Duration {
    let chunk = (n / 100).max(1);
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let k = chunk.min(iters - done);
        let mut s = state.clone();
        let groups: Vec<G> = (done..done + k).map(&group).collect();
        let start = Instant::now();
        for g in groups {
            merge(&mut s, g);
        }
        total += start.elapsed();
        black_box(&s);
        done += k;
    }
    total
}

/// `group_name`/`ours`: our `join` of a full state, against `crdts`' `merge` of the same data
/// (`theirs`), which takes its argument by value, as its API does.
fn bench_join<O: Lattice, T: CvRDT + Clone>(
    c: &mut Criterion,
    group_name: &str,
    (our_label, their_label): (&str, &str),
    n: u64,
    (ours, ours_plus): (&O, &O),
    (theirs, theirs_plus): (&T, &T),
) {
    let mut g = group(c, group_name);
    g.throughput(Throughput::Elements(n));
    g.bench_with_input(BenchmarkId::new(our_label, n), &n, |b, _| {
        b.iter_batched(
            || ours.clone(),
            |mut s| s.join(black_box(ours_plus)),
            BatchSize::LargeInput,
        )
    });
    g.bench_with_input(BenchmarkId::new(their_label, n), &n, |b, _| {
        b.iter_batched(
            || (theirs.clone(), theirs_plus.clone()),
            |(mut s, other)| s.merge(other),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// `group_name`/`ours`: our `delta_and_merge` of 10-element groups (`our_group(k)`, all fresh)
/// into an N-element state, against `crdts`' `merge` of the same groups (`their_group(k)`).
fn bench_group_merge<O: Decompose, T: CvRDT + Clone>(
    c: &mut Criterion,
    group_name: &str,
    (our_label, their_label): (&str, &str),
    n: u64,
    (ours, our_group): (&O, impl Fn(u64) -> O),
    (theirs, their_group): (&T, impl Fn(u64) -> T),
) {
    let mut g = group(c, group_name);
    g.throughput(Throughput::Elements(GROUP));
    g.bench_with_input(BenchmarkId::new(our_label, n), &n, |b, _| {
        b.iter_custom(|iters| {
            time_group_merges(iters, n, ours, &our_group, |s, grp| {
                black_box(s.delta_and_merge(&grp));
            })
        })
    });
    g.bench_with_input(BenchmarkId::new(their_label, n), &n, |b, _| {
        b.iter_custom(|iters| {
            time_group_merges(iters, n, theirs, &their_group, |s, grp| s.merge(grp))
        })
    });
    g.finish();
}

fn set_benches(c: &mut Criterion) {
    for n in sizes() {
        let ours = our_set(1, 0..n);
        let theirs = their_set(1, 0..n);
        let fresh = move |k: u64| n + k * GROUP..n + (k + 1) * GROUP;

        let ours_plus = ours.clone().joined(&our_set(2, fresh(0)));
        let mut theirs_plus = theirs.clone();
        theirs_plus.merge(their_set(2, fresh(0)));
        bench_join(
            c,
            "join",
            ("deltanode_awset", "crdts_orswot"),
            n,
            (&ours, &ours_plus),
            (&theirs, &theirs_plus),
        );

        // Each group comes from a replica of its own, as groups from many writers do.
        bench_group_merge(
            c,
            "merge_group",
            ("deltanode_awset", "crdts_orswot"),
            n,
            (&ours, |k| our_set(100 + k, fresh(k))),
            (&theirs, |k| their_set(100 + k, fresh(k))),
        );
    }
}

fn counter_benches(c: &mut Criterion) {
    for n in sizes().into_iter().filter(|n| *n <= 100_000) {
        // N replicas' entries, and the same with 10 of them advanced.
        let mut ours = OurGCounter::default();
        let mut theirs = TheirGCounter::new();
        for r in 0..n {
            ours.join(&ours.inc(ReplicaId(r), 1).unwrap());
            theirs.apply(theirs.inc(r));
        }
        let mut ours_plus = ours.clone();
        let mut theirs_plus = theirs.clone();
        for r in 0..GROUP {
            ours_plus.join(&ours_plus.inc(ReplicaId(r), 1).unwrap());
            theirs_plus.apply(theirs_plus.inc(r));
        }
        bench_join(
            c,
            "gcounter_join",
            ("deltanode", "crdts"),
            n,
            (&ours, &ours_plus),
            (&theirs, &theirs_plus),
        );
    }
}

fn their_gset(elems: impl Iterator<Item = u64>) -> TheirGSet<u64> {
    let mut s = TheirGSet::new();
    elems.for_each(|e| s.insert(e));
    s
}

fn gset_benches(c: &mut Criterion) {
    for n in sizes() {
        let ours: OurGSet<u64> = (0..n).collect();
        let theirs = their_gset(0..n);
        let fresh = move |k: u64| n + k * GROUP..n + (k + 1) * GROUP;
        let ours_plus = ours.clone().joined(&fresh(0).collect());
        let mut theirs_plus = theirs.clone();
        theirs_plus.merge(their_gset(fresh(0)));

        bench_join(
            c,
            "gset_join",
            ("deltanode", "crdts"),
            n,
            (&ours, &ours_plus),
            (&theirs, &theirs_plus),
        );

        bench_group_merge(
            c,
            "gset_merge_group",
            ("deltanode", "crdts"),
            n,
            (&ours, |k| fresh(k).collect::<OurGSet<u64>>()),
            (&theirs, |k| their_gset(fresh(k))),
        );
    }
}

criterion_group!(benches, set_benches, gset_benches, counter_benches);
criterion_main!(benches);
