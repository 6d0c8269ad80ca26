//! The wire decoder on arbitrary frames: an error or a message, never a panic; and a message that
//! decodes re-encodes to a frame that decodes to the same message.
#![no_main]
use crdt::Store;
use libfuzzer_sys::fuzz_target;
use protocol::{wire, Message};

fuzz_target!(|frame: &[u8]| {
    if let Ok(msg) = wire::decode::<Message<Store>>(frame, wire::DEFAULT_MAX_FRAME) {
        let again = wire::encode(&msg).expect("a decoded message encodes");
        let back: Message<Store> = wire::decode(&again, wire::DEFAULT_MAX_FRAME).expect("and decodes");
        assert_eq!(wire::encode(&back).unwrap(), again);
    }
});
