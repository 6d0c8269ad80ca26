//! Clock frames (`/deltanode/clock/1`) on arbitrary bytes, read both as a request and as an
//! answer: an error or a frame, never a panic; what decodes re-encodes to a frame that decodes to
//! it; the offset computed from any answer is defined (no overflow), whatever the times claim.
#![no_main]
use deltanode::clock_frames::{median, offset, Answer, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u64, &[u8])| {
    let (received, frame) = input;
    if let Ok(r) = Request::decode(frame) {
        assert_eq!(Request::decode(&r.encode()), Ok(r));
    }
    if let Ok(a) = Answer::decode(frame) {
        assert_eq!(Answer::decode(&a.encode()), Ok(a));
        if a.echoed <= received {
            let o = offset(a.echoed, a.time, received);
            assert_eq!(median(vec![o]), Some(o));
        }
    }
});
