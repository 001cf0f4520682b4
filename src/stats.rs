//! `DNSFO_STATS=1`: counters kept while the program runs and one summary line at exit.
//!
//! Owns: the counters (relaxed atomics: cheap, and exactness across threads does not matter for
//! a summary) and the exit line. Must never: write anything unless asked, or take a lock.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

/// Linux gives up on a silent peer after about 127 s (6 SYN retries): what a program without
/// dnsfo waits for each silent address it tries.
pub const KERNEL_SYN_TIMEOUT_MS: u64 = 127_000;

pub static LOOKUPS: AtomicU64 = AtomicU64::new(0);
pub static CONNECTS: AtomicU64 = AtomicU64::new(0);
pub static FAILOVERS: AtomicU64 = AtomicU64::new(0);
pub static MARKED_DEAD: AtomicU64 = AtomicU64::new(0);
pub static SAVED_MS: AtomicU64 = AtomicU64::new(0);

static SINK: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();

pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

/// Arms the exit line; `log_file` is where it goes (stderr when `None`).
pub fn enable(log_file: Option<std::path::PathBuf>) {
    if SINK.set(log_file).is_ok() {
        crate::sys::at_exit(report);
    }
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

extern "C" fn report() {
    let Some(_entered) = crate::guard::enter() else {
        return;
    };
    let _ = crate::guard::contain(|| {
        let text = format!("{}\n", line());
        match SINK.get().and_then(|p| p.as_ref()) {
            Some(path) => {
                use std::io::Write;
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                {
                    let _ = f.write_all(text.as_bytes());
                }
            }
            None => crate::sys::write_all(2, text.as_bytes()),
        }
    });
}
