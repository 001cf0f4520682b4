//! Names and the addresses the resolver returned for them.
//!
//! Owns: name → addresses (in resolver order), the reverse index address → names, and the
//! sockaddrs handed out in `getaddrinfo` answers the program still holds (not yet freed), all
//! bounded in size. Must never: invent an address (only what a lookup returned is stored), guess
//! which name a shared address belongs to, or do I/O.
//!
//! Names with a single address are kept too: when that address dies, re-resolution may find
//! where the service went. (Their connects stay on the fast path: the planner has nothing to
//! race, so libc connects and dnsfo only looks again if it fails.)

use parking_lot::Mutex;
use rustc_hash::FxHashMap as HashMap;
use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Most names remembered; the least recently learned name is dropped beyond this.
pub const MAX_NAMES: usize = 4096;
/// Most addresses remembered per name (resolver order kept; the rest ignored).
pub const MAX_ADDRS: usize = 64;
/// Most handed-out sockaddrs remembered; beyond this a new answer brings no proof (a connect to
/// an address shared by several names then passes through).
pub const MAX_HANDED: usize = 4096;

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

/// A learned name and its addresses, shared (not copied) with the connects that use it.
#[derive(Debug, PartialEq, Eq)]
pub struct Known {
    pub name: Arc<str>,
    pub addrs: Vec<IpAddr>,
}

#[derive(Debug)]
struct Entry {
    known: Arc<Known>,
    /// Learning order, for eviction (bumped under the read lock when an answer repeats).
    seq: AtomicU64,
    /// When the answer goes stale (known for answers dnsfo fetched itself, with their TTL).
    valid_until: Option<Instant>,
}

/// `ai_addr` pointer of a node of a live `getaddrinfo` answer → the name asked and the address
/// the node held: the proof of which name a connect's sockaddr came from.
type Handed = HashMap<usize, (Arc<str>, IpAddr)>;

#[derive(Default, Debug)]
pub struct Registry {
    names: HashMap<String, Entry>,
    by_addr: HashMap<IpAddr, Vec<Arc<Known>>>,
    /// Its own lock, taken with the registry's read lock held: every lookup hands out new
    /// sockaddrs, but most answers repeat what the registry holds, and those take no write lock.
    /// (A `fork()` holds the registry's write lock, so nobody holds this one then.)
    handed: Mutex<Handed>,
    seq: AtomicU64,
}

/// Lower-case, no trailing dot: `Example.COM.` and `example.com` are one name.
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The same, without allocating when `name` is already normal (the usual case).
pub fn normal(name: &str) -> Cow<'_, str> {
    if name.ends_with('.') || name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(normalize(name))
    } else {
        Cow::Borrowed(name)
    }
}

impl Registry {
    /// Does the registry already hold exactly this answer for `name` (normal form) from libc:
    /// the same addresses in the same order for the families of `scope`, and no TTL of dnsfo's
    /// own lookup to clear? Then [`Registry::learn`] would change nothing but the learning order,
    /// which this refreshes (read lock only).
    pub fn repeats(&self, name: &str, scope: Scope, addrs: &[IpAddr]) -> bool {
        let Some(e) = self.names.get(name) else {
            return false;
        };
        if e.valid_until.is_some() {
            return false;
        }
        // What `learn` would store: the answer (duplicates once, at most MAX_ADDRS), then the
        // held addresses of the other families.
        let held = &e.known.addrs;
        let mut k = 0usize;
        for (i, ip) in addrs.iter().enumerate() {
            if addrs[..i].contains(ip) {
                continue;
            }
            if k >= MAX_ADDRS {
                break;
            }
            if held.get(k) != Some(ip) {
                return false;
            }
            k += 1;
        }
        if k == 0 || held[k..].iter().any(|ip| scope.covers(ip)) {
            return false;
        }
        e.seq.store(
            self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            Ordering::Relaxed,
        );
        true
    }

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
            for ip in &old.known.addrs {
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
                .min_by_key(|(_, e)| e.seq.load(Ordering::Relaxed))
                .map(|(n, _)| n.clone())
            {
                self.forget(&oldest);
            }
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let known = Arc::new(Known {
            name: Arc::from(name.as_str()),
            addrs: merged,
        });
        for ip in &known.addrs {
            self.by_addr.entry(*ip).or_default().push(known.clone());
        }
        self.names.insert(
            name,
            Entry {
                known,
                seq: AtomicU64::new(seq),
                valid_until,
            },
        );
    }

    fn forget(&mut self, name: &str) {
        if let Some(old) = self.names.remove(name) {
            for ip in &old.known.addrs {
                if let Some(v) = self.by_addr.get_mut(ip) {
                    v.retain(|k| !Arc::ptr_eq(k, &old.known));
                    if v.is_empty() {
                        self.by_addr.remove(ip);
                    }
                }
            }
        }
    }

    /// Is `ip` an address of some learned name? (The connect fast-path test.)
    pub fn knows(&self, ip: &IpAddr) -> bool {
        self.by_addr.contains_key(ip)
    }

    /// The name a connect to `ip` belongs to, and that name's addresses, when that name is
    /// certain: `ip` is an address of one learned name only, or the program connects with a
    /// sockaddr dnsfo handed out for one of the names in a `getaddrinfo` answer it still holds
    /// (`sockaddr`: the pointer the program passed to `connect`, asked for only when `ip` is
    /// shared). Otherwise `None`: which name the program means is not known, so nothing may be
    /// done on its behalf.
    pub fn name_for(&self, ip: &IpAddr, sockaddr: impl FnOnce() -> usize) -> Option<Arc<Known>> {
        let names = self.by_addr.get(ip)?;
        match names.as_slice() {
            [only] => Some(only.clone()),
            _ => {
                let p = sockaddr();
                let handed = self.handed.lock();
                let (name, held) = handed.get(&p).filter(|_| p != 0)?;
                // The node still holds the address it was handed out with, and the name still
                // has that address.
                if held != ip {
                    return None;
                }
                names.iter().find(|k| k.name == *name).cloned()
            }
        }
    }

    /// Remembers the sockaddrs of a `getaddrinfo` answer for `name` (normal form: `ai_addr`
    /// pointer and the address it holds), until [`Registry::take_back`]. Needs only the read
    /// lock; allocates nothing once the table has grown to the program's needs.
    pub fn hand_out(&self, name: &str, nodes: &[(usize, IpAddr)]) {
        let Some(e) = self.names.get(name) else {
            return;
        };
        let mut handed = self.handed.lock();
        for &(p, ip) in nodes {
            if p == 0 {
                continue;
            }
            if handed.len() >= MAX_HANDED && !handed.contains_key(&p) {
                break;
            }
            handed.insert(p, (e.known.name.clone(), ip));
        }
    }

    /// The program frees an answer: its sockaddrs prove nothing any more (their memory is
    /// about to be reused).
    pub fn take_back(&self, ptrs: &[usize]) {
        let mut handed = self.handed.lock();
        if handed.is_empty() {
            return;
        }
        for p in ptrs {
            handed.remove(p);
        }
    }

    /// How many handed-out sockaddrs are remembered.
    pub fn handed_len(&self) -> usize {
        self.handed.lock().len()
    }

    /// Is the answer for `name` past its TTL?
    pub fn stale(&self, name: &str, now: Instant) -> bool {
        self.names
            .get(name)
            .and_then(|e| e.valid_until)
            .is_some_and(|v| v <= now)
    }

    pub fn addrs(&self, name: &str) -> Option<&[IpAddr]> {
        self.names
            .get(normal(name).as_ref())
            .map(|e| e.known.addrs.as_slice())
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
    fn a_repeated_answer_is_recognised_per_family_and_order() {
        let mut r = Registry::default();
        let (a, b, v6) = (ip("127.0.0.2"), ip("127.0.0.3"), ip("::1"));
        assert!(!r.repeats("n", Scope::Both, &[a]), "unknown name");
        r.learn("n", Scope::Both, &[v6, a, b], None);
        assert!(r.repeats("n", Scope::Both, &[v6, a, b]));
        assert!(
            r.repeats("n", Scope::Both, &[v6, a, a, b]),
            "duplicates are stored once"
        );
        assert!(
            r.repeats("n", Scope::V6, &[v6]),
            "an AF_INET6 answer leaves the rest alone"
        );
        assert!(
            !r.repeats("n", Scope::V4, &[a, b]),
            "learn would put ::1 last"
        );
        r.learn("n", Scope::V4, &[a, b], None);
        assert!(r.repeats("n", Scope::V4, &[a, b]));
        assert!(!r.repeats("n", Scope::V4, &[b, a]), "the order changed");
        assert!(!r.repeats("n", Scope::V4, &[a]), "an address went away");
        assert!(
            !r.repeats("n", Scope::Both, &[v6, a, b, ip("127.0.0.4")]),
            "one came"
        );
        assert!(!r.repeats("n", Scope::Both, &[]));
        // Whatever `repeats` accepts, `learn` leaves as it was.
        let before = r.addrs("n").unwrap().to_vec();
        r.learn("n", Scope::V4, &[a, b], None);
        assert_eq!(r.addrs("n").unwrap(), before.as_slice());
        // An answer of dnsfo's own lookup carries a TTL that a libc answer must clear.
        r.learn("t", Scope::Both, &[a], Some(Instant::now()));
        assert!(!r.repeats("t", Scope::Both, &[a]));
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
    fn shared_address_needs_proof() {
        let mut r = Registry::default();
        r.learn("a", Scope::Both, &[ip("127.0.0.9"), ip("127.0.0.2")], None);
        assert_eq!(
            &*r.name_for(&ip("127.0.0.9"), || unreachable!("not shared"))
                .unwrap()
                .name,
            "a"
        );
        r.learn("b", Scope::Both, &[ip("127.0.0.9"), ip("127.0.0.3")], None);
        // Shared and no proof: nobody knows which name the program means.
        assert!(r.name_for(&ip("127.0.0.9"), || 0).is_none());
        assert!(r.name_for(&ip("127.0.0.9"), || 0x1000).is_none());
        // Unshared addresses stay certain.
        assert_eq!(
            r.name_for(&ip("127.0.0.2"), || 0).unwrap().name.as_ref(),
            "a"
        );
        // The program connects with the sockaddr of a's answer it still holds: "a".
        r.hand_out("a", &[(0x1000, ip("127.0.0.9")), (0x2000, ip("127.0.0.2"))]);
        r.hand_out("b", &[(0x3000, ip("127.0.0.9"))]);
        let k = r.name_for(&ip("127.0.0.9"), || 0x1000).unwrap();
        assert_eq!(&*k.name, "a");
        assert!(!k.addrs.contains(&ip("127.0.0.3")));
        assert_eq!(
            r.name_for(&ip("127.0.0.9"), || 0x3000)
                .unwrap()
                .name
                .as_ref(),
            "b"
        );
        // A node that held another address proves nothing about this one.
        assert!(r.name_for(&ip("127.0.0.9"), || 0x2000).is_none());
        // Freed: its memory may hold anything now.
        r.take_back(&[0x1000, 0x2000]);
        assert!(r.name_for(&ip("127.0.0.9"), || 0x1000).is_none());
        assert_eq!(r.handed_len(), 1);
        // A name that no longer has the address is no answer for it.
        r.learn("b", Scope::Both, &[ip("127.0.0.3")], None);
        assert_eq!(
            r.name_for(&ip("127.0.0.9"), || 0x3000)
                .unwrap()
                .name
                .as_ref(),
            "a"
        );
        r.learn("c", Scope::Both, &[ip("127.0.0.9")], None);
        assert!(r.name_for(&ip("127.0.0.9"), || 0x3000).is_none());
    }

    #[test]
    fn handed_out_is_bounded() {
        let mut r = Registry::default();
        r.learn("n", Scope::Both, &[ip("127.0.0.2")], None);
        let nodes: Vec<(usize, IpAddr)> = (1..=MAX_HANDED + 10)
            .map(|i| (i * 16, ip("127.0.0.2")))
            .collect();
        r.hand_out("n", &nodes);
        assert_eq!(r.handed_len(), MAX_HANDED);
        r.take_back(&[16]);
        assert_eq!(r.handed_len(), MAX_HANDED - 1);
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
