//! Write latency beside a whole-store reader, side by side in one run:
//!
//! - `alone`: writes, nothing else;
//! - `snapshot reader`: a reader loops over full-state reads the way `GET /v1/state` does them now
//!   (a snapshot taken on the event loop, serialised and digested on a blocking thread);
//! - `on-loop reader`: the same read run on the event loop, as it was before (the older path).
//!
//! The store holds ~50 MB (5,000 maps of 100 fields of 100-byte strings), loaded straight into the
//! data dir before the node starts. Each write is one `counter` increment, acknowledged after its
//! fsync; each case writes for 8 s (`-- --seconds S` to change). Run:
//! `cargo bench -p deltanode --bench write_latency`.

use crdt::{codec, Lattice, Op, ReplicaId, Store, Value, Writer};
use deltanode::node::{Client, Node, NodeConfig};
use deltanode::persist::Durable;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const OBJECTS: usize = 5_000;
const FIELDS: usize = 100;

/// What `GET /v1/state` does with a state: the JSON of every object, and the digest.
fn full_read(state: &Store) -> usize {
    let objects: serde_json::Map<String, serde_json::Value> = state
        .objects()
        .into_iter()
        .map(|(k, o)| {
            (
                k.to_string(),
                serde_json::json!({"type": o.kind().name(), "value": o.value()}),
            )
        })
        .collect();
    let body = serde_json::to_vec(&objects).unwrap();
    body.len() + codec::digest(state).map_or(0, |d| d.len())
}

fn big_state() -> Store {
    let w = Writer {
        replica: ReplicaId(7),
        now_ms: 0,
    };
    let mut state = Store::default();
    let text = "x".repeat(100);
    for o in 0..OBJECTS {
        let key = format!("doc-{o:05}");
        for f in 0..FIELDS {
            let d = state
                .apply(
                    &key,
                    Op::MapPut(format!("f{f:03}"), Value::from(serde_json::json!(text))),
                    &w,
                )
                .unwrap();
            state.join(&d);
        }
    }
    state
}

#[derive(Clone, Copy, PartialEq)]
enum Reader {
    None,
    Snapshot,
    OnLoop,
}

/// Latencies of sequential writes for `window` while `reader` runs; and the reads completed.
async fn measure(c: &Client, window: Duration, reader: Reader) -> (Vec<Duration>, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let task = (reader != Reader::None).then(|| {
        let (c, stop, reads) = (c.clone(), stop.clone(), reads.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match reader {
                    Reader::Snapshot => {
                        let snap = c.snapshot().await.unwrap();
                        tokio::task::spawn_blocking(move || full_read(&snap.state))
                            .await
                            .unwrap();
                    }
                    _ => {
                        c.read(|v| full_read(v.engine.state())).await.unwrap();
                    }
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    // Let the reader get going.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut lat = Vec::new();
    let end = Instant::now() + window;
    while Instant::now() < end {
        let t = Instant::now();
        c.apply(vec![("hits".into(), Op::CounterAdd(1))])
            .await
            .unwrap()
            .unwrap();
        lat.push(t.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = task {
        t.await.unwrap();
    }
    lat.sort();
    (lat, reads.load(Ordering::Relaxed))
}

fn pct(lat: &[Duration], p: f64) -> f64 {
    let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
    lat[i].as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let window = Duration::from_secs_f64(
        args.iter()
            .position(|a| a == "--seconds")
            .and_then(|i| args.get(i + 1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(8.0),
    );
    let dir = std::env::temp_dir().join(format!("deltanode-bench-latency-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let t = Instant::now();
    let state = big_state();
    let bytes = codec::encode(&state).unwrap().len();
    {
        let mut durable = Durable::open(&dir).unwrap().durable;
        durable.compact(&state).unwrap();
    }
    drop(state);
    eprintln!(
        "loaded {:.1} MB in {:.1} s",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let node = Node::start(NodeConfig::local(&dir)).await.unwrap();
    let c = node.client();
    let one = Instant::now();
    c.read(|v| full_read(v.engine.state())).await.unwrap();
    let read_ms = one.elapsed().as_secs_f64() * 1e3;
    println!(
        "store: {OBJECTS} objects, {:.1} MB encoded; one full read: {read_ms:.0} ms",
        bytes as f64 / 1e6
    );
    println!("| reader | writes | p50 ms | p99 ms | max ms | p99 ÷ alone | full reads done |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut alone_p99 = 0.0;
    for (name, reader) in [
        ("alone", Reader::None),
        ("snapshot reader (now)", Reader::Snapshot),
        ("on-loop reader (before)", Reader::OnLoop),
    ] {
        let (lat, reads) = measure(&c, window, reader).await;
        let p99 = pct(&lat, 0.99);
        if reader == Reader::None {
            alone_p99 = p99;
        }
        println!(
            "| {name} | {} | {:.2} | {:.2} | {:.2} | {:.2}× | {reads} |",
            lat.len(),
            pct(&lat, 0.5),
            p99,
            lat.last().unwrap().as_secs_f64() * 1e3,
            p99 / alone_p99,
        );
    }
    node.shutdown().await;
    std::fs::remove_dir_all(dir).unwrap();
}
