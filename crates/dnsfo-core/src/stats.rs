//! `DNSFO_STATS=1`'s counters, kept while the program runs, and their summary line.
//!
//! Owns: the counters (relaxed atomics: cheap, and exactness across threads does not matter for
//! a summary) and the line's text. Must never: write anything (the library's `stats` does, at
//! exit), or take a lock.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// How long the kernel retries a SYN nobody answers: what a program without dnsfo waits for a
/// silent address. Linux's default (6 retries: 127 s) until the library reads the machine's
/// own (`set_kernel_syn_timeout_ms`, when stats are on).
static KERNEL_SYN_TIMEOUT_MS: AtomicU64 = AtomicU64::new(127_000);

/// The kernel's SYN timeout on this machine, for the time-saved estimate.
pub fn set_kernel_syn_timeout_ms(ms: u64) {
    KERNEL_SYN_TIMEOUT_MS.store(ms, Relaxed);
}

/// The time a program without dnsfo would have waited for a connect that dnsfo got past a
/// silent address with, beyond the `spent_ms` it took: the estimate behind "time saved".
pub fn saved_by_failover_ms(silent_addresses: u64, spent_ms: u64) -> u64 {
    // The program would have waited for its own (first) address only, then failed.
    silent_addresses.min(1) * KERNEL_SYN_TIMEOUT_MS.load(Relaxed).saturating_sub(spent_ms)
}

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
        "dnsfo[{}] stats: lookups learned {}, connects seen {}, failovers {}, addresses marked dead {}, time saved ~{:.1} s (estimate: the kernel's {} s SYN timeout per silent address passed)",
        std::process::id(),
        LOOKUPS.load(Relaxed),
        CONNECTS.load(Relaxed),
        FAILOVERS.load(Relaxed),
        MARKED_DEAD.load(Relaxed),
        SAVED_MS.load(Relaxed) as f64 / 1000.0,
        KERNEL_SYN_TIMEOUT_MS.load(Relaxed) / 1000
    )
}
