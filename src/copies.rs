//! Which sockets are being steered right now, by identity (device and inode), in memory that
//! `fork()` children share with this process.
//!
//! A steer acts on the program's socket itself, so every copy of its fd (a `dup`, a forked
//! child's, one passed over a Unix socket to a child) is steered too; but a copy under another
//! fd number, or in another process, could see the instant between dnsfo's abort of an attempt
//! and its next one. The wait hooks of any process that shares this table hold such an event
//! back, as they do for the fd that is steered.
//!
//! An entry stays for a moment after its steer ends ([`LINGER`]): a wait that woke in the
//! instant between an abort and the next attempt may return only after the steer has already
//! won, with the stale bits of that instant.
//!
//! Owns: one shared anonymous mapping made at start-up (inherited by forked children, gone at
//! `exec`). Must never: block, allocate, or be trusted for anything but "hold this event back
//! for a moment" (a stale entry only costs a short wait).

use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

const SLOTS: usize = 256;
/// How long an entry is kept after its steer ended, in ms.
pub const LINGER: u64 = 1000;

#[repr(C)]
struct Slot {
    dev: AtomicU64,
    /// 0: free.
    ino: AtomicU64,
    /// When the steer ended (monotonic ms); 0 while it goes on.
    done_ms: AtomicU64,
}

/// What the table says about a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Steering,
    /// Its steer ended less than [`LINGER`] ago.
    Settled,
}

fn now_ms() -> u64 {
    crate::sys::monotonic_ms().max(1)
}

#[repr(C)]
struct Table {
    active: AtomicU32,
    slots: [Slot; SLOTS],
}

static TABLE: AtomicPtr<Table> = AtomicPtr::new(std::ptr::null_mut());

/// Makes the table (once, at start-up; a process without it simply has no cross-process view).
pub fn init() {
    if !TABLE.load(Ordering::Acquire).is_null() {
        return;
    }
    if let Some(p) = crate::sys::shared_zeroed(std::mem::size_of::<Table>()) {
        TABLE.store(p as *mut Table, Ordering::Release);
    }
}

fn table() -> Option<&'static Table> {
    let p = TABLE.load(Ordering::Acquire);
    // SAFETY: a zeroed, never unmapped mapping of the right size: all-zero atomics are valid.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// Is any socket being steered by this process or the one it was forked from?
pub fn any() -> bool {
    table().is_some_and(|t| t.active.load(Ordering::Relaxed) != 0)
}

/// Notes that the socket `(dev, ino)` is being steered; `None` when the table is full.
pub fn mark(id: (u64, u64)) -> Option<usize> {
    let t = table()?;
    if id.1 == 0 {
        return None;
    }
    let now = now_ms();
    for (i, s) in t.slots.iter().enumerate() {
        let ino = s.ino.load(Ordering::Acquire);
        let done = s.done_ms.load(Ordering::Acquire);
        let free = ino == 0 || (done != 0 && now.saturating_sub(done) > LINGER);
        if free
            && s.ino
                .compare_exchange(ino, id.1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            s.done_ms.store(0, Ordering::Release);
            s.dev.store(id.0, Ordering::Release);
            t.active.fetch_add(1, Ordering::AcqRel);
            return Some(i);
        }
    }
    None
}

/// The steer of slot `i` is over (the entry lingers a moment).
pub fn unmark(i: usize) {
    if let Some((t, s)) = table().and_then(|t| t.slots.get(i).map(|s| (t, s))) {
        s.done_ms.store(now_ms(), Ordering::Release);
        t.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Is the socket `(dev, ino)` being steered (by this process or its parent), or was it a
/// moment ago?
pub fn marked(id: (u64, u64)) -> Option<Mark> {
    let t = table()?;
    let now = now_ms();
    t.slots.iter().find_map(|s| {
        if s.ino.load(Ordering::Acquire) != id.1 || s.dev.load(Ordering::Acquire) != id.0 {
            return None;
        }
        match s.done_ms.load(Ordering::Acquire) {
            0 => Some(Mark::Steering),
            d if now.saturating_sub(d) <= LINGER => Some(Mark::Settled),
            _ => None,
        }
    })
}
