//! The write path's tests, without a network: commits, replies, the feed, snapshots.

use super::*;
use crate::feed::Backlog;
use crdt::{Lattice, Op, Value};
use protocol::{Algorithm, Config};
use serde_json::json;
use std::path::PathBuf;

/// A replica in a fresh temp dir, with `peer` as a synced neighbour.
fn replica(tag: &str, peer: PeerId) -> (Replica, PathBuf) {
    let dir = std::env::temp_dir().join(format!("deltanode-replica-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rec = Durable::open(&dir).unwrap();
    let mut engine = Engine::new(Config::new(Algorithm::BpRr), rec.state, 1);
    engine.add_synced_neighbour(peer);
    let r = Replica::new(engine, rec.replica, rec.durable, Arc::new(Feed::default()));
    (r, dir)
}

fn write(r: &mut Replica, key: &str, op: Op) -> Result<Vec<ObjectView>, ApplyError> {
    write_with(r, key, op, Return::Auto)
}

fn write_with(
    r: &mut Replica,
    key: &str,
    op: Op,
    ret: Return,
) -> Result<Vec<ObjectView>, ApplyError> {
    let (tx, mut rx) = oneshot::channel();
    r.apply_group(vec![Write {
        ops: vec![(key.to_string(), op)],
        ret,
        reply: tx,
    }]);
    rx.try_recv().expect("answered before apply_group returns")
}

/// Events published after `since`.
fn events_after(r: &Replica, since: u64) -> Vec<Arc<crate::feed::FeedEvent>> {
    match r.feed.subscribe(Some(since)).1 {
        Backlog::Events(evs) => evs,
        Backlog::Reset => vec![],
    }
}

fn el(x: i64) -> Value {
    Value::from(json!(x))
}

#[test]
fn a_write_is_committed_published_once_and_answered_with_the_view() {
    let (mut r, dir) = replica("write", PeerId::random());
    let start = r.feed.subscribe(None).2;
    let views = write(&mut r, "s", Op::SetAdd(el(1))).unwrap();
    assert_eq!(views[0].value.clone().unwrap(), json!([1]));
    assert_eq!(r.durable.log_entries().unwrap(), 1);
    let evs = events_after(&r, start);
    assert_eq!(evs.len(), 1);
    assert_eq!(
        (evs[0].key.as_str(), evs[0].value.as_ref().unwrap().get()),
        ("s", "[1]")
    );
    assert_eq!(r.metrics.counts.local, 1);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_write_that_changes_nothing_commits_nothing_and_answers_the_current_value() {
    let (mut r, dir) = replica("noop", PeerId::random());
    write(&mut r, "s", Op::SetAdd(el(1))).unwrap();
    let (entries, buffered) = (r.durable.log_entries().unwrap(), r.engine.buffer().len());
    let start = r.feed.subscribe(None).2;
    let views = write(&mut r, "s", Op::SetAdd(el(1))).unwrap();
    assert_eq!(
        views[0].value.clone().unwrap(),
        json!([1]),
        "the current value"
    );
    assert_eq!(
        r.durable.log_entries().unwrap(),
        entries,
        "nothing committed"
    );
    assert_eq!(
        r.engine.buffer().len(),
        buffered,
        "nothing buffered for neighbours"
    );
    assert!(events_after(&r, start).is_empty(), "no feed event");
    assert_eq!(
        (r.metrics.counts.local, r.metrics.counts.unchanged_writes),
        (1, 1)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_refused_write_in_a_group_leaves_the_others_committed() {
    let (mut r, dir) = replica("group", PeerId::random());
    write(&mut r, "c", Op::CounterAdd(1)).unwrap();
    let (ok_tx, mut ok_rx) = oneshot::channel();
    let (bad_tx, mut bad_rx) = oneshot::channel();
    let write = |ops, reply| Write {
        ops,
        ret: Return::Auto,
        reply,
    };
    r.apply_group(vec![
        write(vec![("c".into(), Op::SetAdd(el(1)))], bad_tx),
        write(vec![("c".into(), Op::CounterAdd(2))], ok_tx),
    ]);
    assert!(matches!(
        bad_rx.try_recv().unwrap(),
        Err(ApplyError::Crdt(_))
    ));
    assert_eq!(
        ok_rx.try_recv().unwrap().unwrap()[0].value.clone().unwrap(),
        json!(3)
    );
    assert_eq!(r.durable.log_entries().unwrap(), 2);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_remote_group_is_on_disk_before_its_ack_and_a_clash_is_published_as_a_conflict() {
    let peer = PeerId::random();
    let (mut r, dir) = replica("remote", peer);
    write(&mut r, "k", Op::CounterAdd(5)).unwrap();
    // Another replica made "k" a set meanwhile.
    let other = Writer {
        replica: ReplicaId(u64::MAX),
        now_ms: 0,
    };
    let group = Store::default()
        .apply("k", Op::SetAdd(el(7)), &other)
        .unwrap();
    let start = r.feed.subscribe(None).2;
    let sends = r.receive(peer, Message::Delta { seq: 4, group });
    assert_eq!(sends, vec![(peer, Message::Ack { seq: 4 })]);
    assert_eq!(
        r.durable.log_entries().unwrap(),
        2,
        "committed before the ack is handed out"
    );
    let evs = events_after(&r, start);
    let names: Vec<&str> = evs.iter().map(|e| e.event).collect();
    assert_eq!(names, vec!["change", "conflict"]);
    assert_eq!(
        evs[0].value.as_ref().unwrap().get(),
        "5",
        "the rule shows the counter"
    );
    assert!(
        evs[1].value.as_ref().unwrap().get().contains("type_clash"),
        "{}",
        evs[1].value.as_ref().unwrap().get()
    );
    assert_eq!(r.metrics.counts.remote, 1);
    // The other replica settles the clash, keeping the set: the key's view changes here too.
    let mut theirs = r.engine.state().clone();
    let resolve = theirs
        .apply("k", Op::Resolve(crdt::Kind::Set), &other)
        .unwrap();
    theirs.join(&resolve);
    let start = r.feed.subscribe(None).2;
    r.receive(
        peer,
        Message::Delta {
            seq: 5,
            group: resolve,
        },
    );
    let evs = events_after(&r, start);
    assert_eq!(evs.len(), 1, "one change, no conflict left");
    assert_eq!(
        (evs[0].kind, evs[0].value.as_ref().unwrap().get()),
        ("set", "[7]")
    );
    // A stranger's message changes nothing and gets no answer.
    let stranger = Store::default()
        .apply("x", Op::CounterAdd(1), &other)
        .unwrap();
    assert!(r
        .receive(
            PeerId::random(),
            Message::Delta {
                seq: 1,
                group: stranger
            }
        )
        .is_empty());
    assert!(r.engine.state().get("x").is_none());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_snapshot_is_a_copy_that_later_writes_do_not_touch() {
    let peer = PeerId::random();
    let (mut r, dir) = replica("snapshot", peer);
    write(&mut r, "s", Op::SetAdd(el(1))).unwrap();
    let snap = r.snapshot(
        PeerId::random(),
        vec![(peer, PeerView::default())],
        PeerCounters::default(),
    );
    write(&mut r, "s", Op::SetAdd(el(2))).unwrap();
    assert_eq!(snap.state.get("s").unwrap().value(), json!([1]));
    assert_eq!(r.engine.state().get("s").unwrap().value(), json!([1, 2]));
    assert_eq!(
        snap.peers[0].pending_groups, 1,
        "the engine's count of unacked groups"
    );
    assert!(snap.state.leq(r.engine.state()));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_write_into_a_large_object_answers_with_its_size_and_change_not_its_value() {
    let (mut r, dir) = replica("large", PeerId::random());
    let ops: Vec<(String, Op)> = (0..crate::views::SMALL as i64 + 10)
        .map(|i| ("big".to_string(), Op::SetAdd(el(i))))
        .collect();
    let (tx, _rx) = oneshot::channel();
    r.apply_group(vec![Write {
        ops,
        ret: Return::Nothing,
        reply: tx,
    }]);
    let start = r.feed.subscribe(None).2;
    let big = crate::views::SMALL + 10;
    let views = write(&mut r, "big", Op::SetAdd(el(-1))).unwrap();
    assert_eq!(views[0].size, big + 1);
    assert_eq!(views[0].value, None, "no value by default past SMALL");
    assert_eq!(views[0].change, Some(json!({"added": [-1]})));
    let evs = events_after(&r, start);
    assert!(evs[0].value.is_none());
    assert_eq!(evs[0].change.as_ref().unwrap().get(), r#"{"added":[-1]}"#);
    assert_eq!(evs[0].size, Some(big + 1));
    // Asked for, the value comes; on a small object, minimal leaves it out.
    let views = write_with(&mut r, "big", Op::SetAdd(el(-2)), Return::Representation).unwrap();
    assert_eq!(
        views[0].value.as_ref().unwrap().as_array().unwrap().len(),
        big + 2
    );
    let views = write_with(&mut r, "small", Op::SetAdd(el(1)), Return::Minimal).unwrap();
    assert_eq!((views[0].value.is_none(), views[0].size), (true, 1));
    std::fs::remove_dir_all(dir).unwrap();
}
