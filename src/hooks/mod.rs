//! The edge: the only place that exports libc symbols. One file per family of calls; every
//! exported hook is made by [`hook!`], so that all share one shape (see there): a cheap test of
//! whether the call is dnsfo's business at all, dnsfo's steps with `errno` saved and panics
//! contained, and the real call made exactly once, outside every panic boundary.
//!
//! Hooks are `extern "C-unwind"`, and every call that can wait (a cancellation point) is made
//! outside [`inside`], so that a cancelled thread unwinds through them untouched (DESIGN.md fact
//! 13). Must never: hold logic (that lives in `failover` and `dial`), or let a panic out.

/// Defines one exported hook. Every libc symbol dnsfo exports is made by this macro; two forms.
///
/// **Steps around the real call:** `fn NAME(ARGS) -> RET = REAL; [before { .. }] [after(r) { .. }]`
/// 1. `before` runs with `errno` saved and restored and its panics contained: the real call
///    then sees the program's `errno`;
/// 2. `REAL` is called exactly once with the program's arguments, outside every panic boundary
///    (it may be a cancellation point: a forced unwind passes through the hook untouched);
/// 3. `after` sees the result as `r`, with `errno` saved and restored (the program sees libc's)
///    and its panics contained. The result is returned whatever `after` did: a panic after the
///    real call can never make it run a second time (the trap of DESIGN.md's hook rules).
///
/// The steps reach dnsfo's state through [`inside`] (nothing when this thread is already inside
/// dnsfo, or dnsfo is off), test first whether the call concerns dnsfo at all (one relaxed load
/// on the fast path), and never wait with cancellation enabled.
///
/// **A call dnsfo may take over:** `fn NAME(ARGS) -> RET = REAL; take over if COND => { .. }`.
/// When the cheap test `COND` fails the real call is made at once and nothing else runs.
/// Otherwise the block makes the call: a connect that dnsfo steers, a wait that must not return
/// events of a steered socket's intermediate failures. Its steps go through [`inside`] and its
/// waits are the program's own cancellation points, between those steps.
macro_rules! hook {
    (
        $(#[$meta:meta])*
        fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty = $real:path;
        $(before $before:block)?
        $(after($r:ident) $after:block)?
    ) => {
        $(#[$meta])*
        ///
        /// # Safety
        #[doc = concat!("Same contract as libc's `", stringify!($name), "`.")]
        #[no_mangle]
        pub unsafe extern "C-unwind" fn $name($($arg: $ty),*) -> $ret {
            $($crate::hooks::contained(|| $before);)?
            // SAFETY: the program's arguments, forwarded unchanged under its contract.
            let result = unsafe { $real($($arg),*) };
            $({
                let $r = result;
                $crate::hooks::contained(|| $after);
            })?
            result
        }
    };
    (
        $(#[$meta:meta])*
        fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty = $real:path;
        take over if $cond:expr => $imp:block
    ) => {
        $(#[$meta])*
        ///
        /// # Safety
        #[doc = concat!("Same contract as libc's `", stringify!($name), "`.")]
        #[no_mangle]
        pub unsafe extern "C-unwind" fn $name($($arg: $ty),*) -> $ret {
            if !$cond {
                // SAFETY: the program's arguments, forwarded unchanged under its contract.
                return unsafe { $real($($arg),*) };
            }
            $imp
        }
    };
}

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

/// One of a hook's steps around its real call ([`hook!`]): `errno` saved and restored, a panic
/// contained (its message goes to the log). Must not wait with cancellation enabled: a forced
/// unwind cannot pass a panic boundary.
fn contained(step: impl FnOnce()) {
    let _errno = crate::sys::ErrnoGuard::save();
    let _ = crate::guard::contain(step);
}
