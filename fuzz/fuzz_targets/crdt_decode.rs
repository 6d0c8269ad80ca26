//! The CRDT decoders: a store or any single type from arbitrary bytes is an error or a value that
//! round-trips, never a panic; the join with itself is itself (decoding recanonicalises).
#![no_main]
use crdt::{codec, AwSet, GCounter, GSet, Lattice, MvRegister, OrMap, PNCounter, Store, TwoPSet, Value};
use libfuzzer_sys::fuzz_target;

fn check<T: Lattice + serde::Serialize + serde::de::DeserializeOwned + PartialEq + Clone + std::fmt::Debug>(bytes: &[u8]) {
    if let Ok(v) = codec::decode::<T>(bytes) {
        let again = codec::encode(&v).expect("encodes");
        assert_eq!(codec::decode::<T>(&again).expect("decodes"), v);
        let mut joined = v.clone();
        joined.join(&v);
        assert_eq!(joined, v);
    }
}

fuzz_target!(|bytes: &[u8]| {
    check::<Store>(bytes);
    check::<GCounter>(bytes);
    check::<PNCounter>(bytes);
    check::<GSet<Value>>(bytes);
    check::<TwoPSet<Value>>(bytes);
    check::<AwSet<Value>>(bytes);
    check::<MvRegister<Value>>(bytes);
    check::<OrMap<Value, Value>>(bytes);
});
