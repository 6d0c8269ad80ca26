//! [`Client`]: the handle through which the HTTP API or an embedding app talks to a running node.
//! It reaches the event loop over a bounded command channel, each command carrying a oneshot for
//! its answer. Small reads run on the loop ([`Client::read`]); whole-store reads take a
//! [`Snapshot`] and run on the caller's task ([`Client::snapshot`]).

use crate::feed::Feed;
use crate::metrics::Metrics;
use crate::persist::Checkpoint;
use crate::snapshot::Snapshot;
use crate::views::{ApplyError, CheckpointInfo, ObjectView, Return, RollbackOutcome};
use crdt::{Op, Store};
use libp2p::PeerId;
use protocol::Engine;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// A read-only look at the node on its event loop, for [`Client::read`]: keep what runs on it
/// small (one object, a count); whole-store reads use [`Client::snapshot`].
pub struct View<'a> {
    /// The node's PeerId.
    pub peer_id: PeerId,
    /// The engine: state, buffer, neighbours, counters.
    pub engine: &'a Engine<PeerId, Store>,
    /// What the replica counts.
    pub metrics: &'a Metrics,
    /// Why the store takes no writes, if it does not.
    pub degraded: Option<&'a str>,
    /// Neighbours' writes held for being stamped too far ahead, if the bound is on.
    pub quarantine: Option<&'a crate::replica::Quarantine>,
    /// The connected neighbours' clock offsets (theirs minus ours, ms), those measured.
    pub clock_offsets: Vec<i64>,
    /// Connected neighbours a message was too large for that have not acked since.
    pub behind: Vec<PeerId>,
    /// Identities found shared by two processes (a neighbour's, or this node's).
    pub identity_warnings: Vec<String>,
    /// What was sent since the start, sampled.
    pub history: &'a crate::sync_history::SyncHistory,
}

pub(crate) type Reader = Box<dyn FnOnce(&View<'_>) + Send>;

/// Where a write's outcome goes.
pub(crate) type ApplyReply = oneshot::Sender<Result<Vec<ObjectView>, ApplyError>>;

/// One client's write: its ops, what its reply holds, and where the reply goes.
pub(crate) struct Write {
    pub ops: Vec<(String, Op)>,
    pub ret: Return,
    pub reply: ApplyReply,
}

/// What a client asks of the event loop.
pub(crate) enum Command {
    Apply(Write),
    Read(Reader),
    Snapshot(oneshot::Sender<Snapshot>),
    Sync,
    Checkpoint {
        label: String,
        reply: oneshot::Sender<anyhow::Result<Option<CheckpointInfo>>>,
    },
    Checkpoints {
        reply: oneshot::Sender<anyhow::Result<Vec<CheckpointInfo>>>,
    },
    CheckpointState {
        label: String,
        reply: oneshot::Sender<anyhow::Result<Option<Checkpoint>>>,
    },
    Rollback {
        label: String,
        partial: bool,
        reply: oneshot::Sender<anyhow::Result<RollbackOutcome>>,
    },
    Backup {
        reply: oneshot::Sender<anyhow::Result<crate::persist::Backup>>,
    },
}

/// The node has stopped.
#[derive(Debug, thiserror::Error)]
#[error("the node has stopped")]
pub struct Stopped;

/// A handle to a running node: cheap to clone, usable from any task.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    peer_id: PeerId,
    feed: Arc<Feed>,
}

impl Client {
    pub(crate) fn new(commands: mpsc::Sender<Command>, peer_id: PeerId, feed: Arc<Feed>) -> Self {
        Client {
            commands,
            peer_id,
            feed,
        }
    }

    /// The node's PeerId.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Applies `ops` atomically as one delta, durably (fsynced before this returns); returns the
    /// objects they name, as they now are (values of objects up to [`crate::views::SMALL`]).
    /// Ops that change nothing commit nothing.
    pub async fn apply(
        &self,
        ops: Vec<(String, Op)>,
    ) -> anyhow::Result<Result<Vec<ObjectView>, ApplyError>> {
        self.apply_with(ops, Return::Auto).await
    }

    /// [`Client::apply`], with the reply holding what `ret` says.
    pub async fn apply_with(
        &self,
        ops: Vec<(String, Op)>,
        ret: Return,
    ) -> anyhow::Result<Result<Vec<ObjectView>, ApplyError>> {
        Ok(self
            .ask(|reply| Command::Apply(Write { ops, ret, reply }))
            .await?)
    }

    /// Runs `f` on the event loop with a view of the node and returns its result. Keep `f` small.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&View<'_>) -> T + Send + 'static,
    ) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        let reader: Reader = Box::new(move |view| {
            let _ = tx.send(f(view));
        });
        self.commands
            .send(Command::Read(reader))
            .await
            .map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// A snapshot of the whole node, for reads that walk the whole store.
    pub async fn snapshot(&self) -> Result<Snapshot, Stopped> {
        self.ask(Command::Snapshot).await
    }

    /// The change feed.
    pub fn feed(&self) -> &Feed {
        &self.feed
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Saves the current state as checkpoint `label` (durably); `None` if the label is taken.
    pub async fn checkpoint(
        &self,
        label: String,
    ) -> Result<anyhow::Result<Option<CheckpointInfo>>, Stopped> {
        self.ask(|reply| Command::Checkpoint { label, reply }).await
    }

    /// Every checkpoint.
    pub async fn checkpoints(&self) -> Result<anyhow::Result<Vec<CheckpointInfo>>, Stopped> {
        self.ask(|reply| Command::Checkpoints { reply }).await
    }

    /// A backup of the node: its state and every checkpoint, as of one moment.
    pub async fn backup(&self) -> Result<anyhow::Result<crate::persist::Backup>, Stopped> {
        self.ask(|reply| Command::Backup { reply }).await
    }

    /// Checkpoint `label` with its state.
    pub async fn checkpoint_state(
        &self,
        label: String,
    ) -> Result<anyhow::Result<Option<Checkpoint>>, Stopped> {
        self.ask(|reply| Command::CheckpointState { label, reply })
            .await
    }

    /// Reverts every object changed since checkpoint `label` by compensating writes.
    pub async fn rollback(
        &self,
        label: String,
        partial: bool,
    ) -> Result<anyhow::Result<RollbackOutcome>, Stopped> {
        self.ask(|reply| Command::Rollback {
            label,
            partial,
            reply,
        })
        .await
    }

    /// Starts a sync round now.
    pub async fn sync(&self) -> Result<(), Stopped> {
        self.commands.send(Command::Sync).await.map_err(|_| Stopped)
    }

    /// The replicated state and its digest (hex SHA-256 of the canonical encoding), computed off
    /// the event loop.
    pub async fn state(&self) -> Result<(String, Store), Stopped> {
        let snap = self.snapshot().await?;
        Ok((snap.digest(), snap.state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_of_a_stopped_node_says_so_and_a_live_one_gets_its_answer() {
        let (tx, mut rx) = mpsc::channel(4);
        let client = Client::new(tx, PeerId::random(), Arc::new(Feed::default()));
        // A stand-in loop that answers one sync, one write, then stops.
        let lp = tokio::spawn(async move {
            assert!(matches!(rx.recv().await, Some(Command::Sync)));
            if let Some(Command::Apply(Write { reply, .. })) = rx.recv().await {
                let _ = reply.send(Ok(vec![]));
            }
        });
        client.sync().await.unwrap();
        let answer = client
            .apply(vec![("k".into(), Op::CounterAdd(1))])
            .await
            .unwrap();
        assert!(answer.unwrap().is_empty());
        lp.await.unwrap();
        assert!(client.sync().await.is_err());
        assert!(client.snapshot().await.is_err());
        assert!(client.read(|v| v.peer_id).await.is_err());
        assert!(client.apply(vec![]).await.is_err());
    }
}
