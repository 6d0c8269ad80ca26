//! What a one-character edit did to a text of N characters, as the change feed reports it
//! (`Seq::splices`): found by rank — the edit's elements looked up in the kept order — side by
//! side with the walk of the whole order it replaced (`Seq::splices_walked`).
//!
//! Run: `cargo bench -p crdt --bench splices`.

use crdt::{Lattice, ReplicaId, Text};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;
use std::time::Duration;

fn splices(c: &mut Criterion) {
    let mut g = c.benchmark_group("splices");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for n in [1_000usize, 10_000, 100_000, 1_000_000] {
        let mut text = Text::default();
        let typed = text.insert(ReplicaId(1), 0, &"x".repeat(n));
        text.join(&typed);
        // One character typed in the middle, then one deleted near it.
        let insert = text.insert(ReplicaId(2), n / 2, "y");
        text.join(&insert);
        let delete = text.delete(n / 3, 1);
        text.join(&delete);
        let edit = insert.joined(&delete);
        assert_eq!(text.splices(&edit), text.splices_walked(&edit));
        g.bench_with_input(BenchmarkId::new("rank", n), &edit, |b, e| {
            b.iter(|| black_box(text.splices(e)))
        });
        g.bench_with_input(BenchmarkId::new("walk", n), &edit, |b, e| {
            b.iter(|| black_box(text.splices_walked(e)))
        });
    }
    g.finish();
}

criterion_group!(benches, splices);
criterion_main!(benches);
