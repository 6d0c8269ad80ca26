//! The node's own addresses on the peers layer: what the API shows, and the external addresses
//! identify's reports confirm.

use super::{Peers, MAX_CANDIDATES};
use libp2p::Multiaddr;

impl Peers {
    /// `addr` ending in this node's `/p2p/ID`, as shown.
    pub(super) fn with_id(&self, addr: Multiaddr) -> String {
        addr.with(libp2p::multiaddr::Protocol::P2p(self.local))
            .to_string()
    }

    /// A peer saw this node at `addr`: the second report of one address makes it external
    /// (announced through identify); one report may be a peer's own view through a NAT of its own.
    pub(super) fn candidate(&mut self, addr: Multiaddr) {
        tracing::debug!(%addr, "external address candidate");
        if self.candidates.len() >= MAX_CANDIDATES && !self.candidates.contains_key(&addr) {
            return;
        }
        let seen = self.candidates.entry(addr.clone()).or_default();
        *seen += 1;
        if *seen == 2 {
            tracing::info!(%addr, "external address confirmed by peers; announced");
            self.own.update(true, self.with_id(addr.clone()), true);
            self.swarm.add_external_address(addr);
        }
    }
}
