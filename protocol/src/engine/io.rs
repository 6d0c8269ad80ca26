//! What goes into the engine and comes out of it: its settings, inputs, outputs, reports, the
//! per-neighbour state it exposes, and its counters.

use crate::algorithm::Algorithm;
use crate::buffer::Origin;
use crate::message::Message;
use std::collections::BTreeMap;

/// Engine settings.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The algorithm (`state`, or one of the delta variants; the simulator's baselines are separate).
    pub algorithm: Algorithm,
    /// Ticks to wait for an answer to a catch-up before sending it again (it may have been lost).
    pub catch_up_retry_ticks: u64,
    /// The most groups buffered. Past it the oldest are dropped and the neighbours that had not acked
    /// them are caught up by state: memory stays bounded when a neighbour stops acking.
    pub max_buffer_groups: usize,
    /// `bp-rr-tree`: this replica's rank, unique in the network; the lowest live rank is the root.
    pub rank: u64,
    /// `bp-rr-tree`: ticks between a root's epochs. Shorter heals a broken tree sooner (a node
    /// that lost its parent waits up to one period) and costs more beacons.
    pub beacon_period_ticks: u64,
    /// Catch neighbours up by reconciliation ([`crate::reconcile`]: in proportion to the
    /// difference) rather than by sending the whole state.
    pub reconcile: bool,
    /// Rounds a reconciliation may take before the peer is cut off (and caught up by state).
    pub max_reconcile_rounds: u32,
    /// Ticks to wait for the next message of a reconciliation before opening a new one (the
    /// other side may be indexing a large state).
    pub reconcile_retry_ticks: u64,
    /// `bp-rr-tree` with `reconcile`: a link that rejoins the tree resumes with the delta-groups
    /// it has not acked only when they hold at most this many payload units; a larger backlog is
    /// caught up by reconciliation instead. While the link was off the tree its far side was fed
    /// through another path, so most of that backlog is what it already holds: resuming sent it
    /// again (on 1,000 nodes with 5% churn, a third of all payload was such repeats).
    pub resume_limit_units: u64,
}

impl Config {
    /// Defaults for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Self {
        Config {
            algorithm,
            catch_up_retry_ticks: 4,
            max_buffer_groups: 10_000,
            rank: 0,
            beacon_period_ticks: 10,
            reconcile: true,
            max_reconcile_rounds: 1_000,
            reconcile_retry_ticks: 10,
            resume_limit_units: 64,
        }
    }
}

/// An input to the engine.
#[derive(Clone, Debug)]
pub enum Input<P, L> {
    /// A local update: the delta a delta-mutator returned for the current state.
    Update(L),
    /// A message from a peer.
    Received {
        /// The sender.
        from: P,
        /// What it sent.
        msg: Message<L>,
    },
    /// A sync interval elapsed.
    Tick,
    /// A neighbour became reachable (new, or back after a partition or restart).
    NeighbourUp(P),
    /// A neighbour became unreachable; it will be caught up by state when it returns.
    NeighbourDown(P),
    /// A message to a neighbour could not be sent (larger than a frame: a delta-group grown while
    /// it did not ack). It is caught up anew instead, by reconciliation, whose messages are
    /// bounded.
    Undeliverable(P),
}

/// What the engine asks its shell to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Output<P, L> {
    /// Send `msg` to `to`.
    Send {
        /// The neighbour.
        to: P,
        /// The message.
        msg: Message<L>,
    },
    /// The state grew by `delta` (persist it, tell watchers).
    Applied {
        /// What is new.
        delta: L,
        /// Where it came from.
        origin: Origin<P>,
    },
    /// Something the shell reports (metrics, logs, views) but need not act on.
    Event(Event<P>),
}

/// What happened inside the engine: the facts the shell turns into metrics and views, so it never
/// re-derives them from the engine's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<P> {
    /// A local update joined the state as number `seq` (numbers grow with every local update).
    LocalUpdate {
        /// Its number; [`Event::AckedByAll`] refers to it.
        seq: u64,
    },
    /// Every neighbour that delta-groups go to (with `bp-rr-tree`, every link on the spanning tree)
    /// now holds every local update numbered below `below`. Reported each time it grows.
    AckedByAll {
        /// The first update number not yet known to be everywhere.
        below: u64,
    },
    /// `peer` acknowledged what we sent it (an ack, or the end of a reconciliation).
    Acked(P),
    /// `peer` became a neighbour.
    NeighbourUp(P),
    /// `peer` stopped being a neighbour.
    NeighbourDown(P),
    /// A reconciliation with `peer` ended: each side holds the other's state (as of the exchange).
    Reconciled(P),
    /// `peer` broke the reconciliation protocol or would not let it end: it was cut off, and will
    /// be caught up by state.
    ReconcileAborted(P),
}

/// Per-neighbour sync state.
#[derive(Clone, Debug, Default)]
pub struct Neighbour {
    /// The highest sequence number it acked; `None` until a catch-up (or a first ack) establishes
    /// what it has, so nothing is ever skipped for a neighbour we know nothing about.
    pub acked: Option<u64>,
    /// The tick a catch-up went out, while its answer is awaited.
    pub catch_up_sent: Option<u64>,
    /// `bp-rr-tree`: the tick the link left the spanning tree, while it is off it (it gets
    /// beacons, not delta-groups).
    pub lazy_since: Option<u64>,
    /// Reconciliation: the exchange in progress with it (messages of any other are stale).
    pub session: Option<u64>,
    /// Reconciliation: the exchange this side opened, with the fingerprint and index sequence
    /// number it opened with, until the peer answers it; when both sides open at once, only the
    /// one with the smaller (fingerprint, sequence number) goes on.
    pub opened: Option<(u64, crate::reconcile::Hash, u64)>,
    /// Reconciliation: the sequence number of the index this side answers from in the current
    /// exchange (what the peer holds once it ends).
    pub reconcile_seq: Option<u64>,
    /// Reconciliation: that index, kept for the whole exchange (answers refer to lists sent from it).
    pub index: Option<std::sync::Arc<crate::reconcile::Index>>,
    /// Reconciliation: messages received from it in the current exchange.
    pub rounds: u32,
    /// Reconciliation: the round its next message must have.
    pub next_round: u32,
    /// Reconciliation: this side's state in the current exchange (what it sent, the coded phase).
    pub exchange: crate::reconcile::Exchange,
    /// It was cut off from reconciliation: catch it up by state.
    pub full_state: bool,
}

impl Neighbour {
    /// Forgets the reconciliation with it, if any (over, given up, or replaced by a catch-up by
    /// state). Its acks are kept.
    pub fn end_reconciliation(&mut self) {
        self.session = None;
        self.opened = None;
        self.index = None;
        self.exchange = Default::default();
        self.reconcile_seq = None;
        self.rounds = 0;
    }

    /// Off the spanning tree (`bp-rr-tree`).
    pub fn is_lazy(&self) -> bool {
        self.lazy_since.is_some()
    }
}

/// Counters the experiments and metrics read.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Messages sent, by kind label (`delta`, `ack`, `state`).
    pub messages_sent: BTreeMap<&'static str, u64>,
    /// Payload units sent.
    pub payload_units_sent: u64,
    /// Metadata units sent.
    pub metadata_units_sent: u64,
    /// Full states sent (catch-ups, and every state-based message).
    pub full_state_sends: u64,
    /// Groups received that carried nothing new.
    pub redundant_groups_received: u64,
    /// Messages ignored because the sender is not a neighbour.
    pub ignored_messages: u64,
    /// Reconciliations that ended (counted by the side that received the last message).
    pub reconciliations: u64,
    /// Reconciliations cut off (a peer that lied or would not stop).
    pub reconcile_aborted: u64,
}
