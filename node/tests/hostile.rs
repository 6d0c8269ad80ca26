//! A hostile peer: it completes the Noise handshake and speaks `/deltanode/sync/1`, then sends
//! garbage, frames of an unknown wire version or message type, truncated frames, frames over the
//! node's limit, and valid frames with absurd contents. Each must be answered or dropped, counted
//! in the metrics, leave the state as it was (the absurd-but-valid one excepted: it is data), and the
//! node must keep serving.

use crdt::{Lattice, Op, ReplicaId, Store, Writer};
use deltanode::codec::FrameCodec;
use deltanode::network::{self, BehaviourEvent};
use deltanode::node::{Client, Node, NodeConfig};
use futures::StreamExt;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::{identity, Swarm};
use protocol::{wire, Message};
use std::sync::atomic::Ordering;
use std::time::Duration;

const NODE_MAX_FRAME: usize = 64 * 1024;

/// What the node's metrics say about rejected input: (malformed, oversized) frames.
async fn counts(c: &Client) -> (u64, u64) {
    let c = c.snapshot().await.unwrap().peer_counters;
    (c.decode_errors, c.oversized_frames.load(Ordering::Relaxed))
}

/// Sends `frame` and waits for the answer: `Ok(response)` or `Err(())` when the stream failed.
async fn send(
    swarm: &mut Swarm<network::Behaviour>,
    to: libp2p::PeerId,
    frame: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let id: OutboundRequestId = swarm.behaviour_mut().sync.send_request(&to, frame);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let ev = tokio::time::timeout_at(deadline, swarm.select_next_some())
            .await
            .expect("an answer or a failure within 15 s");
        match ev {
            SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            })) if request_id == id => return Ok(response),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(
                request_response::Event::OutboundFailure {
                    request_id, error, ..
                },
            )) if request_id == id => return Err(error.to_string()),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_frames_are_refused_counted_and_change_nothing() {
    let dir = std::env::temp_dir().join(format!("deltanode-hostile-{}", std::process::id()));
    let node = Node::start(NodeConfig {
        max_frame: NODE_MAX_FRAME,
        sync_interval: Duration::from_millis(100),
        ..NodeConfig::local(dir.join("node"))
    })
    .await
    .unwrap();
    let client = node.client();
    client
        .apply(vec![(
            "set".into(),
            Op::SetAdd(serde_json::json!("before").into()),
        )])
        .await
        .unwrap()
        .unwrap();
    let (digest_before, _) = client.state().await.unwrap();

    // The attacker accepts larger frames than the node, so it can send oversized ones.
    let mut evil = network::build(
        identity::Keypair::generate_ed25519(),
        None,
        false,
        FrameCodec::new(1 << 24),
    )
    .unwrap();
    let target = node.peer_id();
    evil.dial(node.listen_addrs()[0].clone()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, evil.select_next_some())
            .await
            .expect("connects")
        {
            SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == target => break,
            _ => {}
        }
    }

    let valid = wire::encode(&Message::<Store>::Ack { seq: 1 }).unwrap();
    let mut unknown_version = valid.clone();
    unknown_version[0] = 0xEE;
    let mut unknown_variant = valid.clone();
    unknown_variant[1] = 0x7F; // the enum tag
    let malformed: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"\x01not a message at all".to_vec()),
        ("unknown wire version", unknown_version),
        ("unknown message type", unknown_variant),
        ("truncated", valid[..1].to_vec()),
        ("trailing bytes", [valid.clone(), vec![0, 1, 2]].concat()),
    ];
    let (decode0, oversized0) = counts(&client).await;
    for (what, frame) in &malformed {
        let answer = send(&mut evil, target, frame.clone()).await;
        assert_eq!(answer, Ok(vec![]), "{what}: answered with an empty frame");
    }
    let (decode1, _) = counts(&client).await;
    assert_eq!(
        decode1 - decode0,
        malformed.len() as u64,
        "every malformed frame counted"
    );

    // Over the node's limit: refused on the length prefix, before the body is read.
    let oversized = vec![0u8; NODE_MAX_FRAME + 1];
    assert!(
        send(&mut evil, target, oversized).await.is_err(),
        "oversized frame refused"
    );
    assert_eq!(
        counts(&client).await.1,
        oversized0 + 1,
        "oversized frame counted"
    );

    let (digest_after, _) = client.state().await.unwrap();
    assert_eq!(
        digest_before, digest_after,
        "no rejected frame changed the state"
    );

    // Valid frames with absurd contents: counters at u64::MAX from two replicas (each written
    // apart: together they pass what a local write may reach). They are data (a neighbour may
    // send any lattice state), so they merge — and nothing overflows or panics.
    let mut absurd = Store::default();
    for r in [1u64 << 60, (1u64 << 60) + 1] {
        let w = Writer {
            replica: ReplicaId(r),
            now_ms: u64::MAX,
        };
        let apart = Store::default();
        absurd.join(&apart.apply("huge", Op::GCounterInc(u64::MAX), &w).unwrap());
        absurd.join(&apart.apply("pn", Op::CounterAdd(i64::MIN), &w).unwrap());
    }
    let frame = wire::encode(&Message::Delta {
        seq: u64::MAX,
        group: absurd,
    })
    .unwrap();
    let answer = send(&mut evil, target, frame)
        .await
        .expect("a valid frame is answered");
    assert!(!answer.is_empty(), "a delta is acked");
    let objects = client
        .read(|v| {
            v.engine
                .state()
                .objects()
                .into_iter()
                .map(|(k, o)| (k.to_string(), o.value()))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap();
    let value = |k: &str| {
        objects
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        value("huge"),
        Some(serde_json::json!(u64::MAX)),
        "saturates at the largest count"
    );
    assert!(value("pn").is_some());

    // Still serving: a local write works and the node answers.
    client
        .apply(vec![(
            "set".into(),
            Op::SetAdd(serde_json::json!("after").into()),
        )])
        .await
        .unwrap()
        .unwrap();
    node.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
