//! The engine's unit and property tests.

use super::*;
use crate::reconcile;
use crate::tree;
use crdt::GSet;
use proptest::prelude::*;

type E = Engine<u32, GSet<u64>>;

/// An engine with synced `neighbours`; under `bp-rr-tree` they are its children in a settled
/// tree (links are lazy until then).
fn engine(alg: Algorithm, neighbours: &[u32]) -> E {
    let mut e = Engine::new(Config::new(alg), GSet::default(), 0);
    neighbours.iter().for_each(|&j| e.add_synced_neighbour(j));
    if alg.tree() {
        for &j in neighbours {
            let child = tree::Beacon {
                root: 0,
                epoch: 1,
                dist: 1,
                parent: true,
            };
            e.handle(Input::Received {
                from: j,
                msg: Message::Beacon(child),
            });
        }
        for _ in 0..tree::SETTLE_TICKS {
            e.handle(Input::Tick);
        }
    }
    e
}

/// An engine that catches up by sending the whole state (`reconcile` off).
fn state_catch_up(alg: Algorithm) -> E {
    Engine::new(
        Config {
            reconcile: false,
            ..Config::new(alg)
        },
        GSet::default(),
        0,
    )
}

fn set(xs: &[u64]) -> GSet<u64> {
    xs.iter().copied().collect()
}

fn sends(out: &[Output<u32, GSet<u64>>]) -> Vec<(u32, Message<GSet<u64>>)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { to, msg } => Some((*to, msg.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_local_update_goes_to_every_neighbour_and_is_dropped_once_all_ack() {
    let mut e = engine(Algorithm::BpRr, &[1, 2]);
    let out = e.handle(Input::Update(set(&[7])));
    assert!(matches!(
        &out[..],
        [
            Output::Applied {
                origin: Origin::Local,
                ..
            },
            Output::Event(Event::LocalUpdate { seq: 0 })
        ]
    ));
    let s = sends(&e.handle(Input::Tick));
    assert_eq!(s.len(), 2);
    assert!(s.iter().all(|(_, m)| *m
        == Message::Delta {
            seq: 1,
            group: set(&[7])
        }));
    e.handle(Input::Received {
        from: 1,
        msg: Message::Ack { seq: 1 },
    });
    assert_eq!(e.buffer().len(), 1, "neighbour 2 has not acked yet");
    assert_eq!(e.unacked_groups(&2), 1);
    let out = e.handle(Input::Received {
        from: 2,
        msg: Message::Ack { seq: 1 },
    });
    assert!(e.buffer().is_empty());
    assert_eq!(
        out,
        vec![
            Output::Event(Event::Acked(2)),
            Output::Event(Event::AckedByAll { below: 1 })
        ]
    );
    assert!(
        sends(&e.handle(Input::Tick)).is_empty(),
        "nothing left to send"
    );
}

#[test]
fn unacked_groups_are_resent_until_acked() {
    let mut e = engine(Algorithm::BpRr, &[1]);
    e.handle(Input::Update(set(&[1])));
    e.handle(Input::Tick);
    e.handle(Input::Update(set(&[2])));
    let s = sends(&e.handle(Input::Tick));
    assert_eq!(
        s,
        vec![(
            1,
            Message::Delta {
                seq: 2,
                group: set(&[1, 2])
            }
        )]
    );
}

#[test]
fn bp_keeps_a_group_from_its_origin_and_rr_buffers_only_what_is_new() {
    for alg in Algorithm::ON_THE_WIRE
        .into_iter()
        .filter(|a| *a != Algorithm::State)
    {
        let mut e = engine(alg, &[1, 2]);
        e.handle(Input::Update(set(&[1])));
        e.handle(Input::Tick);
        e.handle(Input::Received {
            from: 1,
            msg: Message::Ack { seq: 1 },
        });
        e.handle(Input::Received {
            from: 2,
            msg: Message::Ack { seq: 1 },
        });
        let out = e.handle(Input::Received {
            from: 1,
            msg: Message::Delta {
                seq: 9,
                group: set(&[1, 5]),
            },
        });
        assert!(sends(&out).contains(&(1, Message::Ack { seq: 9 })));
        let buffered = &e.buffer().iter().last().unwrap().group;
        assert_eq!(
            buffered,
            &if alg.rr() { set(&[5]) } else { set(&[1, 5]) },
            "{alg}"
        );
        let to: Vec<u32> = sends(&e.handle(Input::Tick))
            .into_iter()
            .map(|(to, _)| to)
            .collect();
        assert_eq!(to, if alg.bp() { vec![2] } else { vec![1, 2] }, "{alg}");
    }
}

#[test]
fn a_redundant_group_is_acked_but_not_buffered() {
    let mut e = engine(Algorithm::BpRr, &[1]);
    e.handle(Input::Update(set(&[1, 2])));
    let before = e.buffer().len();
    let out = e.handle(Input::Received {
        from: 1,
        msg: Message::Delta {
            seq: 3,
            group: set(&[2]),
        },
    });
    assert_eq!(sends(&out), vec![(1, Message::Ack { seq: 3 })]);
    assert_eq!(e.buffer().len(), before);
    assert_eq!(e.stats().redundant_groups_received, 1);
}

#[test]
fn a_new_neighbour_is_caught_up_by_one_state_exchange() {
    let mut a = state_catch_up(Algorithm::BpRr);
    let mut b = state_catch_up(Algorithm::BpRr);
    a.handle(Input::Update(set(&[1, 2])));
    b.handle(Input::Update(set(&[3])));
    a.handle(Input::NeighbourUp(2));
    b.handle(Input::NeighbourUp(1));
    // a starts the exchange; b merges a's state, acks it, and answers with what a lacks.
    let s = sends(&a.handle(Input::Tick));
    assert_eq!(
        s,
        vec![(
            2,
            Message::CatchUp {
                seq: 1,
                state: set(&[1, 2])
            }
        )]
    );
    let reply = sends(&b.handle(Input::Received {
        from: 1,
        msg: s[0].1.clone(),
    }));
    assert_eq!(
        reply,
        vec![
            (1, Message::Ack { seq: 1 }),
            (
                1,
                Message::Delta {
                    seq: 2,
                    group: set(&[3])
                }
            )
        ]
    );
    // b does not start a catch-up of its own while its answer is in flight.
    assert!(sends(&b.handle(Input::Tick)).is_empty());
    let mut back = Vec::new();
    for (_, m) in reply {
        back.extend(sends(&a.handle(Input::Received { from: 2, msg: m })));
    }
    for (_, m) in back {
        b.handle(Input::Received { from: 1, msg: m });
    }
    assert_eq!(a.state(), b.state());
    assert_eq!(a.neighbours()[&2].acked, Some(1));
    assert_eq!(b.neighbours()[&1].acked, Some(2));
    // b buffered only what was new to it, tagged with a; a's and b's next ticks send nothing back.
    assert!(sends(&a.handle(Input::Tick)).is_empty());
    assert!(sends(&b.handle(Input::Tick)).is_empty());
}

#[test]
fn a_lost_catch_up_is_retried_after_the_retry_interval() {
    // By state: after `catch_up_retry_ticks`; by reconciliation: after `reconcile_retry_ticks`.
    let mut a = state_catch_up(Algorithm::BpRr);
    a.handle(Input::NeighbourUp(2));
    let retry = a.config().catch_up_retry_ticks;
    let catch_ups: usize = (0..=retry)
        .map(|_| sends(&a.handle(Input::Tick)).len())
        .sum();
    assert_eq!(catch_ups, 2);
    let mut b = engine(Algorithm::BpRr, &[]);
    b.handle(Input::NeighbourUp(2));
    let retry = b.config().reconcile_retry_ticks;
    let openings: Vec<Message<GSet<u64>>> = (0..=retry)
        .flat_map(|_| sends(&b.handle(Input::Tick)))
        .map(|(_, m)| m)
        .collect();
    assert_eq!(openings.len(), 2);
    let session = |m: &Message<GSet<u64>>| match m {
        Message::Reconcile {
            session, round: 0, ..
        } => *session,
        other => panic!("not an opening: {other:?}"),
    };
    assert_ne!(
        session(&openings[0]),
        session(&openings[1]),
        "a retry opens a new exchange"
    );
}

#[test]
fn bogus_acks_and_strangers_change_nothing() {
    let mut e = engine(Algorithm::BpRr, &[1]);
    e.handle(Input::Update(set(&[1])));
    e.handle(Input::Received {
        from: 1,
        msg: Message::Ack { seq: 1_000 },
    });
    assert_eq!(
        e.buffer().len(),
        1,
        "an ack beyond anything sent must not drop data"
    );
    let out = e.handle(Input::Received {
        from: 9,
        msg: Message::Delta {
            seq: 1,
            group: set(&[66]),
        },
    });
    assert!(out.is_empty());
    assert!(!e.state().contains(&66));
    assert_eq!(e.stats().ignored_messages, 1);
}

#[test]
fn a_full_buffer_drops_its_oldest_groups_and_the_laggard_is_caught_up_by_state() {
    let mut e = Engine::new(
        Config {
            max_buffer_groups: 3,
            reconcile: false,
            ..Config::new(Algorithm::BpRr)
        },
        GSet::default(),
        0,
    );
    e.add_synced_neighbour(1);
    for x in 0..5 {
        e.handle(Input::Update(set(&[x])));
    }
    assert_eq!(e.buffer().len(), 3);
    assert_eq!(e.neighbours()[&1].acked, None);
    let s = sends(&e.handle(Input::Tick));
    assert_eq!(
        s,
        vec![(
            1,
            Message::CatchUp {
                seq: 5,
                state: set(&[0, 1, 2, 3, 4])
            }
        )]
    );
}

#[test]
fn a_restarted_engine_ignores_acks_from_before_its_restart() {
    let mut e = Engine::new(Config::new(Algorithm::BpRr), set(&[1]), 100);
    e.add_synced_neighbour(1);
    e.handle(Input::Update(set(&[2])));
    e.handle(Input::Received {
        from: 1,
        msg: Message::Ack { seq: 50 },
    });
    assert_eq!(
        e.buffer().len(),
        1,
        "an ack of a seq numbered before the restart acks nothing new"
    );
}

/// A tree of engines (parent of i is (i−1)/2) with unique elements `origin << 32 | n`: an
/// element can reach i from j's side only through j, so a group i sends j must hold none of them.
fn on_side_of(from: u32, towards: u32, origin: u32) -> bool {
    let in_subtree = |root: u32, mut x: u32| loop {
        if x == root {
            return true;
        }
        if x == 0 {
            return false;
        }
        x = (x - 1) / 2;
    };
    if towards == (from.max(1) - 1) / 2 && from != 0 {
        !in_subtree(from, origin)
    } else {
        in_subtree(towards, origin)
    }
}

proptest! {
    #[test]
    fn bp_never_sends_a_group_back_towards_its_origin(writers in prop::collection::vec(prop::collection::vec(any::<bool>(), 7), 1..12)) {
        let n = 7u32;
        let neighbours = |i: u32| -> Vec<u32> {
            let mut v: Vec<u32> = (0..n).filter(|&c| c != 0 && (c - 1) / 2 == i).collect();
            if i != 0 { v.push((i - 1) / 2) }
            v
        };
        let mut nodes: Vec<E> = (0..n).map(|i| engine(Algorithm::BpRr, &neighbours(i))).collect();
        let mut counter = 0u64;
        for round in writers.iter().chain(std::iter::repeat_n(&vec![false; 7], 6)) {
            let mut queue = std::collections::VecDeque::new();
            for i in 0..n {
                if round[i as usize] {
                    counter += 1;
                    nodes[i as usize].handle(Input::Update(set(&[u64::from(i) << 32 | counter])));
                }
                queue.extend(sends(&nodes[i as usize].handle(Input::Tick)).into_iter().map(|(to, m)| (i, to, m)));
            }
            while let Some((from, to, msg)) = queue.pop_front() {
                if let Message::Delta { group, .. } = &msg {
                    for x in group.iter() {
                        prop_assert!(!on_side_of(from, to, (x >> 32) as u32), "{from} sent {x:#x} back to {to}");
                    }
                }
                queue.extend(sends(&nodes[to as usize].handle(Input::Received { from, msg })).into_iter().map(|(t, m)| (to, t, m)));
            }
        }
        let all = nodes[0].state().clone();
        prop_assert!(nodes.iter().all(|e| e.state() == &all && e.buffer().is_empty()));
    }
}

/// Runs `engines` (a line 0–1–…) until quiet: every tick's messages delivered at once, in order.
fn run_line(engines: &mut [E], rounds: usize) -> Vec<(u32, Event<u32>)> {
    let mut events = Vec::new();
    let mut note = |i: u32, out: &[Output<u32, GSet<u64>>]| {
        for o in out {
            if let Output::Event(ev) = o {
                events.push((i, *ev));
            }
        }
    };
    for _ in 0..rounds {
        for i in 0..engines.len() as u32 {
            let out = engines[i as usize].handle(Input::Tick);
            note(i, &out);
            let mut queue: std::collections::VecDeque<_> =
                sends(&out).into_iter().map(|(to, m)| (i, to, m)).collect();
            while let Some((from, to, msg)) = queue.pop_front() {
                let out = engines[to as usize].handle(Input::Received { from, msg });
                note(to, &out);
                queue.extend(sends(&out).into_iter().map(|(t, m)| (to, t, m)));
            }
        }
    }
    events
}

#[test]
fn every_algorithm_reports_each_local_update_acked_by_all() {
    for alg in Algorithm::ON_THE_WIRE {
        let mut line: Vec<E> = (0..3u32)
            .map(|i| {
                let mut e = Engine::new(
                    Config {
                        rank: u64::from(i),
                        ..Config::new(alg)
                    },
                    GSet::default(),
                    0,
                );
                for j in [i.wrapping_sub(1), i + 1] {
                    if j < 3 {
                        e.handle(Input::NeighbourUp(j));
                    }
                }
                e
            })
            .collect();
        run_line(&mut line, 30); // the tree forms, catch-ups settle
        let mut seqs = Vec::new();
        for x in 0..20 {
            for o in line[0].handle(Input::Update(set(&[x]))) {
                if let Output::Event(Event::LocalUpdate { seq }) = o {
                    seqs.push(seq);
                }
            }
        }
        assert_eq!(seqs.len(), 20, "{alg}");
        let events = run_line(&mut line, 10);
        let below = events
            .iter()
            .filter_map(|(i, ev)| match ev {
                Event::AckedByAll { below } if *i == 0 => Some(*below),
                _ => None,
            })
            .max();
        assert!(
            below.is_some_and(|b| b > *seqs.last().unwrap()),
            "{alg}: every local update acked by all, got {below:?} for {seqs:?}"
        );
        assert_eq!(line[2].state(), line[0].state(), "{alg}");
    }
}

#[test]
fn neighbour_up_and_down_are_reported_once() {
    let mut e = engine(Algorithm::BpRr, &[]);
    assert_eq!(
        e.handle(Input::NeighbourUp(3)),
        vec![Output::Event(Event::NeighbourUp(3))]
    );
    assert!(e.handle(Input::NeighbourUp(3)).is_empty());
    assert_eq!(
        e.handle(Input::NeighbourDown(3)),
        vec![Output::Event(Event::NeighbourDown(3))]
    );
    assert!(e.handle(Input::NeighbourDown(3)).is_empty());
}

/// Delivers `a`'s tick messages to `b` and every answer back and forth until quiet; returns the
/// messages that crossed.
fn exchange(a: &mut E, b: &mut E) -> Vec<Message<GSet<u64>>> {
    let mut crossed = Vec::new();
    let mut queue: std::collections::VecDeque<(u32, Message<GSet<u64>>)> =
        sends(&a.handle(Input::Tick))
            .into_iter()
            .map(|(_, m)| (1, m))
            .collect();
    while let Some((from, msg)) = queue.pop_front() {
        crossed.push(msg.clone());
        let (to, engine) = if from == 1 {
            (2, &mut *b)
        } else {
            (1, &mut *a)
        };
        let out = engine.handle(Input::Received { from, msg });
        queue.extend(sends(&out).into_iter().map(|(_, m)| (to, m)));
        assert!(crossed.len() < 100, "the exchange does not end");
    }
    crossed
}

#[test]
fn a_new_neighbour_is_caught_up_by_reconciliation_in_proportion_to_the_difference() {
    let mut a = engine(Algorithm::BpRr, &[]);
    let mut b = engine(Algorithm::BpRr, &[]);
    let shared: Vec<u64> = (0..5_000).collect();
    a.handle(Input::Update(set(&shared)));
    b.handle(Input::Update(set(&shared)));
    a.handle(Input::Update(set(&[100_001, 100_002])));
    b.handle(Input::Update(set(&[100_003])));
    a.handle(Input::NeighbourUp(2));
    b.handle(Input::NeighbourUp(1));
    let crossed = exchange(&mut a, &mut b);
    assert_eq!(a.state(), b.state());
    assert!(a.state().contains(&100_003) && b.state().contains(&100_001));
    let units: u64 = crossed
        .iter()
        .map(|m| m.payload_units() + m.metadata_units())
        .sum();
    assert!(
        units < 1_000,
        "{units} units for a 3-element difference in 5,003"
    );
    assert_eq!(a.stats().full_state_sends + b.stats().full_state_sends, 0);
    assert!(a.neighbours()[&2].acked.is_some() && b.neighbours()[&1].acked.is_some());
    // Synced both ways: the next ticks send nothing back, and b buffered what came from a as a's.
    assert!(sends(&a.handle(Input::Tick)).is_empty());
    assert!(sends(&b.handle(Input::Tick)).is_empty());
    // Equal states: one fingerprint each way.
    let mut c = engine(Algorithm::BpRr, &[]);
    let mut d = engine(Algorithm::BpRr, &[]);
    c.handle(Input::Update(set(&shared)));
    d.handle(Input::Update(set(&shared)));
    c.handle(Input::NeighbourUp(2));
    d.handle(Input::NeighbourUp(1));
    let crossed = exchange(&mut c, &mut d);
    assert_eq!(
        crossed.len(),
        3,
        "fingerprint, empty answer, ack: {crossed:?}"
    );
}

/// A reconciliation message of session 3 from a peer whose only part is a fingerprint of
/// `(sum, count)` ending at `upper`.
fn fingerprint(
    round: u32,
    sketch: Vec<u64>,
    upper: reconcile::Bound,
    (sum, count): (u128, u64),
) -> Message<GSet<u64>> {
    Message::Reconcile {
        session: 3,
        round,
        seq: 1,
        sketch,
        parts: vec![reconcile::Part {
            upper,
            says: reconcile::Says::Fingerprint { sum, count },
        }],
        items: GSet::default(),
    }
}

#[test]
fn a_peer_that_breaks_reconciliation_is_cut_off_and_caught_up_by_state() {
    let mut e = engine(Algorithm::BpRr, &[]);
    e.handle(Input::Update(set(&[1, 2, 3])));
    e.handle(Input::NeighbourUp(9));
    // It opens an exchange (answered), then sends ranges that do not tile the space.
    // As if it held the same: not a dense difference (that would be answered by state).
    let sketch = reconcile::Index::of(&set(&[1, 2, 3])).sketch();
    let opening = fingerprint(0, sketch, reconcile::Bound::END, (0, 3));
    assert_eq!(
        sends(&e.handle(Input::Received {
            from: 9,
            msg: opening
        }))
        .len(),
        1
    );
    let lie = fingerprint(2, vec![], reconcile::Bound(Some(5)), (0, 0));
    let out = e.handle(Input::Received { from: 9, msg: lie });
    assert!(out.contains(&Output::Event(Event::ReconcileAborted(9))));
    assert_eq!(e.stats().reconcile_aborted, 1);
    assert!(matches!(
        &sends(&e.handle(Input::Tick))[..],
        [(9, Message::CatchUp { .. })]
    ));
}

#[test]
fn when_both_sides_open_at_once_one_exchange_goes_on() {
    let mut a = engine(Algorithm::BpRr, &[]);
    let mut b = engine(Algorithm::BpRr, &[]);
    a.handle(Input::Update(set(&(0..1002).collect::<Vec<_>>())));
    b.handle(Input::Update(set(&(0..1000)
        .chain([5000])
        .collect::<Vec<_>>())));
    a.handle(Input::NeighbourUp(2));
    b.handle(Input::NeighbourUp(1));
    let from_a = sends(&a.handle(Input::Tick));
    let from_b = sends(&b.handle(Input::Tick));
    // Each gets the other's opening: exactly one of them answers.
    let answer_of_b = sends(&b.handle(Input::Received {
        from: 1,
        msg: from_a[0].1.clone(),
    }));
    let answer_of_a = sends(&a.handle(Input::Received {
        from: 2,
        msg: from_b[0].1.clone(),
    }));
    // (The one whose exchange goes on says its opening again, round 0, in case it was lost.)
    let answers = |out: &[(u32, Message<GSet<u64>>)]| {
        out.iter()
            .filter(|(_, m)| matches!(m, Message::Reconcile { round: 1, .. }))
            .count()
    };
    assert_eq!(
        answers(&answer_of_a) + answers(&answer_of_b),
        1,
        "{answer_of_a:?} {answer_of_b:?}"
    );
    // The surviving exchange runs to the join.
    let mut queue: std::collections::VecDeque<(u32, u32, Message<GSet<u64>>)> = answer_of_a
        .into_iter()
        .map(|(_, m)| (1, 2, m))
        .chain(answer_of_b.into_iter().map(|(_, m)| (2, 1, m)))
        .collect();
    while let Some((from, to, msg)) = queue.pop_front() {
        let e = if to == 1 { &mut a } else { &mut b };
        queue.extend(
            sends(&e.handle(Input::Received { from, msg }))
                .into_iter()
                .map(|(t, m)| (to, t, m)),
        );
    }
    assert_eq!(a.state(), b.state());
    assert_eq!(a.state().len(), 1003);
    assert!(sends(&a.handle(Input::Tick)).is_empty() && sends(&b.handle(Input::Tick)).is_empty());
}

#[test]
fn an_exchange_that_will_not_end_is_cut_off() {
    let mut e = Engine::new(
        Config {
            max_reconcile_rounds: 3,
            ..Config::new(Algorithm::BpRr)
        },
        set(&(0..100).collect::<Vec<_>>()),
        0,
    );
    e.handle(Input::NeighbourUp(9));
    // A peer that keeps saying the space differs, forever.
    let sketch = reconcile::Index::of(e.state()).sketch();
    let nag = |round| fingerprint(round, sketch.clone(), reconcile::Bound::END, (7, 100));
    assert_eq!(
        sends(&e.handle(Input::Received {
            from: 9,
            msg: nag(0)
        }))
        .len(),
        1
    );
    // A duplicate is out of turn: ignored, not answered.
    assert!(e
        .handle(Input::Received {
            from: 9,
            msg: nag(0)
        })
        .is_empty());
    let mut aborted = 0;
    for round in 1..5 {
        let out = e.handle(Input::Received {
            from: 9,
            msg: nag(2 * round),
        });
        aborted += out
            .iter()
            .filter(|o| matches!(o, Output::Event(Event::ReconcileAborted(9))))
            .count();
    }
    assert_eq!(aborted, 1);
    assert!(e.neighbours()[&9].full_state);
}

/// A random write of any type, on one of a few keys.
fn store_op(key: u8, what: u8, v: u8) -> (String, crdt::Op) {
    use crdt::{Op, Value};
    let x = Value::from(serde_json::json!(v % 7));
    let field = |f: &str| crdt::doc::Step::Field(f.to_string());
    let op = match what % 13 {
        10 => Op::DocPut(
            vec![field(&format!("f{}", v % 3))],
            serde_json::json!({"s": "ab", "l": [v]}),
        ),
        11 => Op::DocSplice(
            vec![field(&format!("f{}", v % 3)), field("s")],
            1,
            usize::from(v % 2),
            "xy".into(),
        ),
        12 => Op::DocInsert(
            vec![field(&format!("f{}", v % 3)), field("l")],
            0,
            vec![serde_json::json!("z")],
        ),
        0 => Op::GCounterInc(u64::from(v % 3)),
        1 => Op::CounterAdd(i64::from(v % 5) - 2),
        2 => Op::GSetAdd(x),
        3 => Op::TwoPSetAdd(x),
        4 => Op::TwoPSetRemove(x),
        5 => Op::SetAdd(x),
        6 => Op::SetRemove(x),
        7 => Op::LwwSet(x),
        8 => Op::RegisterSet(x),
        _ => Op::MapPut(format!("f{}", v % 3), x),
    };
    let what = if what % 13 >= 10 { 10 } else { what % 13 };
    (format!("k{}-{}", key % 6, what), op)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Two replicas of the whole store, written apart with every type, meet as new neighbours
    /// and reconcile through a link that loses, duplicates and reorders messages: both end with
    /// exactly their join.
    #[test]
    fn reconciling_two_random_stores_over_a_faulty_link_yields_their_join(
        writes in prop::collection::vec((any::<bool>(), any::<u8>(), any::<u8>(), any::<u8>()), 0..120),
        faults in prop::collection::vec(0u8..10, 400),
    ) {
        use crdt::{Lattice, ReplicaId, Store, Writer};
        let mut states = [Store::default(), Store::default()];
        for (side, key, what, v) in writes {
            let i = usize::from(side);
            let w = Writer { replica: ReplicaId(i as u64 + 1), now_ms: u64::from(v) };
            let (k, op) = store_op(key, what, v);
            if let Ok(d) = states[i].apply(&k, op, &w) {
                states[i].join(&d);
            }
        }
        let join = states[0].clone().joined(&states[1]);
        let mut nodes = pair(states);
        let mut fault = faults.into_iter().cycle();
        let mut in_flight: Vec<(u32, u32, Message<Store>)> = Vec::new();
        for _ in 0..200 {
            for i in 0..2u32 {
                for o in nodes[i as usize].handle(Input::Tick) {
                    if let Output::Send { to, msg } = o {
                        in_flight.push((i, to, msg));
                    }
                }
            }
            // Deliver this tick's messages: some lost, some twice, in a shuffled order.
            let mut steps = 0;
            while !in_flight.is_empty() && steps < 500 {
                steps += 1;
                let f = fault.next().unwrap_or(0);
                let pick = usize::from(f) % in_flight.len();
                let (from, to, msg) = in_flight.swap_remove(pick);
                let copies = match f { 0 => 0, 1 => 2, _ => 1 };
                for _ in 0..copies {
                    for o in nodes[to as usize].handle(Input::Received { from, msg: msg.clone() }) {
                        if let Output::Send { to: next, msg } = o {
                            in_flight.push((to, next, msg));
                        }
                    }
                }
            }
            in_flight.clear();
            if nodes.iter().all(|n| n.state() == &join) {
                break;
            }
        }
        prop_assert_eq!(nodes[0].state(), &join);
        prop_assert_eq!(nodes[1].state(), &join);
    }
}

#[test]
fn a_dense_difference_is_caught_up_by_state() {
    // Half of each side differs: the whole state is cheaper than narrowing it down.
    let mut a = engine(Algorithm::BpRr, &[]);
    let mut b = engine(Algorithm::BpRr, &[]);
    a.handle(Input::Update(set(&(0..1000).collect::<Vec<_>>())));
    b.handle(Input::Update(set(&(500..1500).collect::<Vec<_>>())));
    a.handle(Input::NeighbourUp(2));
    b.handle(Input::NeighbourUp(1));
    let crossed = exchange(&mut a, &mut b);
    assert_eq!(a.state(), b.state());
    assert!(crossed.iter().any(|m| matches!(m, Message::CatchUp { .. })));
    assert!(crossed.len() <= 5, "{} messages", crossed.len());
}

#[test]
fn an_empty_neighbour_gets_the_state_in_chunks_for_about_its_size() {
    // Nothing to narrow down on the empty side: its empty id list brings every irreducible, in
    // chunks; the metadata is a few fingerprints, not one per element.
    let mut a = engine(Algorithm::BpRr, &[]);
    let mut b = engine(Algorithm::BpRr, &[]);
    a.handle(Input::Update(set(&(0..10_000).collect::<Vec<_>>())));
    a.handle(Input::NeighbourUp(2));
    b.handle(Input::NeighbourUp(1));
    let crossed = exchange(&mut a, &mut b);
    assert_eq!(a.state(), b.state());
    let payload: u64 = crossed.iter().map(Message::payload_units).sum();
    let metadata: u64 = crossed.iter().map(Message::metadata_units).sum();
    assert_eq!(payload, 10_000, "each element once");
    assert!(metadata < 200, "{metadata} metadata units");
    assert!(crossed.len() <= 10, "{} messages", crossed.len());
}

#[test]
fn many_objects_with_a_few_new_elements_in_two_of_them_cost_kilobytes() {
    use crdt::{Lattice, Op, ReplicaId, Store, Value, Writer};
    // 100 sets of 1,000 elements and one of 20,000; then 20 new elements across two of them.
    let w = Writer {
        replica: ReplicaId(1),
        now_ms: 0,
    };
    let mut shared = Store::default();
    let add = |s: &mut Store, key: &str, x: u64| {
        let d = s
            .apply(key, Op::GSetAdd(Value::from(serde_json::json!(x))), &w)
            .unwrap();
        s.join(&d);
    };
    for k in 0..100 {
        for x in 0..1_000 {
            add(&mut shared, &format!("set-{k}"), x);
        }
    }
    for x in 0..20_000 {
        add(&mut shared, "big", x);
    }
    let mut ahead = shared.clone();
    for x in 0..10 {
        add(&mut ahead, "set-7", 5_000 + x);
        add(&mut ahead, "big", 50_000 + x);
    }
    let mut nodes = pair([ahead, shared]);
    let bytes: usize = rounds(&mut nodes, 5)
        .iter()
        .map(|m| crate::wire::encode(m).unwrap().len())
        .sum();
    assert_eq!(nodes[0].state(), nodes[1].state());
    assert!(bytes <= 16 * 1024, "{bytes} bytes both ways");
    eprintln!("120,000 elements in 101 objects, 20 new in two: {bytes} bytes both ways");
}

/// Delivers messages from `queue` between `nodes` (indexed by peer id) and every answer, until
/// quiet or until `stop` says so of a delivered message; returns what crossed.
fn deliver<L: crdt::Decompose + crdt::Measure + serde::Serialize + Clone>(
    nodes: &mut [Engine<u32, L>],
    mut queue: std::collections::VecDeque<(u32, u32, Message<L>)>,
    stop: impl Fn(u32, &Message<L>) -> bool,
) -> Vec<Message<L>> {
    let mut crossed = Vec::new();
    while let Some((from, to, msg)) = queue.pop_front() {
        crossed.push(msg.clone());
        let stopping = stop(from, &msg);
        let out = nodes[to as usize].handle(Input::Received { from, msg });
        if stopping {
            break;
        }
        for o in out {
            if let Output::Send { to: next, msg } = o {
                queue.push_back((to, next, msg));
            }
        }
        assert!(crossed.len() < 1_000, "the exchange does not end");
    }
    crossed
}

/// Two `bp-rr` engines over `states`, peers 0 and 1, each the other's new neighbour.
fn pair<L: crdt::Decompose + crdt::Measure + serde::Serialize>(
    states: [L; 2],
) -> Vec<Engine<u32, L>> {
    let mut nodes: Vec<Engine<u32, L>> = states
        .into_iter()
        .map(|s| Engine::new(Config::new(Algorithm::BpRr), s, 0))
        .collect();
    nodes[0].handle(Input::NeighbourUp(1));
    nodes[1].handle(Input::NeighbourUp(0));
    nodes
}

/// `n` sync rounds of `nodes`: each ticks, and every message and answer is delivered; returns
/// what crossed.
fn rounds<L: crdt::Decompose + crdt::Measure + serde::Serialize + Clone>(
    nodes: &mut [Engine<u32, L>],
    n: usize,
) -> Vec<Message<L>> {
    let mut crossed = Vec::new();
    for _ in 0..n {
        let mut queue = ticked(nodes, 0);
        queue.extend(ticked(nodes, 1));
        crossed.extend(deliver(nodes, queue, |_, _| false));
    }
    crossed
}

/// Node `i`'s tick messages, as a delivery queue.
fn ticked<L: crdt::Decompose + crdt::Measure + serde::Serialize>(
    nodes: &mut [Engine<u32, L>],
    i: u32,
) -> std::collections::VecDeque<(u32, u32, Message<L>)> {
    nodes[i as usize]
        .handle(Input::Tick)
        .into_iter()
        .filter_map(|o| match o {
            Output::Send { to, msg } => Some((i, to, msg)),
            _ => None,
        })
        .collect()
}

#[test]
fn an_interrupted_exchange_resumes_where_it_stopped() {
    // 2,000 new elements go in chunks (one 64 KiB element among them makes a chunk 128 elements
    // at most); the link drops after the first chunk arrives. Every chunk is merged as it
    // arrives, so the next exchange finds only the rest different and sends only the rest.
    let big = "x".repeat(64 << 10);
    let shared: GSet<String> = (0..20_000).map(|i| format!("{i}")).chain([big]).collect();
    let new: GSet<String> = (0..2_000).map(|i| format!("new {i}")).collect();
    use crdt::Lattice;
    let mut nodes = pair([shared.clone().joined(&new), shared]);
    let queue = ticked(&mut nodes, 0);
    let crossed = deliver(&mut nodes, queue, |from, m| {
        from == 0 && m.payload_units() > 0
    });
    let first = crossed.last().map_or(0, Message::payload_units);
    assert!(
        first > 0 && first < new.len() as u64,
        "a first chunk of {first}"
    );
    for (i, peer) in [(0, 1), (1, 0)] {
        nodes[i].handle(Input::NeighbourDown(peer));
        nodes[i].handle(Input::NeighbourUp(peer));
    }
    let queue = ticked(&mut nodes, 0);
    let crossed = deliver(&mut nodes, queue, |_, _| false);
    assert_eq!(nodes[0].state(), nodes[1].state());
    let second: u64 = crossed.iter().map(Message::payload_units).sum();
    assert_eq!(second, new.len() as u64 - first, "only the rest is sent");
    assert_eq!(
        nodes[0].stats().full_state_sends + nodes[1].stats().full_state_sends,
        0
    );
}

#[test]
fn a_state_larger_than_a_frame_reaches_a_new_neighbour_in_chunks() {
    // 24 MiB of 512 KiB strings (more than the 16 MiB frame) against an empty neighbour, and
    // against one holding a few of them: every message fits a frame; both end with the join.
    use crdt::Lattice;
    let big: GSet<String> = (0..48u8)
        .map(|i| format!("{i:02}{}", "x".repeat(512 << 10)))
        .collect();
    for held in [0usize, 8] {
        let mut nodes = pair([big.clone(), big.iter().take(held).cloned().collect()]);
        let largest = rounds(&mut nodes, 20)
            .iter()
            .map(|m| crate::wire::encode(m).unwrap().len())
            .max()
            .unwrap_or(0);
        assert!(nodes[1].state().leq(nodes[0].state()) && nodes[0].state().leq(nodes[1].state()));
        assert_eq!(nodes[1].state(), &big, "holding {held} first");
        assert!(
            largest <= crate::wire::DEFAULT_MAX_FRAME,
            "a message of {largest} bytes"
        );
        assert_eq!(nodes[0].stats().full_state_sends, 0);
    }
}

/// Under `bp-rr-tree`, a link that rejoins the tree resumes with delta-groups when what it has
/// not acked is small, and is reconciled when it is larger than `resume_limit_units`.
#[test]
fn a_rejoining_tree_link_resumes_a_small_backlog_and_reconciles_a_large_one() {
    for (backlog, resumes) in [(10u64, true), (100, false)] {
        let mut e = engine(Algorithm::BpRrTree, &[1, 2]);
        let beacon = |parent| tree::Beacon {
            root: 0,
            epoch: 1,
            dist: 1,
            parent,
        };
        e.handle(Input::Received {
            from: 1,
            msg: Message::Beacon(beacon(false)),
        });
        e.handle(Input::Tick);
        e.handle(Input::Update((0..backlog).collect()));
        let off_tree = sends(&e.handle(Input::Tick));
        assert!(
            off_tree
                .iter()
                .all(|(to, m)| *to == 2 || matches!(m, Message::Beacon(_))),
            "no data over a lazy link: {off_tree:?}"
        );
        e.handle(Input::Received {
            from: 1,
            msg: Message::Beacon(beacon(true)),
        });
        let to_1: Vec<_> = sends(&e.handle(Input::Tick))
            .into_iter()
            .filter(|(to, _)| *to == 1)
            .map(|(_, m)| m)
            .collect();
        let delta = to_1.iter().any(|m| matches!(m, Message::Delta { .. }));
        let reconcile = to_1.iter().any(|m| matches!(m, Message::Reconcile { .. }));
        assert_eq!(
            (delta, reconcile),
            (resumes, !resumes),
            "backlog {backlog}: {to_1:?}"
        );
    }
}

/// Under `bp-rr-tree`, an exchange under way runs to its end when its link leaves the tree
/// midway (a busy root that missed its beacons, a root changing): nothing is sent twice and no
/// new exchange opens.
#[test]
fn an_exchange_under_way_survives_its_link_leaving_the_tree() {
    use crdt::Lattice;
    use std::collections::VecDeque;
    // 2,000 new elements go in chunks of at most 128 (one 64 KiB element is among the shared).
    let big = "x".repeat(64 << 10);
    let shared: GSet<String> = (0..20_000).map(|i| format!("{i}")).chain([big]).collect();
    let new: GSet<String> = (0..2_000).map(|i| format!("new {i}")).collect();
    let config = |rank| Config {
        rank,
        ..Config::new(Algorithm::BpRrTree)
    };
    let mut nodes: Vec<Engine<u32, GSet<String>>> = [shared.clone().joined(&new), shared]
        .into_iter()
        .enumerate()
        .map(|(i, s)| Engine::new(config(10 * (i as u64 + 1)), s, 0))
        .collect();
    nodes[0].handle(Input::NeighbourUp(1));
    nodes[1].handle(Input::NeighbourUp(0));
    // Node 0 (rank 10) becomes the root: only beacons cross until the link is on both sides'
    // tree (the openings before are lost; they are sent again).
    for _ in 0..10 {
        let mut queue = ticked(&mut nodes, 0);
        queue.extend(ticked(&mut nodes, 1));
        for (from, to, msg) in queue {
            if matches!(msg, Message::Beacon(_)) {
                nodes[to as usize].handle(Input::Received { from, msg });
            }
        }
    }
    assert!(!nodes[0].neighbours()[&1].is_lazy() && !nodes[1].neighbours()[&0].is_lazy());
    // Sync until a first chunk of items reaches node 1.
    let mut queue: VecDeque<(u32, u32, Message<GSet<String>>)> = VecDeque::new();
    let mut payload = 0;
    for _ in 0..50 {
        if queue.is_empty() {
            queue.extend(ticked(&mut nodes, 0));
            queue.extend(ticked(&mut nodes, 1));
        }
        let (from, to, msg) = queue.pop_front().unwrap();
        payload += msg.payload_units();
        let first_chunk = from == 0 && msg.payload_units() > 0;
        for o in nodes[to as usize].handle(Input::Received { from, msg }) {
            if let Output::Send { to: next, msg } = o {
                queue.push_back((to, next, msg));
            }
        }
        if first_chunk {
            break;
        }
    }
    assert!(
        payload > 0 && payload < new.len() as u64,
        "chunks of {payload} so far"
    );
    // Node 1 hears of a lower root behind node 0: its root changes, so the link leaves its tree
    // for SETTLE_TICKS (it comes back once node 0's beacons say otherwise).
    let lower = tree::Beacon {
        root: 1,
        epoch: 1,
        dist: 1,
        parent: false,
    };
    nodes[1].handle(Input::Received {
        from: 0,
        msg: Message::Beacon(lower),
    });
    queue.extend(ticked(&mut nodes, 1));
    let mut openings = 0;
    for _ in 0..200 {
        if queue.is_empty() {
            queue.extend(ticked(&mut nodes, 0));
            queue.extend(ticked(&mut nodes, 1));
        }
        let Some((from, to, msg)) = queue.pop_front() else {
            break;
        };
        payload += msg.payload_units();
        if matches!(msg, Message::Reconcile { round: 0, .. }) {
            openings += 1;
        }
        for o in nodes[to as usize].handle(Input::Received { from, msg }) {
            if let Output::Send { to: next, msg } = o {
                queue.push_back((to, next, msg));
            }
        }
    }
    assert!(nodes[0].state() == nodes[1].state(), "converged");
    assert_eq!(openings, 0, "no exchange opened again");
    assert_eq!(payload, new.len() as u64, "nothing sent twice");
}

/// A message the shell could not send (over the frame limit) makes the engine catch the peer up
/// by reconciliation, whose messages are bounded, instead of resending the group.
#[test]
fn an_undeliverable_group_is_replaced_by_a_reconciliation() {
    let mut e = engine(Algorithm::BpRr, &[1]);
    e.handle(Input::Update((0..100).collect()));
    let first = sends(&e.handle(Input::Tick));
    assert!(
        matches!(&first[..], [(1, Message::Delta { .. })]),
        "{first:?}"
    );
    e.handle(Input::Undeliverable(1));
    let next = sends(&e.handle(Input::Tick));
    assert!(
        matches!(&next[..], [(1, Message::Reconcile { round: 0, .. })]),
        "{next:?}"
    );
}

/// The frame the fuzzer found (the libFuzzer input is `fuzz/regressions/engine_receive-context-
/// enumeration.bin`; this is its one frame that decodes, in wire version 4): an add-wins set whose
/// causal context claims prefixes near 2⁶⁴. Catch-up indexed the
/// state dot by dot — a capacity-overflow panic from one frame. Now the state is indexed by its
/// pieces (writes and runs), so the frame is merged and every algorithm goes on ticking.
#[test]
fn a_context_claiming_two_to_the_sixty_four_dots_is_merged_without_enumerating_it() {
    let frame =
        include_bytes!("../../../fuzz/regressions/engine_receive-context-enumeration.frame");
    // The contexts it holds are in the encoding of wire version 4 (each dot beyond a gap alone).
    assert_eq!(frame[0], 4);
    let msg: Message<crdt::Store> =
        crdt::codec::decode_stored_in(crdt::codec::Encoding::DotByDot, &frame[1..]).unwrap();
    for algorithm in Algorithm::ON_THE_WIRE {
        let mut e: Engine<u8, crdt::Store> =
            Engine::new(Config::new(algorithm), crdt::Store::default(), 1);
        e.handle(Input::NeighbourUp(1));
        e.handle(Input::Received {
            from: 1,
            msg: msg.clone(),
        });
        for _ in 0..3 {
            e.handle(Input::Tick);
        }
        let mut pieces = 0u64;
        e.state().for_each_piece(&mut |_| pieces += 1);
        assert!(pieces < 100, "{algorithm:?}: {pieces} pieces");
    }
    // And it goes through the wire in the current encoding, about as small as it came.
    let again = crate::wire::encode(&msg).unwrap();
    assert!(again.len() <= frame.len() + 16, "{} bytes", again.len());
    let back: Message<crdt::Store> = crate::wire::decode(&again, 1 << 20).unwrap();
    assert_eq!(back, msg);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Two stores reconcile while both go on writing, a write between any two messages: both
    /// end with everything written. (A piece can change while an exchange is under way — a run
    /// of removed dots grows into a longer one, under another hash — so answers are collected
    /// from the state the index was taken of; collected from the state now, a removal could be
    /// named, never sent, and lost to the peer for good.)
    #[test]
    fn writes_made_while_two_stores_reconcile_reach_both(
        before in prop::collection::vec((any::<bool>(), any::<u8>(), any::<u8>(), any::<u8>()), 0..80),
        during in prop::collection::vec((any::<bool>(), any::<u8>(), any::<u8>(), any::<u8>()), 1..60),
    ) {
        use crdt::{Lattice, ReplicaId, Store, Writer};
        let write = |state: &Store, (side, key, what, v): (bool, u8, u8, u8)| {
            let w = Writer { replica: ReplicaId(u64::from(side) + 1), now_ms: u64::from(v) };
            let (k, op) = store_op(key, what, v);
            state.apply(&k, op, &w).ok()
        };
        let mut states = [Store::default(), Store::default()];
        for step in before {
            let i = usize::from(step.0);
            if let Some(d) = write(&states[i], step) {
                states[i].join(&d);
            }
        }
        let mut all = states[0].clone().joined(&states[1]);
        let mut nodes = pair(states);
        let mut during = during.into_iter();
        let mut in_flight: std::collections::VecDeque<(u32, u32, Message<Store>)> = Default::default();
        for step in 0..4000 {
            if step % 8 == 0 {
                for i in 0..2u32 {
                    for o in nodes[i as usize].handle(Input::Tick) {
                        if let Output::Send { to, msg } = o {
                            in_flight.push_back((i, to, msg));
                        }
                    }
                }
            }
            if let Some(w) = during.next() {
                let i = usize::from(w.0);
                if let Some(d) = write(nodes[i].state(), w) {
                    all.join(&d);
                    nodes[i].handle(Input::Update(d));
                }
            }
            if let Some((from, to, msg)) = in_flight.pop_front() {
                for o in nodes[to as usize].handle(Input::Received { from, msg }) {
                    if let Output::Send { to: next, msg } = o {
                        in_flight.push_back((to, next, msg));
                    }
                }
            }
            if during.len() == 0 && in_flight.is_empty() && nodes.iter().all(|n| n.state() == &all) {
                break;
            }
        }
        prop_assert_eq!(nodes[0].state(), &all);
        prop_assert_eq!(nodes[1].state(), &all);
    }
}
