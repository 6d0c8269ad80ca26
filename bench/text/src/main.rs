//! Real text-editing traces replayed through deltanode's `Text`, yrs (Yjs) and automerge, side
//! by side in one run: replay time, the heap each holds afterwards, the encoded size of the final
//! document and the time to encode it and decode it into a new one, the size of the stream of
//! per-edit deltas (or updates, or changes); and the concurrent
//! traces merged across one replica per agent, checked against the text they must end with.
//!
//! Replay is timed without encoding anything (each edit a transaction of its own in yrs; one
//! change for the lot in automerge, which commits when asked); the delta stream is measured by a
//! second replay that encodes each edit's delta (yrs: each transaction's update; automerge: each
//! edit committed as its own change and saved incrementally).
//!
//! `cargo run --release -- [TRACE.json.gz …]` (from `bench/text`; default: every trace in
//! `data/`). The traces are Joseph Gentle's `editing-traces` (CC BY 4.0; see `data/README.md`).

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, Change, ObjType, ReadDoc, ROOT};
use crdt::{codec, Lattice, ReplicaId, Text};
use serde_json::Value;
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use yrs::updates::decoder::Decode;
use yrs::{GetString, ReadTxn, Text as _, Transact, Update};

/// The system allocator, counting the bytes held.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        HELD.fetch_add(new, Ordering::Relaxed);
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn held() -> usize {
    HELD.load(Ordering::Relaxed)
}

/// One edit: at `pos` (in characters), delete `del`, then insert `ins`.
struct Patch {
    pos: usize,
    del: usize,
    ins: String,
}

struct Txn {
    agent: usize,
    parents: Vec<usize>,
    patches: Vec<Patch>,
}

struct Trace {
    name: String,
    concurrent: bool,
    txns: Vec<Txn>,
    end: String,
}

fn load(path: &str) -> Trace {
    let mut json = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("trace file"))
        .read_to_string(&mut json)
        .expect("gzipped JSON");
    let v: Value = serde_json::from_str(&json).expect("JSON");
    let txns = v["txns"]
        .as_array()
        .expect("txns")
        .iter()
        .map(|t| Txn {
            agent: t["agent"].as_u64().unwrap_or(0) as usize,
            parents: t["parents"]
                .as_array()
                .map(|p| p.iter().map(|i| i.as_u64().unwrap() as usize).collect())
                .unwrap_or_default(),
            patches: t["patches"]
                .as_array()
                .expect("patches")
                .iter()
                .map(|p| Patch {
                    pos: p[0].as_u64().unwrap() as usize,
                    del: p[1].as_u64().unwrap() as usize,
                    ins: p[2].as_str().unwrap().to_string(),
                })
                .collect(),
        })
        .collect();
    Trace {
        name: std::path::Path::new(path)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".json.gz")
            .to_string(),
        concurrent: v["kind"] == "concurrent",
        txns,
        end: v["endContent"].as_str().expect("endContent").to_string(),
    }
}

/// What one library did with a sequential trace.
struct Replay {
    time: Duration,
    held: usize,
    doc_bytes: usize,
    /// Encoding the final document and decoding it into a new one.
    save_load: Duration,
    stream_bytes: usize,
}

fn ours(trace: &Trace, stream_too: bool) -> Replay {
    let before = held();
    let start = Instant::now();
    let (mut text, mut stream) = (Text::default(), 0);
    for p in trace.txns.iter().flat_map(|t| &t.patches) {
        if p.del > 0 {
            let d = text.delete(p.pos, p.del);
            if stream_too {
                stream += codec::encode(&d).unwrap().len();
            }
            text.join(&d);
        }
        if !p.ins.is_empty() {
            let d = text.insert(ReplicaId(1), p.pos, &p.ins);
            if stream_too {
                stream += codec::encode(&d).unwrap().len();
            }
            text.join(&d);
        }
    }
    let time = start.elapsed();
    let _ = text.len(); // The order is built (it is, by the edits).
    let held = held() - before;
    assert_eq!(text.value(), trace.end, "{}: ours", trace.name);
    let start = Instant::now();
    let bytes = codec::encode(&text).unwrap();
    let loaded: Text = codec::decode_stored(&bytes).unwrap();
    let save_load = start.elapsed();
    assert_eq!(loaded, text, "{}: ours, loaded", trace.name);
    Replay {
        time,
        held,
        doc_bytes: bytes.len(),
        save_load,
        stream_bytes: stream,
    }
}

fn yrs_replay(trace: &Trace, stream_too: bool) -> Replay {
    let before = held();
    let start = Instant::now();
    let doc = yrs::Doc::with_client_id(1);
    let text = doc.get_or_insert_text("text");
    let mut stream = 0;
    for p in trace.txns.iter().flat_map(|t| &t.patches) {
        let mut txn = doc.transact_mut();
        if p.del > 0 {
            text.remove_range(&mut txn, p.pos as u32, p.del as u32);
        }
        if !p.ins.is_empty() {
            text.insert(&mut txn, p.pos as u32, &p.ins);
        }
        if stream_too {
            stream += txn.encode_update_v1().len();
        }
    }
    let time = start.elapsed();
    let held = held() - before;
    let txn = doc.transact();
    assert_eq!(text.get_string(&txn), trace.end, "{}: yrs", trace.name);
    let start = Instant::now();
    let bytes = txn.encode_state_as_update_v1(&yrs::StateVector::default());
    let loaded = yrs::Doc::with_client_id(2);
    let loaded_text = loaded.get_or_insert_text("text");
    loaded
        .transact_mut()
        .apply_update(Update::decode_v1(&bytes).unwrap())
        .unwrap();
    let save_load = start.elapsed();
    assert_eq!(loaded_text.get_string(&loaded.transact()), trace.end);
    Replay {
        time,
        held,
        doc_bytes: bytes.len(),
        save_load,
        stream_bytes: stream,
    }
}

fn automerge_replay(trace: &Trace, stream_too: bool) -> Replay {
    let before = held();
    let start = Instant::now();
    let mut doc = AutoCommit::new();
    let text = doc.put_object(ROOT, "text", ObjType::Text).unwrap();
    let mut stream = 0;
    for p in trace.txns.iter().flat_map(|t| &t.patches) {
        doc.splice_text(&text, p.pos, p.del as isize, &p.ins)
            .unwrap();
        if stream_too {
            // Each edit its own change, as a keystroke sent at once would be.
            doc.commit();
            stream += doc.save_incremental().len();
        }
    }
    let time = start.elapsed();
    let held = held() - before;
    assert_eq!(
        doc.text(&text).unwrap(),
        trace.end,
        "{}: automerge",
        trace.name
    );
    let start = Instant::now();
    let bytes = doc.save();
    let loaded = AutoCommit::load(&bytes).unwrap();
    let save_load = start.elapsed();
    assert_eq!(loaded.text(&text).unwrap(), trace.end);
    Replay {
        time,
        held,
        doc_bytes: bytes.len(),
        save_load,
        stream_bytes: stream,
    }
}

/// The transactions a replica lacks of those `parents` and their ancestors, in trace order (so
/// each comes after what it was typed on), marked as `applied` there.
fn lacking(trace: &Trace, applied: &mut [bool], parents: &[usize]) -> Vec<usize> {
    let mut todo: Vec<usize> = parents.to_vec();
    let mut missing = Vec::new();
    while let Some(j) = todo.pop() {
        if !std::mem::replace(&mut applied[j], true) {
            missing.push(j);
            todo.extend(&trace.txns[j].parents);
        }
    }
    missing.sort_unstable();
    missing
}

/// Replays a concurrent trace with deltanode: one replica per agent; each transaction is typed
/// on its agent's replica once it holds everything the transaction was typed on (its parents and
/// their ancestors), and the result is every replica merged. Returns (replay and merge time,
/// merge time alone, the merged text).
fn ours_concurrent(trace: &Trace) -> (Duration, Duration, Text) {
    let start = Instant::now();
    let agents = trace.txns.iter().map(|t| t.agent).max().unwrap_or(0) + 1;
    let mut replicas: Vec<Text> = vec![Text::default(); agents];
    let mut applied: Vec<Vec<bool>> = vec![vec![false; trace.txns.len()]; agents];
    let mut deltas: Vec<Text> = Vec::with_capacity(trace.txns.len());
    for (i, txn) in trace.txns.iter().enumerate() {
        let a = txn.agent;
        for j in lacking(trace, &mut applied[a], &txn.parents) {
            replicas[a].join(&deltas[j]);
        }
        let mut delta = Text::default();
        for p in &txn.patches {
            if p.del > 0 {
                let d = replicas[a].delete(p.pos, p.del);
                replicas[a].join(&d);
                delta.join(&d);
            }
            if !p.ins.is_empty() {
                let d = replicas[a].insert(ReplicaId(a as u64 + 1), p.pos, &p.ins);
                replicas[a].join(&d);
                delta.join(&d);
            }
        }
        applied[a][i] = true;
        deltas.push(delta);
    }
    let merging = Instant::now();
    let mut merged = Text::default();
    for r in &replicas {
        merged.join(r);
    }
    let _ = merged.len();
    (start.elapsed(), merging.elapsed(), merged)
}

/// The same with yrs: one document per agent, each transaction's update kept and applied to an
/// agent's document once it is typed on it.
fn yrs_concurrent(trace: &Trace) -> (Duration, Duration, String) {
    let start = Instant::now();
    let agents = trace.txns.iter().map(|t| t.agent).max().unwrap_or(0) + 1;
    let docs: Vec<yrs::Doc> = (0..agents)
        .map(|a| yrs::Doc::with_client_id(a as u64 + 1))
        .collect();
    let texts: Vec<yrs::TextRef> = docs.iter().map(|d| d.get_or_insert_text("t")).collect();
    let mut applied: Vec<Vec<bool>> = vec![vec![false; trace.txns.len()]; agents];
    let mut updates: Vec<Vec<u8>> = Vec::with_capacity(trace.txns.len());
    for (i, txn) in trace.txns.iter().enumerate() {
        let a = txn.agent;
        let missing = lacking(trace, &mut applied[a], &txn.parents);
        {
            let mut t = docs[a].transact_mut();
            for j in missing {
                t.apply_update(Update::decode_v1(&updates[j]).unwrap())
                    .unwrap();
            }
        }
        let mut t = docs[a].transact_mut();
        for p in &txn.patches {
            if p.del > 0 {
                texts[a].remove_range(&mut t, p.pos as u32, p.del as u32);
            }
            if !p.ins.is_empty() {
                texts[a].insert(&mut t, p.pos as u32, &p.ins);
            }
        }
        updates.push(t.encode_update_v1());
        drop(t);
        applied[a][i] = true;
    }
    let merging = Instant::now();
    let merged = yrs::Doc::with_client_id(0);
    let text = merged.get_or_insert_text("t");
    {
        let mut t = merged.transact_mut();
        for d in &docs {
            let update = d
                .transact()
                .encode_state_as_update_v1(&yrs::StateVector::default());
            t.apply_update(Update::decode_v1(&update).unwrap()).unwrap();
        }
    }
    let s = text.get_string(&merged.transact());
    (start.elapsed(), merging.elapsed(), s)
}

/// The same with automerge: one document per agent, forked from one that holds the text; each
/// transaction one change, applied to an agent's document once it is typed on it.
fn automerge_concurrent(trace: &Trace) -> (Duration, Duration, String) {
    let start = Instant::now();
    let agents = trace.txns.iter().map(|t| t.agent).max().unwrap_or(0) + 1;
    let mut base = AutoCommit::new().with_actor(ActorId::from(vec![0u8]));
    let text = base.put_object(ROOT, "t", ObjType::Text).unwrap();
    base.commit();
    let mut docs: Vec<AutoCommit> = (0..agents)
        .map(|a| base.fork().with_actor(ActorId::from(vec![a as u8 + 1])))
        .collect();
    let mut applied: Vec<Vec<bool>> = vec![vec![false; trace.txns.len()]; agents];
    let mut changes: Vec<Option<Change>> = Vec::with_capacity(trace.txns.len());
    for (i, txn) in trace.txns.iter().enumerate() {
        let a = txn.agent;
        let missing = lacking(trace, &mut applied[a], &txn.parents);
        let have: Vec<Change> = missing.iter().filter_map(|&j| changes[j].clone()).collect();
        docs[a].apply_changes(have).unwrap();
        for p in &txn.patches {
            docs[a]
                .splice_text(&text, p.pos, p.del as isize, &p.ins)
                .unwrap();
        }
        let made = docs[a].commit();
        changes.push(made.and_then(|_| docs[a].get_last_local_change()));
        applied[a][i] = true;
    }
    let merging = Instant::now();
    let mut merged = base.fork();
    for d in &mut docs {
        merged.merge(d).unwrap();
    }
    let s = merged.text(&text).unwrap();
    (start.elapsed(), merging.elapsed(), s)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn kb(b: usize) -> String {
    format!("{:.0} KB", b as f64 / 1000.0)
}

fn main() {
    let mut paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        let mut found: Vec<String> = std::fs::read_dir("data")
            .expect("data/")
            .filter_map(|e| e.ok())
            .map(|e| e.path().to_string_lossy().to_string())
            .filter(|p| p.ends_with(".json.gz"))
            .collect();
        found.sort();
        paths = found;
    }
    println!("| trace | edits | final text | library | replay | heap held | document encoded | save + load | delta stream |");
    println!("|---|---:|---:|---|---:|---:|---:|---:|---:|");
    for path in &paths {
        let trace = load(path);
        let edits: usize = trace.txns.iter().map(|t| t.patches.len()).sum();
        if trace.concurrent {
            let (total, merge, text) = ours_concurrent(&trace);
            assert_eq!(text.value(), trace.end, "{}: ours, merged", trace.name);
            let (ytotal, ymerge, ytext) = yrs_concurrent(&trace);
            assert_eq!(ytext, trace.end, "{}: yrs, merged", trace.name);
            println!(
                "| {} (concurrent, {} agents) | {edits} | {} chars | deltanode | {} (merge {}) | | {} | | |",
                trace.name,
                trace.txns.iter().map(|t| t.agent).max().unwrap_or(0) + 1,
                trace.end.chars().count(),
                ms(total),
                ms(merge),
                kb(codec::encode(&text).unwrap().len()),
            );
            println!(
                "| | | | yrs | {} (merge {}) | | | | |",
                ms(ytotal),
                ms(ymerge)
            );
            let (atotal, amerge, atext) = automerge_concurrent(&trace);
            assert_eq!(atext, trace.end, "{}: automerge, merged", trace.name);
            println!(
                "| | | | automerge | {} (merge {}) | | | | |",
                ms(atotal),
                ms(amerge)
            );
            continue;
        }
        for (name, run) in [
            ("deltanode", ours as fn(&Trace, bool) -> Replay),
            ("yrs", yrs_replay),
            ("automerge", automerge_replay),
        ] {
            // Timed without encoding each edit; the stream is measured by a second replay.
            let mut r = run(&trace, false);
            r.stream_bytes = run(&trace, true).stream_bytes;
            println!(
                "| {} | {edits} | {} chars | {name} | {} | {} | {} | {} | {} |",
                trace.name,
                trace.end.chars().count(),
                ms(r.time),
                kb(r.held),
                kb(r.doc_bytes),
                ms(r.save_load),
                kb(r.stream_bytes),
            );
        }
    }
}
