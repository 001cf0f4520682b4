//! Re-entrancy flag and panic containment.
//!
//! Owns: the per-thread "inside dnsfo" flag that every hook checks first, and the one place
//! where panics are caught. Must never: allocate before the flag is set, or let a panic unwind
//! into the host program.
//!
//! Why a flag: dnsfo's own sockets, Rust's std (its `close`), the logger and hickory all call
//! functions that dnsfo exports; with the flag set those calls go straight to libc. The flag is a
//! `const`-initialised `Cell`, so it needs no allocation and no destructor and stays usable from
//! other libraries' constructors and from thread-local destructors; when it is nevertheless
//! unavailable (`try_with` fails) the hook behaves as if dnsfo were already active: pass-through.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// Proof that this thread entered dnsfo; clears the flag on drop.
pub struct Entered(());

impl Drop for Entered {
    fn drop(&mut self) {
        let _ = INSIDE.try_with(|f| f.set(false));
    }
}

/// Enters dnsfo, or `None` when this thread is already inside it (or its thread-locals are gone):
/// the caller must then pass the call straight to libc.
pub fn enter() -> Option<Entered> {
    match INSIDE.try_with(|f| f.replace(true)) {
        Ok(false) => Some(Entered(())),
        _ => None,
    }
}

/// Runs `f`, turning a panic into `None`. The panic message goes to the log (the panic hook
/// installed by `logging` keeps it off the program's stderr).
pub fn contain<R>(f: impl FnOnce() -> R) -> Option<R> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_enter_is_refused_and_flag_resets() {
        let g = enter().expect("first enter");
        assert!(enter().is_none());
        drop(g);
        assert!(enter().is_some());
    }

    #[test]
    fn contain_catches_panics() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        assert_eq!(contain(|| -> i32 { panic!("boom") }), None);
        std::panic::set_hook(prev);
        assert_eq!(contain(|| 7), Some(7));
    }
}
