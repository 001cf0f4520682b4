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
use crate::failover::{self, Verdict};
use crate::fdtable;
use crate::state::{State, FDS};
use crate::sys;
use libc::{c_int, nfds_t, pollfd, size_t, timespec, timeval};
use std::time::{Duration, Instant};

/// Waits made again at most after every event was held back (each one follows a real change of
/// a steered socket's state, so a handful is the most ever seen).
const MAX_ROUNDS: usize = 10_000;

/// Is any socket being steered, here or by the process this one was forked from? (The fast
/// path: two relaxed loads.)
fn steering() -> bool {
    fdtable::any_special() || crate::copies::any()
}

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

    /// Calls `f` with what is left of the time as a `timespec` pointer (null: forever).
    fn with_timespec<R>(&self, f: impl FnOnce(*const timespec) -> R) -> R {
        let left = self.left().map(timespec_of);
        f(left
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const timespec))
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

/// Which fd an epoll event with this `data` is about, what it was registered for, and whether
/// dnsfo recorded that registration itself (only such can be re-armed exactly): epoll
/// reports only the program's `data`. The registrations recorded by the `epoll_ctl` hook answer
/// for steered fds; any other (a copy, one made through io_uring or a raw system call) is looked
/// up in the kernel's own list (`/proc/self/fdinfo/EPFD`).
fn fd_for(epfd: c_int, data: u64) -> Option<(c_int, u32, bool)> {
    for fd in fdtable::special_fds() {
        let reg = FDS
            .update(fd, |st| {
                st.epoll
                    .iter()
                    .find(|r| r.epfd == epfd && r.data == data)
                    .copied()
            })
            .flatten();
        if let Some(r) = reg {
            return Some((fd, r.events, true));
        }
    }
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{epfd}")).ok()?;
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        let (mut tfd, mut events, mut d) = (None, None, None);
        while let Some(w) = words.next() {
            match w {
                "tfd:" => tfd = words.next().and_then(|v| v.parse::<c_int>().ok()),
                "events:" => events = words.next().and_then(|v| u32::from_str_radix(v, 16).ok()),
                "data:" => d = words.next().and_then(|v| u64::from_str_radix(v, 16).ok()),
                _ => {}
            }
        }
        match (tfd, d) {
            (Some(t), Some(d)) if d == data => Some((t, events.unwrap_or(0), false)),
            _ => None,
        }
    })
}

/// After holding back the event of a one-shot registration that dnsfo recorded: arm it again,
/// or the program would never hear about the socket again.
fn rearm_oneshot(epfd: c_int, fd: c_int, events: u32, data: u64) {
    if events & libc::EPOLLONESHOT as u32 != 0 {
        let _ = sys::epoll_op(epfd, libc::EPOLL_CTL_MOD, fd, events, data);
    }
}

/// The bits the program registered for, as `poll` bits (nothing known: in and out).
fn interest_of(events: u32) -> i16 {
    let bits = (events
        & (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLPRI | libc::EPOLLRDHUP) as u32)
        as i16;
    if bits == 0 {
        libc::POLLIN | libc::POLLOUT
    } else {
        bits
    }
}

fn keep_epoll(s: &'static State, epfd: c_int, events: *mut libc::epoll_event, n: c_int) -> c_int {
    let mut kept = 0usize;
    for i in 0..n as usize {
        // SAFETY: the kernel filled `n` events at `events`.
        let mut ev = unsafe { *events.add(i) };
        if ev.events & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0 {
            if let Some((fd, registered, recorded)) = fd_for(epfd, ev.u64) {
                let interest = interest_of(registered);
                match failover::judge(s, fd, interest) {
                    Verdict::Keep => {}
                    Verdict::Hide => {
                        if recorded {
                            rearm_oneshot(epfd, fd, registered, ev.u64);
                        }
                        continue;
                    }
                    Verdict::Now(now) => {
                        let wanted = interest as u32 | (libc::EPOLLERR | libc::EPOLLHUP) as u32;
                        ev.events = (ev.events & !0xffff) | (now as u16 as u32 & wanted);
                    }
                }
            }
        }
        // SAFETY: kept <= i < n.
        unsafe { *events.add(kept) = ev };
        kept += 1;
    }
    kept as c_int
}

hook! {
    fn epoll_wait(
        epfd: c_int,
        events: *mut libc::epoll_event,
        max: c_int,
        timeout: c_int,
    ) -> c_int = sys::epoll_wait;
    take over if steering() => {
        waiting(
            Until::from_ms(timeout),
            // SAFETY: forwarded with the time left.
            |u| unsafe { sys::epoll_wait(epfd, events, max, u.ms_left()) },
            |s, n| keep_epoll(s, epfd, events, n),
        )
    }
}

hook! {
    fn epoll_pwait(
        epfd: c_int,
        events: *mut libc::epoll_event,
        max: c_int,
        timeout: c_int,
        mask: *const libc::sigset_t,
    ) -> c_int = sys::epoll_pwait;
    take over if steering() => {
        waiting(
            Until::from_ms(timeout),
            // SAFETY: forwarded with the time left.
            |u| unsafe { sys::epoll_pwait(epfd, events, max, u.ms_left(), mask) },
            |s, n| keep_epoll(s, epfd, events, n),
        )
    }
}

hook! {
    fn epoll_pwait2(
        epfd: c_int,
        events: *mut libc::epoll_event,
        max: c_int,
        timeout: *const timespec,
        mask: *const libc::sigset_t,
    ) -> c_int = sys::epoll_pwait2;
    take over if steering() => {
        // SAFETY: the program's timespec, null or valid.
        let until = Until::from_duration(unsafe { duration_of_timespec(timeout) });
        waiting(
            until,
            |u| {
                // SAFETY: forwarded with the time left.
                u.with_timespec(|p| unsafe { sys::epoll_pwait2(epfd, events, max, p, mask) })
            },
            |s, n| keep_epoll(s, epfd, events, n),
        )
    }
}

fn keep_poll(s: &'static State, fds: *mut pollfd, nfds: nfds_t, n: c_int) -> c_int {
    let mut n = n;
    for i in 0..nfds as usize {
        // SAFETY: the program's array of `nfds` entries.
        let p = unsafe { &mut *fds.add(i) };
        if p.revents & (libc::POLLERR | libc::POLLHUP) == 0 {
            continue;
        }
        match failover::judge(s, p.fd, p.events) {
            Verdict::Keep => {}
            Verdict::Hide => {
                p.revents = 0;
                n -= 1;
            }
            Verdict::Now(now) => p.revents = now & (p.events | libc::POLLERR | libc::POLLHUP),
        }
    }
    n
}

/// `poll` and its checking form: the wait with the time left, a steered socket's intermediate
/// events held back.
fn polling(
    fds: *mut pollfd,
    nfds: nfds_t,
    timeout: c_int,
    call: impl FnMut(&Until) -> c_int,
) -> c_int {
    waiting(Until::from_ms(timeout), call, |s, n| {
        keep_poll(s, fds, nfds, n)
    })
}

/// `ppoll` and its checking form, as [`polling`]; `call` gets the time left as a timespec.
///
/// # Safety
/// `timeout` is null or points to a valid timespec (the program's argument).
unsafe fn ppolling(
    fds: *mut pollfd,
    nfds: nfds_t,
    timeout: *const timespec,
    mut call: impl FnMut(*const timespec) -> c_int,
) -> c_int {
    // SAFETY: the caller's contract: the program's timespec, null or valid.
    let until = Until::from_duration(unsafe { duration_of_timespec(timeout) });
    waiting(
        until,
        |u| u.with_timespec(&mut call),
        |s, n| keep_poll(s, fds, nfds, n),
    )
}

hook! {
    fn poll(fds: *mut pollfd, nfds: nfds_t, timeout: c_int) -> c_int = sys::poll;
    take over if steering() => {
        // SAFETY: forwarded with the time left.
        polling(fds, nfds, timeout, |u| unsafe { sys::poll(fds, nfds, u.ms_left()) })
    }
}

hook! {
    /// `poll` as a `_FORTIFY_SOURCE` build calls it (glibc's checking form).
    fn __poll_chk(
        fds: *mut pollfd,
        nfds: nfds_t,
        timeout: c_int,
        fdslen: size_t,
    ) -> c_int = sys::__poll_chk;
    take over if steering() => {
        polling(fds, nfds, timeout, |u| {
            // SAFETY: forwarded with the time left.
            unsafe { sys::__poll_chk(fds, nfds, u.ms_left(), fdslen) }
        })
    }
}

hook! {
    fn ppoll(
        fds: *mut pollfd,
        nfds: nfds_t,
        timeout: *const timespec,
        mask: *const libc::sigset_t,
    ) -> c_int = sys::ppoll;
    take over if steering() => {
        // SAFETY: the program's timeout, null or valid; forwarded with the time left.
        unsafe { ppolling(fds, nfds, timeout, |p| sys::ppoll(fds, nfds, p, mask)) }
    }
}

hook! {
    /// `ppoll` as a `_FORTIFY_SOURCE` build calls it (glibc's checking form).
    fn __ppoll_chk(
        fds: *mut pollfd,
        nfds: nfds_t,
        timeout: *const timespec,
        mask: *const libc::sigset_t,
        fdslen: size_t,
    ) -> c_int = sys::__ppoll_chk;
    take over if steering() => {
        // SAFETY: the program's timeout, null or valid; forwarded with the time left.
        unsafe { ppolling(fds, nfds, timeout, |p| sys::__ppoll_chk(fds, nfds, p, mask, fdslen)) }
    }
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
        let top = nfds.min(libc::FD_SETSIZE as c_int);
        for fd in 0..top {
            // SAFETY: non-null sets are the program's valid fd_sets; fd < FD_SETSIZE.
            let set_in = |p: *mut libc::fd_set| !p.is_null() && unsafe { libc::FD_ISSET(fd, p) };
            let [r, w, e] = self.ptrs;
            let (is_r, is_w, is_e) = (set_in(r), set_in(w), set_in(e));
            if !(is_r || is_w || is_e) {
                continue;
            }
            let asked = |i: usize| {
                self.saved[i].is_some_and(|set| {
                    // SAFETY: a copy of the program's set; fd < FD_SETSIZE.
                    unsafe { libc::FD_ISSET(fd, &set) }
                })
            };
            let interest = if asked(0) { libc::POLLIN } else { 0 }
                | if asked(1) { libc::POLLOUT } else { 0 }
                | if asked(2) { libc::POLLPRI } else { 0 };
            let now = match failover::judge(s, fd, interest) {
                Verdict::Keep => continue,
                Verdict::Hide => 0,
                Verdict::Now(now) => now,
            };
            let bad = now & (libc::POLLERR | libc::POLLHUP) != 0;
            let still = [
                now & libc::POLLIN != 0 || bad,
                now & libc::POLLOUT != 0 || now & libc::POLLERR != 0,
                now & libc::POLLPRI != 0,
            ];
            for (i, (p, was)) in [(r, is_r), (w, is_w), (e, is_e)].into_iter().enumerate() {
                if was && !still[i] {
                    // SAFETY: as above (set only when non-null).
                    unsafe { libc::FD_CLR(fd, p) };
                    n -= 1;
                }
            }
        }
        n
    }
}

hook! {
    fn select(
        nfds: c_int,
        r: *mut libc::fd_set,
        w: *mut libc::fd_set,
        e: *mut libc::fd_set,
        timeout: *mut timeval,
    ) -> c_int = sys::select;
    take over if steering() => {
        // SAFETY: the program's sets and timeval, each null or valid.
        let sets = unsafe { Sets::save([r, w, e]) };
        // SAFETY: the program's timeval, null or valid.
        let until = Until::from_duration(unsafe { timeout.as_ref() }.map(|t| {
            Duration::from_secs(t.tv_sec.max(0) as u64)
                + Duration::from_micros(t.tv_usec.max(0) as u64)
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
}

hook! {
    fn pselect(
        nfds: c_int,
        r: *mut libc::fd_set,
        w: *mut libc::fd_set,
        e: *mut libc::fd_set,
        timeout: *const timespec,
        mask: *const libc::sigset_t,
    ) -> c_int = sys::pselect;
    take over if steering() => {
        // SAFETY: the program's sets and timespec, each null or valid.
        let sets = unsafe { Sets::save([r, w, e]) };
        // SAFETY: the program's timespec, null or valid.
        let until = Until::from_duration(unsafe { duration_of_timespec(timeout) });
        let mut first = true;
        waiting(
            until,
            |u| {
                if !std::mem::take(&mut first) {
                    sets.restore();
                }
                // SAFETY: forwarded with the program's sets and the time left.
                u.with_timespec(|p| unsafe { sys::pselect(nfds, r, w, e, p, mask) })
            },
            |s, n| sets.keep(s, nfds, n),
        )
    }
}
