//! The wall clock, read in one place.
//!
//! Fault injection: `DELTANODE_FAULT_CLOCK_OFFSET_MS` (a signed number of milliseconds) shifts
//! this node's clock, as a host whose clock is off would (the clock-skew tests and drills use
//! it). Unset in normal use.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable that shifts the clock (fault injection).
pub const OFFSET_VAR: &str = "DELTANODE_FAULT_CLOCK_OFFSET_MS";

/// Wall-clock milliseconds since the epoch (0 if the clock is before it).
pub fn unix_ms() -> u64 {
    static OFFSET: OnceLock<i64> = OnceLock::new();
    let offset = *OFFSET.get_or_init(|| {
        std::env::var(OFFSET_VAR)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    now.saturating_add_signed(offset)
}
