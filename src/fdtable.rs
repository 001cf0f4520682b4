//! Per-fd memory of the TCP sockets the program created: what a replacement socket must carry.
//!
//! Owns: for each fd that `socket()` returned as an IPv4/IPv6 stream socket, its domain and
//! protocol, the options the program set (in order, last value per option) and the address it
//! asked to bind, its epoll registrations, and its steer while one runs. Must never: hold a slot's
//! lock across a system call that can wait (a steer's calls never wait), or grow without bound.
//!
//! Why a table indexed by fd with one lock per slot: the `setsockopt`/`close` hooks run on every
//! socket of the program, so they must not contend with other threads; a slot's lock is only
//! ever taken by the thread working on that fd (or one racing it on the same fd).

use crate::forksafe::SpinLock;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

pub use crate::dial::SockOpt;

const CHUNK: usize = 1024;
const CHUNKS: usize = 1024;
/// Options remembered per socket at most (a program setting more is unusual; the rest still
/// apply to its own socket, just not to replacements).
pub const MAX_OPTS: usize = 64;

/// A registration the program made with `epoll_ctl` for this fd. The wait hooks use it to tell
/// which fd an event is about (epoll reports only the program's `data`) and to re-arm an
/// `EPOLLONESHOT` registration whose event they held back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpollReg {
    pub epfd: i32,
    pub events: u32,
    pub data: u64,
}

#[derive(Debug, Default)]
pub struct FdState {
    pub domain: i32,
    pub protocol: i32,
    pub opts: Vec<SockOpt>,
    /// The address the program passed to `bind` (port 0 = any port).
    pub bind: Option<SocketAddr>,
    pub epoll: Vec<EpollReg>,
    /// The program's socket is being steered to a live address (non-blocking connect).
    pub steer: Option<Box<crate::dial::steer::Steer>>,
    /// The errno the program must see, once, instead of the kernel's (`SO_ERROR` or a repeated
    /// `connect`), after a steered connect failed everywhere: the error of its own address.
    pub report: Option<i32>,
    /// dnsfo already handled a connect on this socket: later `connect` calls are the program
    /// asking how that one went (or starting over after its failure) and go to the kernel.
    pub dialed: bool,
    /// Which record this is: every record put in the table gets a new number, so a connect
    /// that waited with the program's fd can tell whether the fd still holds the socket it
    /// started with (closed and reused meanwhile: a new record, or none).
    pub gen: u64,
}

/// Most epoll registrations remembered per fd (one per epoll instance watching it).
pub const MAX_EPOLL: usize = 16;

/// Count of fds whose slot has a steer or an errno to report: the wait hooks' fast path is one
/// relaxed load of this, zero almost always.
pub static SPECIAL: AtomicUsize = AtomicUsize::new(0);

/// The fds counted in [`SPECIAL`] (at most a few dozen at once): lets the epoll hook find which
/// fd an event is about without walking the whole table.
static SPECIAL_FDS: SpinLock<Vec<i32>> = SpinLock::new(Vec::new());

/// Is any fd in a special state at all? (Cheap test for the hottest hooks.)
pub fn any_special() -> bool {
    SPECIAL.load(Ordering::Relaxed) != 0
}

/// The fds that have a steer or an errno to report right now (a snapshot).
pub fn special_fds() -> Vec<i32> {
    SPECIAL_FDS.lock().clone()
}

impl FdState {
    /// Takes a settled steer off this record, leaving the errno to report behind.
    pub fn take_settled(&mut self) -> Option<Box<crate::dial::steer::Steer>> {
        let steer = self.steer.take()?;
        if let crate::dial::steer::Status::Failed { report: Some(e) } = steer.status() {
            self.report = Some(e);
        }
        Some(steer)
    }

    pub fn is_special(&self) -> bool {
        self.steer.is_some() || self.report.is_some()
    }

    pub fn record_epoll(&mut self, op: i32, epfd: i32, events: u32, data: u64) {
        match op {
            libc::EPOLL_CTL_DEL => self.epoll.retain(|r| r.epfd != epfd),
            _ => {
                if let Some(r) = self.epoll.iter_mut().find(|r| r.epfd == epfd) {
                    *r = EpollReg { epfd, events, data };
                } else if self.epoll.len() < MAX_EPOLL {
                    self.epoll.push(EpollReg { epfd, events, data });
                }
            }
        }
    }

    pub fn record_opt(&mut self, level: i32, name: i32, value: &[u8]) {
        if let Some(o) = self
            .opts
            .iter_mut()
            .find(|o| o.level == level && o.name == name)
        {
            o.value = value.to_vec();
        } else if self.opts.len() < MAX_OPTS {
            self.opts.push(SockOpt {
                level,
                name,
                value: value.to_vec(),
            });
        }
    }
}

/// Spin locks, not parking ones: a slot is almost never contended, and a spin lock can simply be
/// freed in a `fork()` child (see `forksafe`).
type Slot = SpinLock<Option<Box<FdState>>>;

pub struct FdTable {
    chunks: [OnceLock<Box<[Slot; CHUNK]>>; CHUNKS],
}

impl FdTable {
    pub const fn new() -> Self {
        FdTable {
            chunks: [const { OnceLock::new() }; CHUNKS],
        }
    }

    fn slot(&self, fd: i32, create: bool) -> Option<&Slot> {
        let fd = usize::try_from(fd).ok()?;
        let cell = self.chunks.get(fd / CHUNK)?;
        let chunk = if create {
            cell.get_or_init(|| Box::new([const { SpinLock::new(None) }; CHUNK]))
        } else {
            cell.get()?
        };
        Some(&chunk[fd % CHUNK])
    }

    /// Starts tracking `fd` (a fresh socket), replacing whatever an earlier fd of that number had
    /// (closed behind dnsfo's back); that record is returned.
    pub fn insert(&self, fd: i32, mut state: FdState) -> Option<Box<FdState>> {
        static GEN: AtomicU64 = AtomicU64::new(1);
        state.gen = GEN.fetch_add(1, Ordering::Relaxed);
        let s = self.slot(fd, true)?;
        let mut g = s.lock();
        let was = g.as_ref().is_some_and(|st| st.is_special());
        let old = g.replace(Box::new(state));
        account(fd, was, g.as_ref().is_some_and(|st| st.is_special()));
        old
    }

    /// Stops tracking `fd` (closed, or replaced by `dup2`, or reused by an untracked socket).
    pub fn remove(&self, fd: i32) {
        drop(self.take(fd));
    }

    /// Stops tracking `fd` and returns what was known about it.
    pub fn take(&self, fd: i32) -> Option<FdState> {
        let s = self.slot(fd, false)?;
        let old = s.lock().take();
        if old.as_ref().is_some_and(|st| st.is_special()) {
            account(fd, true, false);
        }
        old.map(|b| *b)
    }

    /// Runs `f` with the slot of `fd` locked (`None` inside when untracked). Everything that
    /// reads or advances a steer runs inside this, so the reactor and the program's own calls
    /// never act on one steer at once.
    pub fn locked<R>(&self, fd: i32, f: impl FnOnce(&mut Option<Box<FdState>>) -> R) -> R {
        match self.slot(fd, false) {
            None => f(&mut None),
            Some(s) => {
                let mut g = s.lock();
                let was = g.as_ref().is_some_and(|st| st.is_special());
                let r = f(&mut g);
                account(fd, was, g.as_ref().is_some_and(|st| st.is_special()));
                r
            }
        }
    }

    /// Runs `f` on the state of a tracked fd.
    pub fn update<R>(&self, fd: i32, f: impl FnOnce(&mut FdState) -> R) -> Option<R> {
        self.locked(fd, |g| g.as_deref_mut().map(f))
    }
}

impl FdTable {
    /// In a `fork()`ed child: no other thread exists there, so a slot found locked was locked
    /// by a thread that is gone, maybe in the middle of an update. Unlock it and forget that
    /// fd's record (the fd then passes straight through). Steers stay the parent's: the child
    /// closes its copies of their sockets (`Steer::forget_in_child`) and forgets them; its copy
    /// of the program's socket is the same socket, which the parent goes on steering.
    pub fn after_fork_child(&self) {
        // SAFETY: single-threaded child; whoever held it does not exist here.
        unsafe { SPECIAL_FDS.force_unlock() };
        SPECIAL_FDS.lock().clear();
        for chunk in self.chunks.iter().filter_map(|c| c.get()) {
            for slot in chunk.iter() {
                if slot.is_locked() {
                    // SAFETY: single-threaded child; the holder does not exist in this process.
                    unsafe { slot.force_unlock() };
                    // Its record may be mid-update: leak it and forget the fd.
                    std::mem::forget(slot.lock().take());
                }
                if let Some(st) = slot.lock().as_mut() {
                    if let Some(steer) = st.steer.take() {
                        steer.forget_in_child();
                    }
                    st.report = None;
                }
            }
        }
        SPECIAL.store(0, Ordering::Relaxed);
    }
}

fn account(fd: i32, was: bool, is: bool) {
    match (was, is) {
        (false, true) => {
            SPECIAL_FDS.lock().push(fd);
            SPECIAL.fetch_add(1, Ordering::Relaxed);
        }
        (true, false) => {
            SPECIAL_FDS.lock().retain(|f| *f != fd);
            SPECIAL.fetch_sub(1, Ordering::Relaxed);
        }
        _ => {}
    }
}

impl Default for FdTable {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_update_remove() {
        let t = Box::new(FdTable::new());
        assert!(t.update(5, |_| ()).is_none());
        t.insert(
            5,
            FdState {
                domain: 2,
                ..Default::default()
            },
        );
        t.update(5, |s| s.record_opt(6, 1, &[1, 0, 0, 0]));
        t.update(5, |s| s.record_opt(6, 1, &[0, 0, 0, 0]));
        t.update(5, |s| s.record_opt(1, 9, &[1, 0, 0, 0]));
        let opts = t.update(5, |s| s.opts.clone()).unwrap();
        assert_eq!(opts.len(), 2);
        assert_eq!(
            opts[0].value,
            vec![0, 0, 0, 0],
            "last value wins, first position kept"
        );
        t.remove(5);
        assert!(t.update(5, |_| ()).is_none());
        assert!(t.update(-1, |_| ()).is_none());
        t.insert(i32::MAX, FdState::default());
        assert!(
            t.update(i32::MAX, |_| ()).is_none(),
            "out of range fds are simply untracked"
        );
        t.insert(200_000, FdState::default());
        assert!(t.update(200_000, |_| ()).is_some());
    }

    #[test]
    fn options_bounded() {
        let mut s = FdState::default();
        for i in 0..(MAX_OPTS as i32 + 10) {
            s.record_opt(1, i, &[1]);
        }
        assert_eq!(s.opts.len(), MAX_OPTS);
    }
}
