//! Peer exchange, `/deltanode/peers/1`: neighbours tell each other of the sync peers they know.
//! When a neighbour comes up, and every [`EXCHANGE_EVERY`] to one neighbour at random, a node
//! sends a *sample* — at most [`MAX_SAMPLE`] peers of its book, the most recently seen first,
//! each with at most [`MAX_ADDRS`] listen addresses — and the answer is the other side's sample.
//! What arrives goes in the receiver's book and is dialled: a cluster learns every member's
//! current address from any one of them (Serf's snapshot and rejoin, with the book as snapshot),
//! so a node whose `--peer` moved, or whose only neighbour died, still finds the others.
//!
//! A sample is a hint, never data: malformed or oversized ones are dropped with a log line and
//! counted (`deltanode_peer_samples_total{result="malformed"}`).

use crate::codec::FrameCodec;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/deltanode/peers/1");
/// Peers in one sample at most.
pub const MAX_SAMPLE: usize = 16;
/// Addresses per peer in a sample at most.
pub const MAX_ADDRS: usize = 4;
/// The longest address accepted, encoded.
const MAX_ADDR_BYTES: usize = 128;
/// A sample's largest frame: its peers, addresses and their lengths, with room to spare.
pub const MAX_FRAME: usize = 16 * 1024;
/// How often a node sends a sample to one neighbour at random, besides when one comes up.
pub const EXCHANGE_EVERY: Duration = Duration::from_secs(30);

/// The codec of samples: length-prefixed frames of at most [`MAX_FRAME`] bytes.
pub fn codec() -> FrameCodec {
    FrameCodec::new(MAX_FRAME)
}

/// On the wire: each peer as its id's bytes and its addresses' bytes.
#[derive(Serialize, Deserialize)]
struct Sample {
    peers: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
}

/// A sample of `peers`, cut to the bounds.
pub fn encode(peers: &[(PeerId, Vec<Multiaddr>)]) -> Vec<u8> {
    let sample = Sample {
        peers: peers
            .iter()
            .take(MAX_SAMPLE)
            .map(|(p, addrs)| {
                let addrs = addrs
                    .iter()
                    .map(|a| a.to_vec())
                    .filter(|a| a.len() <= MAX_ADDR_BYTES)
                    .take(MAX_ADDRS)
                    .collect();
                (p.to_bytes(), addrs)
            })
            .collect(),
    };
    crdt::codec::encode(&sample).unwrap_or_default()
}

/// Why a sample was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Not a sample's encoding.
    #[error("not a peer sample")]
    Encoding,
    /// More peers or addresses than a sample holds.
    #[error("a peer sample over its bounds")]
    Bounds,
    /// A peer id or an address that does not parse.
    #[error("a peer sample with an invalid peer id or address")]
    Invalid,
}

/// The peers of a sample.
pub fn decode(frame: &[u8]) -> Result<Vec<(PeerId, Vec<Multiaddr>)>, Malformed> {
    let sample: Sample = crdt::codec::decode(frame).map_err(|_| Malformed::Encoding)?;
    if sample.peers.len() > MAX_SAMPLE {
        return Err(Malformed::Bounds);
    }
    sample
        .peers
        .into_iter()
        .map(|(p, addrs)| {
            if addrs.len() > MAX_ADDRS || addrs.iter().any(|a| a.len() > MAX_ADDR_BYTES) {
                return Err(Malformed::Bounds);
            }
            let peer = PeerId::from_bytes(&p).map_err(|_| Malformed::Invalid)?;
            let addrs = addrs
                .into_iter()
                .map(|a| Multiaddr::try_from(a).map_err(|_| Malformed::Invalid))
                .collect::<Result<_, _>>()?;
            Ok((peer, addrs))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u16) -> (PeerId, Vec<Multiaddr>) {
        let addr = format!("/ip4/127.0.0.1/tcp/{n}").parse().unwrap();
        (PeerId::random(), vec![addr])
    }

    #[test]
    fn a_sample_round_trips_within_its_bounds() {
        let peers: Vec<_> = (0..40).map(|n| peer(4000 + n)).collect();
        let back = decode(&encode(&peers)).unwrap();
        assert_eq!(back, peers[..MAX_SAMPLE].to_vec());
        assert!(encode(&peers).len() < MAX_FRAME);
    }

    #[test]
    fn malformed_samples_are_refused() {
        assert_eq!(decode(b"\xff\xff\xff"), Err(Malformed::Encoding));
        let too_many = Sample {
            peers: vec![(PeerId::random().to_bytes(), vec![]); MAX_SAMPLE + 1],
        };
        let frame = crdt::codec::encode(&too_many).unwrap();
        assert_eq!(decode(&frame), Err(Malformed::Bounds));
        let bad_id = Sample {
            peers: vec![(vec![1, 2, 3], vec![])],
        };
        let frame = crdt::codec::encode(&bad_id).unwrap();
        assert_eq!(decode(&frame), Err(Malformed::Invalid));
        let bad_addr = Sample {
            peers: vec![(PeerId::random().to_bytes(), vec![vec![0xff; 9]])],
        };
        let frame = crdt::codec::encode(&bad_addr).unwrap();
        assert_eq!(decode(&frame), Err(Malformed::Invalid));
    }
}
