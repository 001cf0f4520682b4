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

/// Every counter back to zero (a `fork()` child counts its own connects, not its parent's).
pub fn reset() {
    for c in [&LOOKUPS, &CONNECTS, &FAILOVERS, &MARKED_DEAD, &SAVED_MS] {
        c.store(0, Relaxed);
    }
}

/// The counters' values, in the order lookups, connects, failovers, marked dead, saved ms.
pub fn snapshot() -> [u64; 5] {
    [&LOOKUPS, &CONNECTS, &FAILOVERS, &MARKED_DEAD, &SAVED_MS].map(|c| c.load(Relaxed))
}

/// The counters in the Prometheus text exposition format (what node_exporter's textfile
/// collector reads), labelled with the program and its pid; `now_s`: seconds since the epoch.
pub fn prometheus(program: &str, pid: u32, version: &str, now_s: f64) -> String {
    let label = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let who = format!("program=\"{}\",pid=\"{pid}\"", label(program));
    let [lookups, connects, failovers, dead, saved_ms] = snapshot();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{{who}}} {value}\n"
        ));
    };
    metric(
        "dnsfo_lookups_learned_total",
        "counter",
        "Name lookups whose answer dnsfo learned.",
        lookups.to_string(),
    );
    metric(
        "dnsfo_connects_total",
        "counter",
        "Connects to a learned address that dnsfo looked at.",
        connects.to_string(),
    );
    metric(
        "dnsfo_failovers_total",
        "counter",
        "Connects that ended on another address than the one the program chose.",
        failovers.to_string(),
    );
    metric(
        "dnsfo_addresses_marked_dead_total",
        "counter",
        "Addresses recorded as dead after a failed attempt.",
        dead.to_string(),
    );
    metric(
        "dnsfo_time_saved_estimate_seconds_total",
        "counter",
        "An estimate, not a measurement: the kernel's SYN timeout per silent address a failover got past, less the time it took.",
        format!("{:.3}", saved_ms as f64 / 1000.0),
    );
    metric(
        "dnsfo_stats_updated_timestamp_seconds",
        "gauge",
        "When this file was last written: every refresh interval while the process runs, so an old one belongs to a process that ended.",
        format!("{now_s:.3}"),
    );
    out.push_str(&format!(
        "# HELP dnsfo_info The library's version.\n# TYPE dnsfo_info gauge\ndnsfo_info{{{who},version=\"{}\"}} 1\n",
        label(version)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_help_type_and_escaped_labels() {
        let text = prometheus("we\"ird\\name\n", 42, "0.1.0", 1.5);
        for name in [
            "dnsfo_lookups_learned_total",
            "dnsfo_connects_total",
            "dnsfo_failovers_total",
            "dnsfo_addresses_marked_dead_total",
            "dnsfo_time_saved_estimate_seconds_total",
        ] {
            assert!(text.contains(&format!("# TYPE {name} counter\n")), "{text}");
        }
        assert!(text.contains(
            "dnsfo_stats_updated_timestamp_seconds{program=\"we\\\"ird\\\\name\\n\",pid=\"42\"} 1.500\n"
        ), "{text}");
        assert!(text.ends_with("version=\"0.1.0\"} 1\n"), "{text}");
        // Every sample line is NAME{LABELS} VALUE, nothing else (the format has no blank lines).
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = l.rsplit_once(' ').expect("a value");
            assert!(value.parse::<f64>().is_ok(), "{l}");
        }
    }
}
