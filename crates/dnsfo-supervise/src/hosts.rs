//! `/etc/hosts` read as the system reads it: per name (case-insensitive, aliases alike), every
//! address of every line that lists it, in file order.
//!
//! Owns: the file's syntax. Must never: invent an address (a line whose first field is not an
//! address is skipped, as glibc and Go skip it).

use std::net::IpAddr;

/// Names whose addresses are this machine's own: programs connect to 127.0.0.1 and ::1 as
/// literals far more often than by these names, so a connect to them is never steered.
const LOOPBACK_NAMES: [&str; 5] = [
    "localhost",
    "localhost.localdomain",
    "localhost6",
    "ip6-localhost",
    "ip6-loopback",
];

/// The names of a hosts file with their addresses, in file order (names in lower case).
pub fn parse(text: &str) -> Vec<(String, Vec<IpAddr>)> {
    let mut out: Vec<(String, Vec<IpAddr>)> = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_ascii_whitespace();
        let Some(ip) = fields.next().and_then(|a| a.parse::<IpAddr>().ok()) else {
            continue;
        };
        let ip = dnsfo_core::outcome::canonical_ip(ip);
        for name in fields {
            let name = dnsfo_core::registry::normalize(name);
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, addrs)) if !addrs.contains(&ip) => addrs.push(ip),
                Some(_) => {}
                None => out.push((name, vec![ip])),
            }
        }
    }
    out.retain(|(n, _)| !LOOPBACK_NAMES.contains(&n.as_str()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_of_a_name_counts_in_file_order_aliases_too() {
        let t = "\
# comment
127.0.0.1\tlocalhost
::1 localhost ip6-localhost ip6-loopback
127.0.0.2 svc Svc-Alias   # trailing comment
not-an-address other
::2 svc
127.0.0.3 svc svc
::ffff:127.0.0.4 SVC.
fe80::1%eth0 scoped
";
        let got = parse(t);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            got,
            vec![
                (
                    "svc".to_string(),
                    vec![ip("127.0.0.2"), ip("::2"), ip("127.0.0.3"), ip("127.0.0.4")]
                ),
                ("svc-alias".to_string(), vec![ip("127.0.0.2")]),
            ]
        );
    }
}
