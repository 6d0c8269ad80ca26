//! What the node has sent since it started, sampled for the dashboard's sync chart
//! (`GET /v1/sync/history`): cumulative frame bytes and payload and metadata units. Memory is
//! bounded whatever the uptime: at [`CAPACITY`] samples, every other one is dropped and the step
//! doubles, so the history always reaches back to the start, finer for a young node.

use serde::Serialize;

/// Samples kept at most.
pub const CAPACITY: usize = 3600;

/// The counters at one moment (cumulative since the start).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// When (ms since the epoch).
    pub t_unix_ms: u64,
    /// Sync frame bytes sent.
    pub bytes: u64,
    /// Payload units sent (elements, entries, values).
    pub payload: u64,
    /// Metadata units sent (sequence numbers, acks, dots).
    pub metadata: u64,
}

/// The samples, oldest first, and how far apart they are.
#[derive(Clone, Debug, Serialize)]
pub struct SyncHistory {
    /// When the node started (ms since the epoch).
    pub started_unix_ms: u64,
    /// The time between samples (ms); doubles as the history thins out.
    pub step_ms: u64,
    /// The samples.
    pub samples: Vec<Sample>,
}

impl SyncHistory {
    /// An empty history from `now`, a sample every `step_ms`.
    pub fn new(now_unix_ms: u64, step_ms: u64) -> Self {
        SyncHistory {
            started_unix_ms: now_unix_ms,
            step_ms: step_ms.max(1),
            samples: Vec::new(),
        }
    }

    /// Whether a sample taken at `now` would be kept: a step has passed since the last one.
    pub fn due(&self, now_unix_ms: u64) -> bool {
        self.samples
            .last()
            .is_none_or(|last| now_unix_ms >= last.t_unix_ms + self.step_ms)
    }

    /// Offers a sample; kept if it is [`due`](Self::due).
    pub fn record(&mut self, sample: Sample) {
        if !self.due(sample.t_unix_ms) {
            return;
        }
        if self.samples.len() >= CAPACITY {
            // Keep the first and every other one after it: still from the start, half as fine.
            let mut i = 0;
            self.samples.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.step_ms *= 2;
        }
        self.samples.push(sample);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: u64) -> Sample {
        Sample {
            t_unix_ms: t,
            bytes: t * 10,
            payload: t,
            metadata: t / 2,
        }
    }

    #[test]
    fn samples_come_a_step_apart() {
        let mut h = SyncHistory::new(0, 1000);
        for t in (0..5_000).step_by(250) {
            h.record(at(t));
        }
        let times: Vec<u64> = h.samples.iter().map(|s| s.t_unix_ms).collect();
        assert_eq!(times, [0, 1000, 2000, 3000, 4000]);
    }

    #[test]
    fn a_long_uptime_stays_bounded_and_reaches_back_to_the_start() {
        let mut h = SyncHistory::new(0, 1000);
        let day = 86_400_000;
        for t in (0..day).step_by(500) {
            h.record(at(t));
        }
        assert!(h.samples.len() <= CAPACITY);
        assert_eq!(h.samples[0].t_unix_ms, 0, "from the start");
        assert!(h.samples.last().unwrap().t_unix_ms > day - 2 * h.step_ms);
        assert_eq!(h.step_ms, 32_000, "1 s doubled five times for a day");
        assert!(h.samples.windows(2).all(|w| w[0].bytes <= w[1].bytes));
    }
}
