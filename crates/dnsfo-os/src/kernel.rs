//! Kernel settings dnsfo reports against.
//!
//! Owns: reading them from `/proc`. Must never: fail (a missing or odd value gives Linux's default).

/// Linux's default `net.ipv4.tcp_syn_retries`.
const DEFAULT_SYN_RETRIES: u32 = 6;

/// How long the kernel keeps retrying a SYN nobody answers, in seconds: 2^(retries+1) - 1
/// (127 s with the default 6 retries).
pub fn syn_timeout_s() -> u64 {
    let retries = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_syn_retries")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(DEFAULT_SYN_RETRIES);
    syn_timeout_for(retries)
}

/// The SYN timeout for `retries` (the kernel caps the setting at 255; the shift at 20 keeps the
/// figure meaningful and the arithmetic in range).
fn syn_timeout_for(retries: u32) -> u64 {
    (1u64 << (retries.min(20) + 1)) - 1
}

#[cfg(test)]
mod tests {
    #[test]
    fn doubles_per_retry_and_stays_in_range() {
        assert_eq!(super::syn_timeout_for(6), 127);
        assert_eq!(super::syn_timeout_for(1), 3);
        assert_eq!(super::syn_timeout_for(255), (1 << 21) - 1);
        assert!(super::syn_timeout_s() >= 3);
    }
}
