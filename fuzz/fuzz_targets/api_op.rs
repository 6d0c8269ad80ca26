//! The API's JSON op parsing on arbitrary bytes: an error or an op, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(bytes) {
        let _ = deltanode::ops::parse(&json, &[]);
        let _ = deltanode::ops::parse(&json, &["key"]);
    }
});
