//! Peer samples (`/deltanode/peers/1`) on arbitrary frames: an error or a sample within its
//! bounds, never a panic; a sample that decodes re-encodes to a frame that decodes to it.
#![no_main]
use deltanode::peer_exchange::{decode, encode, MAX_ADDRS, MAX_SAMPLE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    if let Ok(peers) = decode(frame) {
        assert!(peers.len() <= MAX_SAMPLE, "a sample over its bound");
        assert!(peers.iter().all(|(_, a)| a.len() <= MAX_ADDRS), "addresses over their bound");
        assert_eq!(decode(&encode(&peers)).expect("a decoded sample re-encodes"), peers);
    }
});
