//! dnsfo's allocator: the system allocator (libc's malloc) plus an emergency reserve.
//!
//! Rust aborts the process when an allocation fails. Inside someone else's program that would
//! turn "memory is tight" into a crash that the program never asked for. So dnsfo keeps 1 MiB in
//! reserve: when an allocation fails, the reserve is given back, the allocation retried, and from
//! then on every hook passes straight through to libc (see [`exhausted`]), so the call under way
//! finishes and nothing more is allocated.
//!
//! Owns: the reserve. Must never: allocate itself, or take a lock (it runs inside malloc's
//! callers, from any thread, during fork, in signal-unsafe places).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

const RESERVE: Layout = match Layout::from_size_align(1 << 20, 16) {
    Ok(l) => l,
    Err(_) => panic!("reserve layout"),
};

static SPARE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static EXHAUSTED: AtomicBool = AtomicBool::new(false);

/// Has an allocation failed? Then dnsfo is a pure pass-through from here on.
pub fn exhausted() -> bool {
    EXHAUSTED.load(Ordering::Relaxed)
}

/// Sets the reserve aside (at initialisation).
pub fn arm() {
    if SPARE.load(Ordering::Relaxed).is_null() {
        // SAFETY: RESERVE has a non-zero size.
        let p = unsafe { System.alloc(RESERVE) };
        if SPARE
            .compare_exchange(std::ptr::null_mut(), p, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
            && !p.is_null()
        {
            // SAFETY: `p` was just allocated with RESERVE and never shared.
            unsafe { System.dealloc(p, RESERVE) };
        }
    }
}

/// Gives the reserve back to the system; `false` when it was already used.
fn release() -> bool {
    let p = SPARE.swap(std::ptr::null_mut(), Ordering::AcqRel);
    EXHAUSTED.store(true, Ordering::Relaxed);
    if p.is_null() {
        return false;
    }
    // SAFETY: SPARE only ever holds a block allocated with RESERVE, taken out exactly once here.
    unsafe { System.dealloc(p, RESERVE) };
    true
}

#[cfg(test)]
thread_local! {
    /// Allocations this thread made (tests only: the fast paths must show none).
    static ALLOCS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many allocations this thread has made so far (tests only).
#[cfg(test)]
pub fn allocations() -> u64 {
    ALLOCS.with(std::cell::Cell::get)
}

#[cfg(test)]
fn count() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

#[cfg(not(test))]
fn count() {}

pub struct WithReserve;

// SAFETY: every method forwards to `System` with the caller's arguments; the reserve block is
// only ever allocated and freed through `System` with its own layout.
unsafe impl GlobalAlloc for WithReserve {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() && release() {
            // SAFETY: as above.
            return unsafe { System.alloc(layout) };
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() && release() {
            // SAFETY: as above.
            return unsafe { System.alloc_zeroed(layout) };
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() && release() {
            // SAFETY: as above; a failed realloc left `ptr` untouched.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::allocations;
    use crate::registry::{normal, Registry, Scope};
    use std::borrow::Cow;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_counter_sees_an_allocation() {
        let before = allocations();
        let v: Vec<u64> = std::hint::black_box(Vec::with_capacity(4));
        assert!(
            allocations() > before,
            "the test allocator is not installed"
        );
        drop(v);
    }

    #[test]
    fn a_repeated_lookup_allocates_nothing() {
        let mut r = Registry::default();
        let addrs = [ip("127.0.0.2"), ip("127.0.0.3")];
        r.learn("svc.test", Scope::V4, &addrs, None);
        let nodes = [(0x1000, addrs[0]), (0x2000, addrs[1])];
        // The first answer grows the handed-out table to what the program needs.
        r.hand_out("svc.test", &nodes);
        r.take_back(&[0x1000, 0x2000]);
        let before = allocations();
        for _ in 0..100 {
            // What `learn::learn` does with an answer that repeats (under the read lock).
            let name = normal("svc.test");
            assert!(r.repeats(&name, Scope::V4, &addrs));
            r.hand_out(&name, &nodes);
            assert!(r.name_for(&addrs[0], || 0).is_some());
            r.take_back(&[0x1000, 0x2000]);
            let order = crate::plan::lookup_order(&addrs, Some(addrs[0]), &|_| None);
            assert!(order.is_none());
        }
        assert_eq!(allocations() - before, 0);
        assert!(matches!(normal("Svc.Test."), Cow::Owned(_)));
    }
}
