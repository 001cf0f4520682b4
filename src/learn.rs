//! Between the resolve hooks and the shared state: what a lookup teaches (the registry) and the
//! order its answer is given back in (health, through `plan::lookup_order`).
//!
//! Owns: which lookups count (names, not IP literals) and their scope, and the proof a connect
//! brings of which lookup its address came from (the sockaddr pointer it passed). Must never:
//! add, drop or change an address of the answer; only its order.

use crate::plan;
use crate::registry::{self, Scope};
use crate::state::State;
use crate::stats;
use std::cell::Cell;
use std::net::IpAddr;
use std::time::Instant;

thread_local! {
    /// The `sockaddr` pointer of the connect this thread is making (set by the connect hook).
    static CONNECT_ADDR: Cell<usize> = const { Cell::new(0) };
}

/// The connect hook, right before `failover::connect`: the pointer the program passed.
pub fn note_connect_addr(p: *const libc::sockaddr) {
    let _ = CONNECT_ADDR.try_with(|c| c.set(p as usize));
}

/// The `sockaddr` pointer of this thread's current connect (0: unknown).
pub fn connect_addr() -> usize {
    CONNECT_ADDR.try_with(Cell::get).unwrap_or(0)
}

/// How often the shared cache file is looked at for other processes' news.
const CACHE_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Records the answer for `name` and returns the order to give it back in (`None`: as is).
/// `handed`: the sockaddrs of a `getaddrinfo` answer (`ai_addr` pointer, address), remembered
/// until the program frees the list ([`forget_answer`]).
pub fn learn(
    s: &State,
    name: &str,
    scope: Scope,
    addrs: &[IpAddr],
    port: Option<u16>,
    handed: &[(usize, IpAddr)],
) -> Option<Vec<IpAddr>> {
    if name.is_empty() || crate::literal::parse(name).is_some() {
        // glibc reads every `inet_aton` form (`127.1`) as an address: never a name.
        return None;
    }
    if s.config.excluded(name) {
        // A config file's `exclude`: unlearned, the name's connects go straight to libc.
        return None;
    }
    let name = registry::normal(name);
    let name = name.as_ref();
    {
        // Most answers repeat what the registry holds: the read lock tells, and threads
        // looking names up at once do not queue for the write lock.
        let reg = s.registry.read();
        if reg.repeats(name, scope, addrs) {
            reg.hand_out(name, handed);
        } else {
            drop(reg);
            let mut reg = s.registry.write();
            reg.learn(name, scope, addrs, None);
            reg.hand_out(name, handed);
        }
    }
    if addrs.len() < 2 {
        // One address: nothing to order, no winner to share.
        return None;
    }
    stats::add(&stats::LOOKUPS, 1);
    seed_from_cache(s, name, addrs);
    let now = Instant::now();
    let h = s.health.read();
    plan::lookup_order(addrs, h.any_winner(name, port), &|ip| {
        h.ip_dead_until(ip, port, now)
    })
}

/// The program frees a `getaddrinfo` answer whose nodes' `ai_addr` pointers are `ptrs`.
pub fn forget_answer(s: &State, ptrs: &[usize]) {
    s.registry.read().take_back(ptrs);
}

/// The scope of an answer to a lookup for family `af`.
pub fn scope_of(af: i32) -> Scope {
    match af {
        libc::AF_INET => Scope::V4,
        libc::AF_INET6 => Scope::V6,
        _ => Scope::Both,
    }
}

/// Winners other processes found for this name, among the addresses the resolver just returned,
/// become this process's winners (unless it already has its own).
fn seed_from_cache(s: &State, name: &str, addrs: &[IpAddr]) {
    let Some(cache) = &s.cache else { return };
    // Another thread is reading the file: skip rather than wait (a hint, not a must).
    let Some(mut cached) = s.cached.try_lock() else {
        return;
    };
    // Other processes' writes are picked up within a second; no file access per lookup.
    let now = Instant::now();
    if cached
        .checked
        .is_none_or(|t| now.duration_since(t) >= CACHE_RECHECK)
    {
        cached.checked = Some(now);
        let stamp = cache.stamp();
        if stamp != cached.stamp {
            cached.entries = cache.load();
            cached.stamp = stamp;
        }
    }
    let seeds =
        dnsfo_core::cache::Seeds::of(&cached.entries, name, addrs, dnsfo_core::cache::now_ms());
    drop(cached);
    // Usually all known already: a read lock tells, and lookups do not queue for the write.
    if seeds.is_empty() || !s.health.read().seeds_news(name, &seeds, now) {
        return;
    }
    let (winners, dead) = s.health.write().seed(name, &seeds, now);
    for w in winners {
        log::debug!(
            "{name}: winner {} port {} from the shared cache",
            w.ip(),
            w.port()
        );
    }
    for (addr, left) in dead {
        log::debug!(
            "{name}: {addr} dead (for {} ms more) by the shared cache",
            left.as_millis()
        );
    }
}
