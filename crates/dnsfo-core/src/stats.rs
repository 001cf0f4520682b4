//! `DNSFO_STATS=1`'s counters, kept while the program runs, and their summary line.
//!
//! Owns: the counters (relaxed atomics: cheap, and exactness across threads does not matter for
//! a summary) and the line's text. Must never: write anything (the library's `stats` does, at
//! exit), or take a lock.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Linux gives up on a silent peer after about 127 s (6 SYN retries): what a program without
/// dnsfo waits for each silent address it tries.
pub const KERNEL_SYN_TIMEOUT_MS: u64 = 127_000;

pub static LOOKUPS: AtomicU64 = AtomicU64::new(0);
pub static CONNECTS: AtomicU64 = AtomicU64::new(0);
pub static FAILOVERS: AtomicU64 = AtomicU64::new(0);
pub static MARKED_DEAD: AtomicU64 = AtomicU64::new(0);
pub static SAVED_MS: AtomicU64 = AtomicU64::new(0);

/// Counts `n` more.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

/// The summary line.
pub fn line() -> String {
    format!(
        "dnsfo[{}] stats: lookups learned {}, connects seen {}, failovers {}, addresses marked dead {}, time saved {:.1} s",
        std::process::id(),
        LOOKUPS.load(Relaxed),
        CONNECTS.load(Relaxed),
        FAILOVERS.load(Relaxed),
        MARKED_DEAD.load(Relaxed),
        SAVED_MS.load(Relaxed) as f64 / 1000.0
    )
}
