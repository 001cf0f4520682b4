//! Locks that survive `fork()`.
//!
//! `fork()` copies a threaded process with only the forking thread. A lock another thread held
//! stays held in the child, and parking_lot's queue of parked waiters is copied too: unlocking
//! such a lock in the child can hand it straight to a waiter that does not exist there (measured:
//! one child in ~50 hung for good). So dnsfo's shared state is kept behind locks that the child
//! replaces instead of unlocking:
//!
//! - [`Renewable`] wraps a parking_lot lock behind a pointer. The `fork()` prepare handler takes
//!   the lock (so no thread is in the middle of an update), and the child swaps in a fresh lock
//!   holding the same data; the old lock is leaked, its waiters with it.
//! - [`SpinLock`] is for rarely contended, fork-touched statics: no parking at all, so the child
//!   just marks it free.
//!
//! Owns: nothing but the locks. Must never: be renewed outside a `fork()` child handler.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

/// A lock (or any value) reached through a pointer that a `fork()` child can replace.
pub struct Renewable<T> {
    cur: AtomicPtr<T>,
}

impl<T> Renewable<T> {
    pub fn new(value: T) -> Self {
        Renewable {
            cur: AtomicPtr::new(Box::into_raw(Box::new(value))),
        }
    }

    /// Replaces the value with `make(old)` and leaks the old one (its memory may still be
    /// referenced by copied waiter queues).
    ///
    /// # Safety
    /// Only in a `fork()` child handler, where no other thread exists and the caller holds no
    /// reference into the old value.
    pub unsafe fn renew(&self, make: impl FnOnce(&T) -> T) {
        let old = self.cur.load(Ordering::Acquire);
        // SAFETY: `old` came from Box::into_raw and is never freed.
        let new = Box::into_raw(Box::new(make(unsafe { &*old })));
        self.cur.store(new, Ordering::Release);
    }
}

impl<T> Deref for Renewable<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the pointer always comes from Box::into_raw and is never freed (renewal leaks).
        unsafe { &*self.cur.load(Ordering::Acquire) }
    }
}

/// A spin lock (yielding after a few spins) with a `fork()`-child reset.
pub struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: access to `value` is serialised by `locked`, as in any mutex.
unsafe impl<T: Send> Sync for SpinLock<T> {}

pub struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> SpinLock<T> {
    pub const fn new(value: T) -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    pub fn lock(&self) -> SpinGuard<'_, T> {
        let mut spins = 0u32;
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        SpinGuard { lock: self }
    }

    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }

    /// Leaves the lock taken with no guard (the `fork()` prepare handler).
    pub fn lock_for_fork(&self) {
        std::mem::forget(self.lock());
    }

    /// Frees the lock whatever holds it.
    ///
    /// # Safety
    /// Only after [`SpinLock::lock_for_fork`] in the same thread, or in a `fork()` child where
    /// the holder does not exist.
    pub unsafe fn force_unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves the lock is held, exclusively.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_lock_excludes_and_renewable_swaps() {
        let l = std::sync::Arc::new(SpinLock::new(0u64));
        let ts: Vec<_> = (0..4)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        *l.lock() += 1;
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(*l.lock(), 40_000);
        let r = Renewable::new(parking_lot::Mutex::new(7));
        std::mem::forget(r.lock());
        // SAFETY: single-threaded test standing in for a fork child.
        unsafe { r.renew(|old| parking_lot::Mutex::new(*old.data_ptr())) };
        assert_eq!(*r.lock(), 7, "fresh lock, same data");
    }
}
