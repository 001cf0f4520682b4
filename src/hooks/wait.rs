//! The wait hooks: `epoll_wait`, `epoll_pwait`, `epoll_pwait2`, `poll`, `ppoll` (and their
//! `_FORTIFY_SOURCE` forms), `select`, `pselect`. While a socket is being steered, an event on it
//! may be an intermediate failure of the program's attempt (or dnsfo's own abort of it) that the
//! steer has just moved past: such events are held back, and when nothing else is left the wait
//! goes on for the rest of its time. The program only ever sees the outcome.
//!
//! Fast path: one relaxed atomic load (no socket anywhere is steered), then libc. Must never:
//! hold back an event of a socket that is not being steered, return before the program's
//! timeout without an event, or wait itself inside a panic boundary.

use super::inside;
use crate::failover;
use crate::fdtable;
use crate::state::{State, FDS};
use crate::sys;
use libc::{c_int, nfds_t, pollfd, size_t, timespec, timeval};
use std::time::{Duration, Instant};

/// Waits made again at most after every event was held back (each one follows a real change of
/// a steered socket's state, so a handful is the most ever seen).
const MAX_ROUNDS: usize = 10_000;

/// When the program's wait ends.
#[derive(Clone, Copy)]
enum Until {
    Forever,
    Now,
    At(Instant),
}

impl Until {
    fn from_ms(ms: c_int) -> Until {
        match ms {
            ms if ms < 0 => Until::Forever,
            0 => Until::Now,
            ms => Until::At(Instant::now() + Duration::from_millis(ms as u64)),
        }
    }

    fn from_duration(d: Option<Duration>) -> Until {
        match d {
            None => Until::Forever,
            Some(d) if d.is_zero() => Until::Now,
            Some(d) => Until::At(Instant::now() + d),
        }
    }

    fn left(&self) -> Option<Duration> {
        match self {
            Until::Forever => None,
            Until::Now => Some(Duration::ZERO),
            Until::At(t) => Some(t.saturating_duration_since(Instant::now())),
        }
    }

    fn ms_left(&self) -> c_int {
        match self.left() {
            None => -1,
            Some(d) => d
                .as_millis()
                .saturating_add(u128::from(d.subsec_nanos() % 1_000_000 != 0))
                .min(c_int::MAX as u128) as c_int,
        }
    }

    fn over(&self) -> bool {
        self.left().is_some_and(|d| d.is_zero())
    }
}

fn timespec_of(d: Duration) -> timespec {
    timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

/// # Safety
/// `t` null or valid.
unsafe fn duration_of_timespec(t: *const timespec) -> Option<Duration> {
    // SAFETY: caller's contract.
    let t = unsafe { t.as_ref() }?;
    Some(Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    ))
}

/// Calls `wait` (the real libc call, given what is left of the time) until it returns an error,
/// a timeout, or an event that `keep` does not hold back.
fn waiting(
    until: Until,
    mut wait: impl FnMut(&Until) -> c_int,
    mut keep: impl FnMut(&'static State, c_int) -> c_int,
) -> c_int {
    let mut r = 0;
    for _ in 0..MAX_ROUNDS {
        r = wait(&until);
        if r <= 0 {
            return r;
        }
        let saved = sys::errno();
        let kept = inside(|s| keep(s, r)).unwrap_or(r);
        sys::set_errno(saved);
        if kept > 0 || until.over() || matches!(until, Until::Now) {
            return kept;
        }
    }
    r
}

/// Which steered fd an epoll event is about: epoll reports only the program's `data`, which
/// the registrations recorded by the `epoll_ctl` hook map back to an fd; registrations made
/// where dnsfo cannot see (io_uring, raw system calls) are looked up in the kernel's own list
/// (`/proc/self/fdinfo/EPFD`).
fn fd_for(epfd: c_int, data: u64, steered: &[c_int]) -> Option<c_int> {
    let mut unknown = false;
    for &fd in steered {
        // 1: this fd's registration; 2: steered, but registered on this epoll unseen by dnsfo.
        let found = FDS.update(fd, |st| {
            if st.steer.is_none() {
                0
            } else if st.epoll.iter().any(|r| r.epfd == epfd && r.data == data) {
                1
            } else if st.epoll.iter().any(|r| r.epfd == epfd) {
                0
            } else {
                2
            }
        });
        match found {
            Some(1) => return Some(fd),
            Some(2) => unknown = true,
            _ => {}
        }
    }
    if !unknown {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{epfd}")).ok()?;
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        let mut tfd = None;
        let mut d = None;
        while let Some(w) = words.next() {
            match w {
                "tfd:" => tfd = words.next().and_then(|v| v.parse::<c_int>().ok()),
                "data:" => d = words.next().and_then(|v| u64::from_str_radix(v, 16).ok()),
                _ => {}
            }
        }
        match (tfd, d) {
            (Some(t), Some(d)) if d == data && steered.contains(&t) => Some(t),
            _ => None,
        }
    })
}

/// After holding back the event of a one-shot registration: arm it again, or the program
/// would never hear about the socket again.
fn rearm_oneshot(epfd: c_int, fd: c_int, data: u64) {
    let reg = FDS
        .update(fd, |st| {
            st.epoll
                .iter()
                .find(|r| r.epfd == epfd && r.data == data)
                .copied()
        })
        .flatten();
    if let Some(r) = reg.filter(|r| r.events & libc::EPOLLONESHOT as u32 != 0) {
        let _ = sys::epoll_op(epfd, libc::EPOLL_CTL_MOD, fd, r.events, r.data);
    }
}

fn keep_epoll(s: &'static State, epfd: c_int, events: *mut libc::epoll_event, n: c_int) -> c_int {
    let steered = fdtable::special_fds();
    let mut kept = 0usize;
    for i in 0..n as usize {
        // SAFETY: the kernel filled `n` events at `events`.
        let ev = unsafe { *events.add(i) };
        let failure = ev.events & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0;
        if failure {
            if let Some(fd) = fd_for(epfd, ev.u64, &steered) {
                if failover::hide(s, fd) {
                    rearm_oneshot(epfd, fd, ev.u64);
                    continue;
                }
            }
        }
        // SAFETY: kept <= i < n.
        unsafe { *events.add(kept) = ev };
        kept += 1;
    }
    kept as c_int
}

/// # Safety
/// Same contract as libc's `epoll_wait`.
#[no_mangle]
pub unsafe extern "C-unwind" fn epoll_wait(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    if !fdtable::any_special() {
        // SAFETY: forwarded unchanged.
        return unsafe { sys::epoll_wait(epfd, events, max, timeout) };
    }
    waiting(
        Until::from_ms(timeout),
        // SAFETY: forwarded with the time left.
        |u| unsafe { sys::epoll_wait(epfd, events, max, u.ms_left()) },
        |s, n| keep_epoll(s, epfd, events, n),
    )
}

/// # Safety
/// Same contract as libc's `epoll_pwait`.
#[no_mangle]
pub unsafe extern "C-unwind" fn epoll_pwait(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const libc::sigset_t,
) -> c_int {
    if !fdtable::any_special() {
        // SAFETY: forwarded unchanged.
        return unsafe { sys::epoll_pwait(epfd, events, max, timeout, mask) };
    }
    waiting(
        Until::from_ms(timeout),
        // SAFETY: forwarded with the time left.
        |u| unsafe { sys::epoll_pwait(epfd, events, max, u.ms_left(), mask) },
        |s, n| keep_epoll(s, epfd, events, n),
    )
}

/// # Safety
/// Same contract as libc's `epoll_pwait2`.
#[no_mangle]
pub unsafe extern "C-unwind" fn epoll_pwait2(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    timeout: *const timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    if !fdtable::any_special() {
        // SAFETY: forwarded unchanged.
        return unsafe { sys::epoll_pwait2(epfd, events, max, timeout, mask) };
    }
    // SAFETY: the program's timespec, null or valid.
    let until = Until::from_duration(unsafe { duration_of_timespec(timeout) });
    waiting(
        until,
        |u| {
            let left = u.left().map(timespec_of);
            let p = left
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const timespec);
            // SAFETY: forwarded with the time left.
            unsafe { sys::epoll_pwait2(epfd, events, max, p, mask) }
        },
        |s, n| keep_epoll(s, epfd, events, n),
    )
}

fn keep_poll(s: &'static State, fds: *mut pollfd, nfds: nfds_t, n: c_int) -> c_int {
    let steered = fdtable::special_fds();
    let mut n = n;
    for i in 0..nfds as usize {
        // SAFETY: the program's array of `nfds` entries.
        let p = unsafe { &mut *fds.add(i) };
        if p.revents != 0 && steered.contains(&p.fd) && failover::hide(s, p.fd) {
            p.revents = 0;
            n -= 1;
        }
    }
    n
}

/// # Safety
/// Same contract as libc's `poll`.
#[no_mangle]
pub unsafe extern "C-unwind" fn poll(fds: *mut pollfd, nfds: nfds_t, timeout: c_int) -> c_int {
    if !fdtable::any_special() {
        // SAFETY: forwarded unchanged.
        return unsafe { sys::poll(fds, nfds, timeout) };
    }
    waiting(
        Until::from_ms(timeout),
        // SAFETY: forwarded with the time left.
        |u| unsafe { sys::poll(fds, nfds, u.ms_left()) },
        |s, n| keep_poll(s, fds, nfds, n),
    )
}

/// # Safety
/// Same contract as glibc's `__poll_chk` (`poll` in a `_FORTIFY_SOURCE` build).
#[no_mangle]
pub unsafe extern "C-unwind" fn __poll_chk(
    fds: *mut pollfd,
    nfds: nfds_t,
    timeout: c_int,
    fdslen: size_t,
) -> c_int {
    if !fdtable::any_special() {
        // SAFETY: forwarded unchanged.
        return unsafe { sys::__poll_chk(fds, nfds, timeout, fdslen) };
    }
    waiting(
        Until::from_ms(timeout),
        // SAFETY: forwarded with the time left.
        |u| unsafe { sys::__poll_chk(fds, nfds, u.ms_left(), fdslen) },
        |s, n| keep_poll(s, fds, nfds, n),
    )
}

/// # Safety
/// Same contract as libc's `ppoll`.
#[no_mangle]
pub unsafe extern "C-unwind" fn ppoll(
    fds: *mut pollfd,
    nfds: nfds_t,
    timeout: *const timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    if !fdtable::any_special() {
        // SAFETY: forwarded unchanged.
        return unsafe { sys::ppoll(fds, nfds, timeout, mask) };
    }
    // SAFETY: the program's timespec, null or valid.
    let until = Until::from_duration(unsafe { duration_of_timespec(timeout) });
    waiting(
        until,
        |u| {
            let left = u.left().map(timespec_of);
            let p = left
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const timespec);
            // SAFETY: forwarded with the time left.
            unsafe { sys::ppoll(fds, nfds, p, mask) }
        },
        |s, n| keep_poll(s, fds, nfds, n),
    )
}

/// # Safety
/// Same contract as glibc's `__ppoll_chk`.
#[no_mangle]
pub unsafe extern "C-unwind" fn __ppoll_chk(
    fds: *mut pollfd,
    nfds: nfds_t,
    timeout: *const timespec,
    mask: *const libc::sigset_t,
    fdslen: size_t,
) -> c_int {
    if !fdtable::any_special() {
        // SAFETY: forwarded unchanged.
        return unsafe { sys::__ppoll_chk(fds, nfds, timeout, mask, fdslen) };
    }
    // SAFETY: the program's timespec, null or valid.
    let until = Until::from_duration(unsafe { duration_of_timespec(timeout) });
    waiting(
        until,
        |u| {
            let left = u.left().map(timespec_of);
            let p = left
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const timespec);
            // SAFETY: forwarded with the time left.
            unsafe { sys::__ppoll_chk(fds, nfds, p, mask, fdslen) }
        },
        |s, n| keep_poll(s, fds, nfds, n),
    )
}

/// The three sets of a `select`, as the program passed them (null = none).
struct Sets {
    ptrs: [*mut libc::fd_set; 3],
    saved: [Option<libc::fd_set>; 3],
}

impl Sets {
    /// # Safety
    /// Each pointer null or a valid fd_set.
    unsafe fn save(ptrs: [*mut libc::fd_set; 3]) -> Sets {
        // SAFETY: caller's contract.
        let saved = ptrs.map(|p| unsafe { p.as_ref() }.copied());
        Sets { ptrs, saved }
    }

    /// Puts the program's sets back before waiting again (select overwrites them).
    fn restore(&self) {
        for (p, s) in self.ptrs.iter().zip(&self.saved) {
            if let Some(s) = s {
                // SAFETY: `p` is the program's valid fd_set (non-null when saved).
                unsafe { **p = *s };
            }
        }
    }

    fn keep(&self, s: &'static State, nfds: c_int, n: c_int) -> c_int {
        let mut n = n;
        for fd in fdtable::special_fds() {
            if fd < 0 || fd >= nfds || fd >= libc::FD_SETSIZE as c_int {
                continue;
            }
            // SAFETY: non-null sets are the program's valid fd_sets; fd < FD_SETSIZE.
            let set_in = |p: *mut libc::fd_set| !p.is_null() && unsafe { libc::FD_ISSET(fd, p) };
            let count = self.ptrs.iter().filter(|p| set_in(**p)).count() as c_int;
            if count > 0 && failover::hide(s, fd) {
                for p in self.ptrs.iter().filter(|p| !p.is_null()) {
                    // SAFETY: as above.
                    unsafe { libc::FD_CLR(fd, *p) };
                }
                n -= count;
            }
        }
        n
    }
}

/// # Safety
/// Same contract as libc's `select`.
#[no_mangle]
pub unsafe extern "C-unwind" fn select(
    nfds: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    timeout: *mut timeval,
) -> c_int {
    if !fdtable::any_special() {
        // SAFETY: forwarded unchanged.
        return unsafe { sys::select(nfds, r, w, e, timeout) };
    }
    // SAFETY: the program's sets and timeval, each null or valid.
    let sets = unsafe { Sets::save([r, w, e]) };
    let until = Until::from_duration(unsafe { timeout.as_ref() }.map(|t| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    }));
    let mut first = true;
    waiting(
        until,
        |u| {
            if !std::mem::take(&mut first) {
                sets.restore();
            }
            if let Some(left) = u.left() {
                // SAFETY: non-null (a deadline exists only for a given timeval).
                unsafe {
                    *timeout = timeval {
                        tv_sec: left.as_secs() as libc::time_t,
                        tv_usec: left.subsec_micros() as libc::suseconds_t,
                    }
                };
            }
            // SAFETY: forwarded with the program's sets and the time left.
            unsafe { sys::select(nfds, r, w, e, timeout) }
        },
        |s, n| sets.keep(s, nfds, n),
    )
}

/// # Safety
/// Same contract as libc's `pselect`.
#[no_mangle]
pub unsafe extern "C-unwind" fn pselect(
    nfds: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    timeout: *const timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    if !fdtable::any_special() {
        // SAFETY: forwarded unchanged.
        return unsafe { sys::pselect(nfds, r, w, e, timeout, mask) };
    }
    // SAFETY: the program's sets and timespec, each null or valid.
    let sets = unsafe { Sets::save([r, w, e]) };
    let until = Until::from_duration(unsafe { duration_of_timespec(timeout) });
    let mut first = true;
    waiting(
        until,
        |u| {
            if !std::mem::take(&mut first) {
                sets.restore();
            }
            let left = u.left().map(timespec_of);
            let p = left
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const timespec);
            // SAFETY: forwarded with the program's sets and the time left.
            unsafe { sys::pselect(nfds, r, w, e, p, mask) }
        },
        |s, n| sets.keep(s, nfds, n),
    )
}
