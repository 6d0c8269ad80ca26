//! Heap bytes per element of the sets, ours and the `crdts` crate's, at 10^3..10^6 elements,
//! against the raw size of the elements: 8 bytes for a `u64`; for a [`Value`] (what a node's sets
//! hold) the bytes of its canonical encoding, 18 for the JSON string of a 16-byte word.
//!
//! A counting global allocator reads the live heap before and after building each set, so the
//! figure is what the set really holds, allocator rounding aside. Run:
//! `cargo bench -p crdt --bench memory` (`BENCH_MAX=100000` stops at 10^5).

use crdt::{AwSet, GSet, Lattice, ReplicaId, Value};
use crdts::{CmRDT, GSet as TheirGSet, Orswot};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap bytes held by what `build` returns.
fn heap_of<T>(build: impl FnOnce() -> T) -> usize {
    let before = LIVE.load(Ordering::Relaxed);
    let value = build();
    let after = LIVE.load(Ordering::Relaxed);
    black_box(&value);
    drop(value);
    (after - before).max(0) as usize
}

/// A 16-byte string element, distinct for each `i`, as a node holds it.
fn word(i: u64) -> Value {
    Value::new(&serde_json::Value::String(format!("user:{i:011}")))
}

fn row(kind: &str, n: u64, raw: usize, bytes: usize) {
    println!(
        "| {kind} | {n} | {:.1} | {:.1} | {:.2} |",
        bytes as f64 / n as f64,
        raw as f64 / n as f64,
        bytes as f64 / raw as f64
    );
}

fn main() {
    let max: u64 = std::env::var("BENCH_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let sizes = [1_000u64, 10_000, 100_000, 1_000_000];
    println!("| set | elements | heap bytes / element | raw bytes / element | ÷ raw |");
    println!("|---|---:|---:|---:|---:|");
    for n in sizes.into_iter().filter(|n| *n <= max) {
        let raw_u64 = 8 * n as usize;
        let raw_str = word(0).as_str().len() * n as usize;
        row(
            "deltanode GSet<u64>",
            n,
            raw_u64,
            heap_of(|| (0..n).collect::<GSet<u64>>()),
        );
        row(
            "crdts GSet<u64>",
            n,
            raw_u64,
            heap_of(|| {
                let mut s = TheirGSet::new();
                (0..n).for_each(|i| s.insert(i));
                s
            }),
        );
        row(
            "deltanode AwSet<u64>",
            n,
            raw_u64,
            heap_of(|| {
                let mut s = AwSet::default();
                for i in 0..n {
                    let d = s.add(ReplicaId(i % 16), i);
                    s.join(&d);
                }
                s
            }),
        );
        row(
            "crdts Orswot<u64>",
            n,
            raw_u64,
            heap_of(|| {
                let mut s: Orswot<u64, u64> = Orswot::new();
                for i in 0..n {
                    let op = s.add(i, s.read_ctx().derive_add_ctx(i % 16));
                    s.apply(op);
                }
                s
            }),
        );
        row(
            "deltanode GSet<Value>",
            n,
            raw_str,
            heap_of(|| (0..n).map(word).collect::<GSet<Value>>()),
        );
        row(
            "deltanode AwSet<Value>",
            n,
            raw_str,
            heap_of(|| {
                let mut s = AwSet::default();
                for i in 0..n {
                    let d = s.add(ReplicaId(i % 16), word(i));
                    s.join(&d);
                }
                s
            }),
        );
    }
}
