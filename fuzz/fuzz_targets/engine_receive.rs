//! Message handling: arbitrary frames, decoded and fed to an engine of one wire algorithm as if
//! from a neighbour, interleaved with ticks. Never a panic, and the state only grows. The
//! algorithm is picked from the frames' total length, so an input keeps the shape it had when
//! every input drove all six (the corpus stays valid) while each execution costs one engine.
#![no_main]
use crdt::{Lattice, Store};
use libfuzzer_sys::fuzz_target;
use protocol::{wire, Algorithm, Config, Engine, Input, Message};

fuzz_target!(|frames: Vec<Vec<u8>>| {
    let length: usize = frames.iter().map(Vec::len).sum();
    let algorithm = Algorithm::ON_THE_WIRE[length % Algorithm::ON_THE_WIRE.len()];
    let mut engine: Engine<u8, Store> = Engine::new(Config::new(algorithm), Store::default(), 1);
    engine.handle(Input::NeighbourUp(1));
    for frame in &frames {
        let before = engine.state().clone();
        if let Ok(msg) = wire::decode::<Message<Store>>(frame, wire::DEFAULT_MAX_FRAME) {
            engine.handle(Input::Received { from: 1, msg });
        }
        engine.handle(Input::Tick);
        assert!(before.leq(engine.state()), "the state never goes back");
    }
});
