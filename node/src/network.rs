//! The libp2p swarm: TCP (behind the private-network handshake when a swarm key is given), Noise,
//! Yamux; the `/deltanode/sync/1` request-response protocol; identify (which protocols a peer
//! speaks: only one that speaks sync becomes a neighbour) and ping (liveness); mDNS discovery when
//! enabled.

use crate::codec::{FrameCodec, PROTOCOL};
use crate::peer_exchange;
use either::Either;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::pnet::{PnetConfig, PreSharedKey};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{identify, mdns, noise, ping, request_response, tcp, yamux, Swarm, Transport};
use std::time::Duration;

/// Requests a neighbour may have open on one connection at once (its deltas, acks and catch-ups).
pub const MAX_CONCURRENT_STREAMS: usize = 32;

/// What identify says this node is.
pub const IDENTIFY_PROTOCOL: &str = "/deltanode/id/1.0.0";

/// How long a request may wait for its response before it counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub use behaviour::{Behaviour, BehaviourEvent};

/// The derive macro writes an event enum it cannot document; its variants are the fields' events.
#[allow(missing_docs)]
mod behaviour {
    use super::*;

    /// The node's behaviours.
    #[derive(NetworkBehaviour)]
    pub struct Behaviour {
        /// Delta-sync messages: a frame out, a frame (possibly empty) back.
        pub sync: request_response::Behaviour<FrameCodec>,
        /// Peer exchange: a sample of the peer book out, the other side's back.
        pub exchange: request_response::Behaviour<FrameCodec>,
        /// Clock readings: the asker's time out, echoed with the answerer's.
        pub clock: request_response::Behaviour<FrameCodec>,
        /// Bounded partial views (`--max-neighbours`): membership messages, answered empty.
        pub membership: request_response::Behaviour<FrameCodec>,
        /// LAN discovery; off with `--no-mdns`.
        pub mdns: Toggle<mdns::tokio::Behaviour>,
        /// Which protocols a peer speaks, and its listen addresses.
        pub identify: identify::Behaviour,
        /// Liveness of every connection.
        pub ping: ping::Behaviour,
    }
}

/// Builds the swarm.
pub fn build(
    key: Keypair,
    psk: Option<PreSharedKey>,
    mdns_on: bool,
    codec: FrameCodec,
) -> anyhow::Result<Swarm<Behaviour>> {
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_other_transport(|key| {
            let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
            // Without the key, the pnet handshake fails before Noise starts: nothing else is spoken.
            let maybe_private = match psk {
                Some(psk) => Either::Left(
                    tcp.and_then(move |socket, _| PnetConfig::new(psk).handshake(socket)),
                ),
                None => Either::Right(tcp),
            };
            Ok(maybe_private
                .upgrade(Version::V1Lazy)
                .authenticate(noise::Config::new(key)?)
                .multiplex(yamux::Config::default())
                .timeout(Duration::from_secs(20))
                .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer))))
        })?
        .with_behaviour(
            |key| -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
                let cfg = request_response::Config::default()
                    .with_request_timeout(REQUEST_TIMEOUT)
                    .with_max_concurrent_streams(MAX_CONCURRENT_STREAMS);
                let sync = request_response::Behaviour::with_codec(
                    codec,
                    [(PROTOCOL, request_response::ProtocolSupport::Full)],
                    cfg,
                );
                let exchange = request_response::Behaviour::with_codec(
                    peer_exchange::codec(),
                    [(
                        peer_exchange::PROTOCOL,
                        request_response::ProtocolSupport::Full,
                    )],
                    request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
                );
                let clock = request_response::Behaviour::with_codec(
                    crate::clock_frames::codec(),
                    [(
                        crate::clock_frames::PROTOCOL,
                        request_response::ProtocolSupport::Full,
                    )],
                    request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
                );
                let membership = request_response::Behaviour::with_codec(
                    crate::peers::views::codec(),
                    [(
                        crate::peers::views::PROTOCOL,
                        request_response::ProtocolSupport::Full,
                    )],
                    request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
                );
                let mdns = if mdns_on {
                    Some(mdns::tokio::Behaviour::new(
                        mdns::Config::default(),
                        key.public().to_peer_id(),
                    )?)
                } else {
                    None
                };
                // Listen addresses that change (an interface comes or goes) are pushed to peers.
                let identify = identify::Behaviour::new(
                    identify::Config::new(IDENTIFY_PROTOCOL.to_string(), key.public())
                        .with_agent_version(format!("deltanode/{}", env!("CARGO_PKG_VERSION")))
                        .with_push_listen_addr_updates(true),
                );
                Ok(Behaviour {
                    sync,
                    exchange,
                    clock,
                    membership,
                    mdns: mdns.into(),
                    identify,
                    ping: ping::Behaviour::new(ping::Config::new()),
                })
            },
        )?
        // Neighbours stay connected between sync rounds: a dropped connection means a catch-up.
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    Ok(swarm)
}
