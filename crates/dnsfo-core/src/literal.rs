//! Which host strings are address literals to glibc: those are never names, so dnsfo never
//! learns them and never asks DNS about them.
//!
//! glibc's `getaddrinfo` reads an IPv4 literal with `inet_aton` (exact: nothing may follow), which
//! accepts far more than Rust's parser: `127.1`, `0x7f.1`, `2130706433`, `0177.0.0.1`. A name like
//! that, taken for a host name, would be re-resolved through DNS, which never answers it (issue
//! 12, item 2).
//!
//! Owns: the pure parsing. Must never: call libc (this runs inside the resolve hooks).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The address `host` stands for when glibc takes it as a literal (IPv4 in any `inet_aton`
/// form, or IPv6 with an optional `%scope`).
pub fn parse(host: &str) -> Option<IpAddr> {
    if let Some(v4) = inet_aton(host) {
        return Some(IpAddr::V4(v4));
    }
    let addr = host.split_once('%').map_or(host, |(a, _)| a);
    addr.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

/// `inet_aton` as glibc's `__inet_aton_exact`: one to four parts separated by dots, each decimal,
/// octal (leading `0`) or hexadecimal (`0x`); the last part fills the bytes left.
fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let mut parts = [0u64; 4];
    let mut n = 0;
    for part in s.split('.') {
        if n == 4 {
            return None;
        }
        parts[n] = number(part)?;
        n += 1;
    }
    let last = parts[n - 1];
    let (head, max_last) = match n {
        1 => (0u64, u32::MAX as u64),
        2 => (parts[0] << 24, 0x00ff_ffff),
        3 => ((parts[0] << 24) | (parts[1] << 16), 0xffff),
        _ => ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8), 0xff),
    };
    if parts[..n - 1].iter().any(|p| *p > 0xff) || last > max_last {
        return None;
    }
    Some(Ipv4Addr::from((head | last) as u32))
}

/// One part: at least one digit (`0x` alone counts as 0, as in glibc); `None` on overflow.
fn number(part: &str) -> Option<u64> {
    let b = part.as_bytes();
    if b.first().is_none_or(|c| !c.is_ascii_digit()) {
        return None;
    }
    let (digits, radix) = match b {
        [b'0', b'x' | b'X', rest @ ..] => (rest, 16),
        [b'0', rest @ ..] => (rest, 8),
        _ => (b, 10),
    };
    let mut v: u64 = 0;
    for &c in digits {
        let d = (c as char).to_digit(radix)?;
        v = v.checked_mul(u64::from(radix))?.checked_add(u64::from(d))?;
        if v > u64::from(u32::MAX) {
            return None;
        }
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Option<String> {
        parse(s).map(|a| a.to_string())
    }

    #[test]
    fn glibc_ipv4_forms() {
        for (s, want) in [
            ("127.0.0.1", "127.0.0.1"),
            ("127.1", "127.0.0.1"),
            ("0x7f.1", "127.0.0.1"),
            ("2130706433", "127.0.0.1"),
            ("0177.0.0.1", "127.0.0.1"),
            ("127.0.1", "127.0.0.1"),
            ("0x7F000001", "127.0.0.1"),
            ("0", "0.0.0.0"),
            ("0x", "0.0.0.0"),
            ("10.65535", "10.0.255.255"),
        ] {
            assert_eq!(v4(s).as_deref(), Some(want), "{s}");
        }
    }

    #[test]
    fn names_and_bad_literals_are_not_literals() {
        for s in [
            "",
            "localhost",
            "a.test",
            "127.0.0.1.",
            "127..1",
            ".1",
            "08",
            "1.2.3.4.5",
            "256.1.1.1",
            "1.2.3.256",
            "1.16777216",
            "4294967296",
            "0x100000000",
            "127.0.0.1 ",
            "1e3",
            "0x7g",
            "99999999999999999999999",
        ] {
            assert_eq!(parse(s), None, "{s:?}");
        }
    }

    #[test]
    fn ipv6_with_scope() {
        assert_eq!(v4("::1").as_deref(), Some("::1"));
        assert_eq!(v4("fe80::1%lo").as_deref(), Some("fe80::1"));
        assert_eq!(parse("[::1]"), None);
    }
}
