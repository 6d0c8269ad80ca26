//! The event loop: the one task that owns the [`Replica`] (engine, store, feed) and the [`Peers`]
//! (swarm). It only routes: swarm events to the replica through the peers layer, the replica's
//! messages back out, client commands to the replica, ticks to both. No protocol fact lives here.

use crate::client::Command;
use crate::network::BehaviourEvent;
use crate::peers::{PeerEvent, Peers};
use crate::replica::{Replica, WriteGroup};
use libp2p::swarm::SwarmEvent;
use libp2p::PeerId;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Writes committed together with one fsync, at most.
const MAX_GROUP_COMMIT: usize = 256;

pub(crate) struct EventLoop {
    pub(crate) replica: Replica,
    pub(crate) peers: Peers,
    pub(crate) peer_id: PeerId,
    /// Swarm events that came while the node was waiting for its listen addresses.
    pub(crate) early: Vec<SwarmEvent<BehaviourEvent>>,
}

impl EventLoop {
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut shutdown: oneshot::Receiver<()>,
        interval: Duration,
    ) {
        for ev in std::mem::take(&mut self.early) {
            for ev in self.peers.on_swarm_event(ev) {
                self.on_peer_event(ev);
            }
        }
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut exchange = tokio::time::interval(crate::peer_exchange::EXCHANGE_EVERY);
        exchange.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = self.peers.next() => {
                    for ev in self.peers.on_swarm_event(ev) {
                        self.on_peer_event(ev);
                    }
                }
                cmd = commands.recv() => match cmd {
                    Some(cmd) => {
                        // Group commit: every write already queued shares this one's fsync.
                        let (group, other) = drain_writes(cmd, &mut commands, MAX_GROUP_COMMIT);
                        if !group.is_empty() {
                            self.replica.apply_group(group);
                        }
                        if let Some(cmd) = other {
                            self.on_command(cmd);
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    for ev in self.peers.views_tick() {
                        self.on_peer_event(ev);
                    }
                    self.peers.forget();
                    self.peers.redial();
                    let sends = self.replica.tick();
                    self.send(sends, None);
                    let peers = &self.peers;
                    self.replica.record_history(|| peers.bytes_sent_total());
                }
                _ = exchange.tick() => {
                    self.peers.exchange();
                    self.peers.ask_times();
                }
                _ = &mut shutdown => break,
            }
        }
        tracing::info!("node stopped");
    }

    /// Sends the engine's messages; a peer one could not be sent to (over the frame limit) is
    /// reported back to the engine.
    fn send(
        &mut self,
        sends: crate::replica::Sends,
        answering: Option<(
            libp2p::PeerId,
            libp2p::request_response::ResponseChannel<Vec<u8>>,
        )>,
    ) {
        for peer in self.peers.send(sends, answering) {
            self.replica.undeliverable(peer);
        }
    }

    fn on_peer_event(&mut self, ev: PeerEvent) {
        match ev {
            PeerEvent::Up(peer) => self.replica.neighbour_up(peer),
            PeerEvent::Down(peer) => self.replica.neighbour_down(peer),
            PeerEvent::Message { from, msg, answer } => {
                // What was new is on disk before the ack goes back.
                let sends = self.replica.receive(from, *msg);
                self.send(sends, answer.map(|c| (from, c)));
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        let r = &mut self.replica;
        match cmd {
            Command::Apply(write) => r.apply_group(vec![write]),
            Command::Read(f) => {
                let mut view = r.view(self.peer_id);
                view.clock_offsets = self.peers.clock_offsets();
                view.identity_warnings = self.peers.identity_warnings();
                // Neighbours a message was too large for, and that have not acked since.
                view.behind = self
                    .peers
                    .oversized()
                    .into_iter()
                    .filter(|(p, t)| r.last_ack(p).is_none_or(|a| a < *t))
                    .map(|(p, _)| p)
                    .collect();
                f(&view)
            }
            Command::Snapshot(reply) => {
                let _ =
                    reply.send(r.snapshot(self.peer_id, self.peers.views(), self.peers.counters()));
            }
            Command::Sync => {
                let sends = r.tick();
                self.send(sends, None);
            }
            Command::Checkpoint { label, reply } => {
                let _ = reply.send(r.checkpoint(&label));
            }
            Command::Checkpoints { reply } => {
                let _ = reply.send(r.checkpoints());
            }
            Command::CheckpointState { label, reply } => {
                let _ = reply.send(r.checkpoint_state(&label));
            }
            Command::Backup { reply } => {
                let _ = reply.send(r.backup());
            }
            Command::Rollback {
                label,
                partial,
                reply,
            } => {
                let _ = reply.send(r.rollback(&label, partial));
            }
        }
    }
}

/// `first` and the `Apply` commands queued right behind it (up to `max`) as one group, and the
/// first other command met, to run after the group.
fn drain_writes(
    first: Command,
    queue: &mut mpsc::Receiver<Command>,
    max: usize,
) -> (WriteGroup, Option<Command>) {
    let mut group = Vec::new();
    match first {
        Command::Apply(write) => group.push(write),
        other => return (group, Some(other)),
    }
    while group.len() < max {
        match queue.try_recv() {
            Ok(Command::Apply(write)) => group.push(write),
            Ok(other) => return (group, Some(other)),
            Err(_) => break,
        }
    }
    (group, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crdt::Op;

    fn write() -> Command {
        Command::Apply(crate::client::Write {
            ops: vec![("k".into(), Op::CounterAdd(1))],
            ret: Default::default(),
            reply: oneshot::channel().0,
        })
    }

    #[test]
    fn queued_writes_share_a_commit_up_to_the_limit_and_stop_at_another_command() {
        let (tx, mut rx) = mpsc::channel(16);
        for _ in 0..3 {
            tx.try_send(write()).unwrap();
        }
        tx.try_send(Command::Sync).unwrap();
        tx.try_send(write()).unwrap();
        let (group, other) = drain_writes(write(), &mut rx, 10);
        assert_eq!(group.len(), 4);
        assert!(matches!(other, Some(Command::Sync)));
        let (group, other) = drain_writes(Command::Sync, &mut rx, 10);
        assert!(group.is_empty() && matches!(other, Some(Command::Sync)));
        for _ in 0..5 {
            tx.try_send(write()).unwrap();
        }
        let (group, other) = drain_writes(write(), &mut rx, 3);
        assert_eq!((group.len(), other.is_none()), (3, true));
    }
}
