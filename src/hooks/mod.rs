//! The edge: the only place that exports libc symbols. One file per family of calls.
//!
//! Every hook follows the same shape: call through at once when this thread is already inside
//! dnsfo (re-entrancy guard) or dnsfo is disabled; take the fast path when the call is none of
//! dnsfo's business; contain panics; leave `errno` as libc left it (or as dnsfo decided).
//! Must never: hold logic (that lives in `failover`, `plan`, `dial`), or let a panic out.

mod connect;
mod io;
mod resolve;
mod sockcalls;
mod socket;

use crate::state::{self, State};

/// Runs `f` inside dnsfo: `None` when this thread is already inside (the call must go straight
/// to libc), when dnsfo is disabled, or when `f` panicked.
fn inside<R>(f: impl FnOnce(&'static State) -> R) -> Option<R> {
    let _entered = crate::guard::enter()?;
    crate::guard::contain(|| state::get().map(f)).flatten()
}
