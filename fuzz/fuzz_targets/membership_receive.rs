//! Membership input (`/deltanode/membership/1`): arbitrary frames decoded as membership messages
//! from arbitrary peers and fed to a HyParView machine, with ticks and failures between. Never a
//! panic; the views stay within their bounds and never hold the node itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use protocol::membership::{Membership, MembershipConfig, Msg};

fuzz_target!(|input: Vec<(u8, Vec<u8>)>| {
    let cfg = MembershipConfig::with_active(4);
    let mut m = Membership::new(0u32, cfg, 7);
    m.join(1);
    for (from, frame) in input {
        let from = u32::from(from % 16);
        match crdt::codec::decode::<Msg<Vec<u8>>>(&frame) {
            Ok(msg) => {
                // Peer ids on the wire are bytes; here the first byte names one of 16 peers.
                if let Some(msg) = msg.try_map(|id| id.first().map(|b| u32::from(*b % 16))) {
                    m.on_message(from, msg);
                }
            }
            Err(_) if frame.first() == Some(&0xff) => {
                m.on_unreachable(from);
            }
            Err(_) => {
                m.tick();
            }
        }
        assert!(m.active().len() <= cfg.active, "active view over its bound");
        assert!(m.passive().len() <= cfg.passive, "passive view over its bound");
        assert!(!m.active().contains(&0) && !m.passive().contains(&0), "itself");
    }
});
