//! Message handling: arbitrary frames, decoded and fed to an engine of one wire algorithm (the
//! input's first byte picks it, so coverage tells the algorithms apart) as if from a neighbour,
//! interleaved with ticks. Never a panic, and the state only grows.
#![no_main]
use crdt::{Lattice, Store};
use libfuzzer_sys::fuzz_target;
use protocol::{wire, Algorithm, Config, Engine, Input, Message};

fuzz_target!(|input: (u8, Vec<Vec<u8>>)| {
    let (pick, frames) = input;
    let algorithm = Algorithm::ON_THE_WIRE[usize::from(pick) % Algorithm::ON_THE_WIRE.len()];
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
