//! Socket calls on an fd whose connect is being raced in the background, or whose background
//! connect failed: `getsockopt`, `getsockname`, `getpeername`, `shutdown`, `fcntl` and
//! `epoll_ctl`. During a race the fd holds a placeholder; these calls are answered from the
//! program's own socket (the shadow), as on a socket that is still connecting. `epoll_ctl` is
//! recorded for every tracked socket so registrations can be re-made after a swap.
//!
//! Fast path: one relaxed atomic load (no fd anywhere is special) for all but `epoll_ctl`.

use crate::fdtable::{self, FdState};
use crate::guard;
use crate::state::FDS;
use crate::sys;
use libc::{c_int, c_void, sockaddr, socklen_t};

/// Runs `f` with the fd's slot locked when some fd is special; `None` = plain call.
fn with_special<R>(fd: c_int, f: impl FnOnce(&mut FdState) -> Option<R>) -> Option<R> {
    if !fdtable::any_special() {
        return None;
    }
    let _entered = guard::enter()?;
    guard::contain(|| {
        FDS.locked(fd, |slot| {
            let s = slot.as_deref_mut()?;
            if s.is_special() && super::still_special(fd, s) {
                f(s)
            } else {
                None
            }
        })
    })
    .flatten()
}

/// # Safety
/// Same contract as libc's `getsockopt`.
#[no_mangle]
pub unsafe extern "C" fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    let so_error = level == libc::SOL_SOCKET && name == libc::SO_ERROR;
    let answered = with_special(fd, |s| {
        if let Some(link) = s.race {
            if so_error {
                // A socket still connecting has no error yet.
                // SAFETY: the program's buffer, as for libc.
                return Some(unsafe { sys::answer_int_opt(val, len, 0) });
            }
            // SAFETY: forwarded to the shadow under the fd lock (it cannot be closed meanwhile).
            return Some(unsafe { sys::getsockopt(link.shadow, level, name, val, len) });
        }
        if so_error {
            let (e, _) = s.pending_error.take()?;
            // SAFETY: the program's buffer, as for libc.
            return Some(unsafe { sys::answer_int_opt(val, len, e) });
        }
        None
    });
    match answered {
        Some(r) => r,
        // SAFETY: forwarded unchanged.
        None => unsafe { sys::getsockopt(fd, level, name, val, len) },
    }
}

/// Forwards a call to the shadow socket while holding the fd lock, so the race cannot finish
/// (and close the shadow) in between; `None` when the fd is not racing.
fn on_shadow(fd: c_int, call: impl FnOnce(c_int) -> c_int) -> Option<c_int> {
    with_special(fd, |s| s.race.map(|l| call(l.shadow)))
}

/// # Safety
/// Same contract as libc's `getsockname`.
#[no_mangle]
pub unsafe extern "C" fn getsockname(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: forwarded unchanged (to the shadow while racing).
    on_shadow(fd, |s| unsafe { sys::getsockname(s, addr, len) })
        .unwrap_or_else(|| unsafe { sys::getsockname(fd, addr, len) })
}

/// # Safety
/// Same contract as libc's `getpeername`.
#[no_mangle]
pub unsafe extern "C" fn getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: forwarded unchanged (to the shadow while racing: ENOTCONN, as connecting).
    on_shadow(fd, |s| unsafe { sys::getpeername(s, addr, len) })
        .unwrap_or_else(|| unsafe { sys::getpeername(fd, addr, len) })
}

/// # Safety
/// Same contract as libc's `shutdown`.
#[no_mangle]
pub unsafe extern "C" fn shutdown(fd: c_int, how: c_int) -> c_int {
    // SAFETY: forwarded unchanged (to the shadow while racing: ENOTCONN, as connecting).
    on_shadow(fd, |s| unsafe { sys::shutdown(s, how) })
        .unwrap_or_else(|| unsafe { sys::shutdown(fd, how) })
}

/// `fcntl` is variadic; on x86-64 its third argument travels in a register whatever its type,
/// so it is taken as a pointer-sized integer and forwarded unchanged (DESIGN.md fact 12).
///
/// # Safety
/// Same contract as libc's `fcntl`.
#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    // SAFETY: same contract.
    unsafe { fcntl_common(fd, cmd, arg, false) }
}

/// # Safety
/// Same contract as libc's `fcntl64` (what programs built with large-file support call).
#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    // SAFETY: same contract.
    unsafe { fcntl_common(fd, cmd, arg, true) }
}

unsafe fn fcntl_common(fd: c_int, cmd: c_int, arg: usize, is64: bool) -> c_int {
    // SAFETY: forwarded unchanged.
    let real = |f: c_int| unsafe {
        if is64 {
            sys::fcntl64(f, cmd, arg)
        } else {
            sys::fcntl(f, cmd, arg)
        }
    };
    if cmd == libc::F_GETFL || cmd == libc::F_SETFL {
        // Status flags belong to the program's socket (the shadow); the placeholder follows
        // them so that reads on it behave alike.
        let r = on_shadow(fd, |s| {
            let r = real(s);
            if cmd == libc::F_SETFL && r == 0 {
                let _ = real(fd);
            }
            r
        });
        if let Some(r) = r {
            return r;
        }
    }
    if cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC {
        // The new fd number may have belonged to a socket closed behind dnsfo's back.
        let r = real(fd);
        if r >= 0 {
            if let Some(_entered) = guard::enter() {
                let _errno = sys::ErrnoGuard::save();
                let _ = guard::contain(|| FDS.remove(r));
            }
        }
        return r;
    }
    real(fd)
}

/// # Safety
/// Same contract as libc's `epoll_ctl`.
#[no_mangle]
pub unsafe extern "C" fn epoll_ctl(
    epfd: c_int,
    op: c_int,
    fd: c_int,
    ev: *mut libc::epoll_event,
) -> c_int {
    let Some(_entered) = guard::enter() else {
        // SAFETY: forwarded unchanged.
        return unsafe { sys::epoll_ctl(epfd, op, fd, ev) };
    };
    // The fd lock is held across the call so that a background swap (which deletes and re-adds
    // the registrations) can never interleave with the program's ADD/MOD/DEL: libuv aborts on
    // an unexpected ENOENT.
    let recorded = guard::contain(|| {
        FDS.locked(fd, |slot| {
            // SAFETY: forwarded unchanged.
            let r = unsafe { sys::epoll_ctl(epfd, op, fd, ev) };
            if let Some(s) = slot.as_deref_mut() {
                if r == 0 {
                    let _errno = sys::ErrnoGuard::save();
                    // SAFETY: on success the kernel read *ev (for ADD/MOD it is non-null).
                    let (events, data) = if ev.is_null() {
                        (0, 0)
                    } else {
                        unsafe { ((*ev).events, (*ev).u64) }
                    };
                    s.record_epoll(op, epfd, events, data);
                }
            }
            r
        })
    });
    match recorded {
        Some(r) => r,
        // SAFETY: a panic can only come from the bookkeeping after the call... or before it;
        // calling again is harmless for epoll_ctl only if the first call did not happen, so
        // report what the kernel says now (EEXIST/ENOENT would show a duplicate).
        None => unsafe { sys::epoll_ctl(epfd, op, fd, ev) },
    }
}
