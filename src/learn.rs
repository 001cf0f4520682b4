//! Between the resolve hooks and the shared state: what a lookup teaches (the registry) and the
//! order its answer is given back in (health, through `plan::lookup_order`).
//!
//! Owns: which lookups count (names, not IP literals) and their scope. Must never: add, drop or
//! change an address of the answer; only its order.

use crate::plan;
use crate::registry::{self, Scope};
use crate::state::{self, State};
use crate::stats;
use std::net::IpAddr;
use std::time::Instant;

/// Records the answer for `name` and returns the order to give it back in (`None`: as is).
pub fn learn(
    s: &State,
    name: &str,
    scope: Scope,
    addrs: &[IpAddr],
    port: Option<u16>,
) -> Option<Vec<IpAddr>> {
    if name.is_empty() || name.parse::<IpAddr>().is_ok() {
        return None;
    }
    let name = registry::normalize(name);
    s.registry.write().learn(&name, scope, addrs);
    if addrs.len() > 1 {
        stats::add(&stats::LOOKUPS, 1);
    }
    state::note_lookup(&name);
    let now = Instant::now();
    let h = s.health.lock();
    plan::lookup_order(addrs, h.any_winner(&name, port), &|ip| {
        h.ip_dead_until(ip, port, now)
    })
}

/// The scope of an answer to a lookup for family `af`.
pub fn scope_of(af: i32) -> Scope {
    match af {
        libc::AF_INET => Scope::V4,
        libc::AF_INET6 => Scope::V6,
        _ => Scope::Both,
    }
}
