//! The synchronisation algorithms, all driven by one engine with switches so they compare fairly.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which algorithm a node (or a simulated node) runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Algorithm {
    /// Delta-based with both optimisations (the default).
    BpRr,
    /// BP+RR over a spanning tree the nodes build among themselves; beacons over the other links
    /// (see [`crate::tree`]). Not the paper's: our answer to the mesh's redundancy.
    BpRrTree,
    /// Delta-based, no back-propagation only.
    Bp,
    /// Delta-based, redundancy removal only.
    Rr,
    /// Classic delta-based: buffer every inflating group whole, send it to every neighbour.
    Delta,
    /// State-based: the full state to every neighbour every interval.
    State,
    /// Scuttlebutt with garbage collection (knowledge-matrix digests, deltas by dot), as the
    /// paper's authors ran it: simulator baseline.
    Scuttlebutt,
    /// Op-based reliable causal broadcast: simulator baseline.
    Op,
}

impl Algorithm {
    /// Every algorithm, in the order the experiments report them.
    pub const ALL: [Algorithm; 8] = [
        Algorithm::State,
        Algorithm::Delta,
        Algorithm::Bp,
        Algorithm::Rr,
        Algorithm::BpRr,
        Algorithm::BpRrTree,
        Algorithm::Scuttlebutt,
        Algorithm::Op,
    ];

    /// The ones a node runs on the wire (the rest exist in the simulator only).
    pub const ON_THE_WIRE: [Algorithm; 6] = [
        Algorithm::BpRr,
        Algorithm::BpRrTree,
        Algorithm::Bp,
        Algorithm::Rr,
        Algorithm::Delta,
        Algorithm::State,
    ];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::BpRr => "bp-rr",
            Algorithm::BpRrTree => "bp-rr-tree",
            Algorithm::Bp => "bp",
            Algorithm::Rr => "rr",
            Algorithm::Delta => "delta",
            Algorithm::State => "state",
            Algorithm::Scuttlebutt => "scuttlebutt",
            Algorithm::Op => "op",
        }
    }

    /// Avoid back-propagation: never send a group to the neighbour it came from.
    pub fn bp(self) -> bool {
        matches!(self, Algorithm::BpRr | Algorithm::BpRrTree | Algorithm::Bp)
    }

    /// Remove redundancy: buffer only Δ(received, state).
    pub fn rr(self) -> bool {
        matches!(self, Algorithm::BpRr | Algorithm::BpRrTree | Algorithm::Rr)
    }

    /// Send delta-groups over the links of a spanning tree only.
    pub fn tree(self) -> bool {
        self == Algorithm::BpRrTree
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
                format!(
                    "unknown algorithm {s:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}
