//! Wall-clock time shared across nodes: entries record when they were made and when they expire in
//! milliseconds since the Unix epoch, which every node can compare, unlike a process's `Instant`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; 0 on a clock set before it.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
