//! Names and the addresses the resolver returned for them.
//!
//! Owns: name → addresses (in resolver order) and the reverse index address → names, bounded in
//! size. Must never: invent an address (only what a lookup returned is stored), or do I/O.
//!
//! Names with a single address are kept too: when that address dies, re-resolution may find
//! where the service went. (Their connects stay on the fast path: the planner has nothing to
//! race, so libc connects and dnsfo only looks again if it fails.)

use rustc_hash::FxHashMap as HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Most names remembered; the least recently learned name is dropped beyond this.
pub const MAX_NAMES: usize = 4096;
/// Most addresses remembered per name (resolver order kept; the rest ignored).
pub const MAX_ADDRS: usize = 64;

/// Which address families a lookup answered for: an `AF_INET` lookup says nothing about the
/// name's IPv6 addresses, so it must not erase them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    V4,
    V6,
    Both,
}

impl Scope {
    fn covers(self, ip: &IpAddr) -> bool {
        matches!(
            (self, ip),
            (Scope::Both, _) | (Scope::V4, IpAddr::V4(_)) | (Scope::V6, IpAddr::V6(_))
        )
    }
}

#[derive(Clone, Debug)]
struct Entry {
    addrs: Vec<IpAddr>,
    /// Learning order, for eviction and for choosing between names that share an address.
    seq: u64,
    /// When the answer goes stale (known for answers dnsfo fetched itself, with their TTL).
    valid_until: Option<Instant>,
}

#[derive(Default, Debug)]
pub struct Registry {
    names: HashMap<String, Entry>,
    by_addr: HashMap<IpAddr, Vec<String>>,
    seq: u64,
}

/// Lower-case, no trailing dot: `Example.COM.` and `example.com` are one name.
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Registry {
    /// Records what a lookup of `name` returned (IPv4-mapped addresses already canonical).
    pub fn learn(
        &mut self,
        name: &str,
        scope: Scope,
        addrs: &[IpAddr],
        valid_until: Option<Instant>,
    ) {
        let name = normalize(name);
        let mut merged: Vec<IpAddr> = Vec::new();
        for ip in addrs {
            if merged.len() < MAX_ADDRS && !merged.contains(ip) {
                merged.push(*ip);
            }
        }
        if let Some(old) = self.names.get(&name) {
            for ip in &old.addrs {
                if !scope.covers(ip) && merged.len() < MAX_ADDRS && !merged.contains(ip) {
                    merged.push(*ip);
                }
            }
        }
        self.forget(&name);
        if merged.is_empty() {
            return;
        }
        if self.names.len() >= MAX_NAMES {
            if let Some(oldest) = self
                .names
                .iter()
                .min_by_key(|(_, e)| e.seq)
                .map(|(n, _)| n.clone())
            {
                self.forget(&oldest);
            }
        }
        self.seq += 1;
        for ip in &merged {
            self.by_addr.entry(*ip).or_default().push(name.clone());
        }
        self.names.insert(
            name,
            Entry {
                addrs: merged,
                seq: self.seq,
                valid_until,
            },
        );
    }

    fn forget(&mut self, name: &str) {
        if let Some(old) = self.names.remove(name) {
            for ip in old.addrs {
                if let Some(v) = self.by_addr.get_mut(&ip) {
                    v.retain(|n| n != name);
                    if v.is_empty() {
                        self.by_addr.remove(&ip);
                    }
                }
            }
        }
    }

    /// Is `ip` an address of some multi-address name? (The connect fast-path test.)
    pub fn knows(&self, ip: &IpAddr) -> bool {
        self.by_addr.contains_key(ip)
    }

    /// The name a connect to `ip` belongs to, and that name's addresses. When several names
    /// share `ip`, the one this thread resolved most recently wins (`recent`, newest last), then
    /// the one learned last process-wide.
    pub fn name_for(&self, ip: &IpAddr, recent: &[String]) -> Option<(String, Vec<IpAddr>)> {
        let names = self.by_addr.get(ip)?;
        let pick = recent
            .iter()
            .rev()
            .find(|r| names.contains(r))
            .or_else(|| {
                names
                    .iter()
                    .max_by_key(|n| self.names.get(*n).map_or(0, |e| e.seq))
            })?;
        let entry = self.names.get(pick)?;
        Some((pick.clone(), entry.addrs.clone()))
    }

    /// Is the answer for `name` past its TTL?
    pub fn stale(&self, name: &str, now: Instant) -> bool {
        self.names
            .get(name)
            .and_then(|e| e.valid_until)
            .is_some_and(|v| v <= now)
    }

    pub fn addrs(&self, name: &str) -> Option<&[IpAddr]> {
        self.names.get(&normalize(name)).map(|e| e.addrs.as_slice())
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn learns_names_and_their_addresses() {
        let mut r = Registry::default();
        r.learn("one.test", Scope::Both, &[ip("127.0.0.2")], None);
        assert!(
            r.knows(&ip("127.0.0.2")),
            "single-address names are kept for re-resolution"
        );
        r.learn("one.test", Scope::Both, &[], None);
        assert!(
            !r.knows(&ip("127.0.0.2")),
            "an empty answer forgets the name"
        );
        r.learn(
            "Two.Test.",
            Scope::Both,
            &[ip("127.0.0.2"), ip("127.0.0.3"), ip("127.0.0.2")],
            None,
        );
        assert!(r.knows(&ip("127.0.0.2")));
        assert_eq!(
            r.addrs("two.test").unwrap(),
            &[ip("127.0.0.2"), ip("127.0.0.3")]
        );
        // A later answer replaces the earlier one.
        r.learn("two.test", Scope::Both, &[ip("127.0.0.3")], None);
        assert!(!r.knows(&ip("127.0.0.2")) && r.knows(&ip("127.0.0.3")));
    }

    #[test]
    fn staleness_follows_ttl() {
        let mut r = Registry::default();
        let t0 = Instant::now();
        r.learn(
            "n",
            Scope::Both,
            &[ip("127.0.0.2")],
            Some(t0 + std::time::Duration::from_secs(1)),
        );
        assert!(!r.stale("n", t0));
        assert!(r.stale("n", t0 + std::time::Duration::from_secs(2)));
        r.learn("m", Scope::Both, &[ip("127.0.0.2")], None);
        assert!(
            !r.stale("m", t0 + std::time::Duration::from_secs(99)),
            "libc answers carry no TTL"
        );
    }

    #[test]
    fn family_scoped_lookup_keeps_other_family() {
        let mut r = Registry::default();
        r.learn("n", Scope::Both, &[ip("::1"), ip("127.0.0.2")], None);
        r.learn("n", Scope::V4, &[ip("127.0.0.3"), ip("127.0.0.4")], None);
        assert_eq!(
            r.addrs("n").unwrap(),
            &[ip("127.0.0.3"), ip("127.0.0.4"), ip("::1")]
        );
        assert!(!r.knows(&ip("127.0.0.2")));
    }

    #[test]
    fn shared_address_goes_to_the_right_name() {
        let mut r = Registry::default();
        r.learn("a", Scope::Both, &[ip("127.0.0.9"), ip("127.0.0.2")], None);
        r.learn("b", Scope::Both, &[ip("127.0.0.9"), ip("127.0.0.3")], None);
        // Process-wide: last learned.
        assert_eq!(r.name_for(&ip("127.0.0.9"), &[]).unwrap().0, "b");
        // This thread resolved "a" last: "a".
        let recent = vec!["b".to_string(), "a".to_string()];
        let (n, addrs) = r.name_for(&ip("127.0.0.9"), &recent).unwrap();
        assert_eq!(n, "a");
        assert!(!addrs.contains(&ip("127.0.0.3")));
    }

    #[test]
    fn bounded() {
        let mut r = Registry::default();
        for i in 0..(MAX_NAMES + 10) {
            let a = IpAddr::from([127, (i >> 8) as u8, i as u8, 1]);
            let b = IpAddr::from([127, (i >> 8) as u8, i as u8, 2]);
            r.learn(&format!("n{i}"), Scope::Both, &[a, b], None);
        }
        assert_eq!(r.len(), MAX_NAMES);
        assert!(r.addrs("n0").is_none());
        assert!(r.addrs(&format!("n{}", MAX_NAMES + 9)).is_some());
        let many: Vec<IpAddr> = (0..200u8).map(|i| IpAddr::from([127, 9, 9, i])).collect();
        r.learn("big", Scope::Both, &many, None);
        assert_eq!(r.addrs("big").unwrap().len(), MAX_ADDRS);
    }
}
