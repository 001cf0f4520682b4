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
    if crate::alloc::exhausted() {
        return None;
    }
    let _entered = crate::guard::enter()?;
    crate::guard::contain(|| state::get().map(f)).flatten()
}

/// Is this fd still what dnsfo's per-fd record says (a placeholder, or a socket owing an error)?
/// A program or library may close an fd with a raw syscall and get the number back from an
/// unhooked call (`socketpair`, `accept`, `open`): then the record is forgotten (and its race
/// called off) instead of answering for an fd that is no longer ours.
fn still_special(fd: libc::c_int, s: &mut crate::fdtable::FdState) -> bool {
    let ino = crate::sys::inode(fd);
    if let Some(link) = s.race {
        if ino != Some(link.placeholder) {
            s.race = None;
            if let Some(st) = state::get() {
                crate::dial::background::cancel(st, link.id);
            }
        }
    }
    if let Some((_, owner)) = s.pending_error {
        if ino != Some(owner) {
            s.pending_error = None;
        }
    }
    s.is_special()
}
