//! The edge: the only place that exports libc symbols. One file per family of calls.
//!
//! Every hook follows the same shape: call through at once when this thread is already inside
//! dnsfo (re-entrancy guard) or dnsfo is disabled; take the fast path when the call is none of
//! dnsfo's business; contain panics; leave `errno` as libc left it (or as dnsfo decided).
//! Hooks are `extern "C-unwind"`, and every call that can wait (a cancellation point) is made
//! outside [`inside`], so that a cancelled thread unwinds through them untouched (DESIGN.md fact
//! 13). Must never: hold logic (that lives in `failover` and `dial`), or let a panic out.

mod connect;
mod control;
mod process;
mod resolve;
mod sockcalls;
mod socket;
mod wait;

use crate::lifecycle;
use crate::state::State;

/// Runs `f` inside dnsfo, with thread cancellation off: `None` when this thread is already
/// inside (the call must go straight to libc), when dnsfo is disabled, or when `f` panicked.
/// `f` must not wait: a wait belongs between two calls of this.
fn inside<R>(f: impl FnOnce(&'static State) -> R) -> Option<R> {
    if crate::alloc::exhausted() {
        return None;
    }
    let _deferred = crate::sys::CancelDeferred::new();
    let _entered = crate::guard::enter()?;
    let _cancel = crate::sys::CancelOff::new();
    crate::guard::contain(|| lifecycle::get().map(f)).flatten()
}
