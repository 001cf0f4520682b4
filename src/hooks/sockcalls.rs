//! Socket calls that ask about, or end, a connect: `getsockopt(SO_ERROR)` (a steer is advanced
//! first, and a failed one reports the error of the program's own address), `shutdown` (ends a
//! steer), `fcntl` (`F_DUPFD` bookkeeping) and `epoll_ctl` (recorded, so that the wait hooks
//! know which fd an event is about and can re-arm a one-shot registration).
//!
//! Fast path: one relaxed atomic load (no fd anywhere is steered) for all but `epoll_ctl`.

use super::inside;
use crate::failover;
use crate::fdtable;
use crate::guard;
use crate::state::FDS;
use crate::sys;
use libc::{c_int, c_void, socklen_t};

/// # Safety
/// Same contract as libc's `getsockopt`.
#[no_mangle]
pub unsafe extern "C-unwind" fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    let so_error = level == libc::SOL_SOCKET && name == libc::SO_ERROR;
    if !so_error || !fdtable::any_special() {
        // SAFETY: forwarded unchanged.
        return unsafe { sys::getsockopt(fd, level, name, val, len) };
    }
    {
        let _errno = sys::ErrnoGuard::save();
        // An intermediate failure is moved past before the program reads the socket's error.
        inside(|s| failover::advance_for_program(s, fd));
    }
    // SAFETY: forwarded unchanged.
    let r = unsafe { sys::getsockopt(fd, level, name, val, len) };
    if r == 0 && !val.is_null() && !len.is_null() {
        // SAFETY: the kernel just filled `*len` bytes at `val`.
        let n = unsafe { *len } as usize;
        if n >= std::mem::size_of::<c_int>() {
            // SAFETY: at least an int was written.
            let v = unsafe { std::ptr::read_unaligned(val as *const c_int) };
            if v != 0 {
                let _errno = sys::ErrnoGuard::save();
                if let Some(e) = inside(|_| failover::take_report(fd)).flatten() {
                    // SAFETY: as above.
                    unsafe { std::ptr::write_unaligned(val as *mut c_int, e) };
                }
            }
        }
    }
    r
}

/// # Safety
/// Same contract as libc's `shutdown`.
#[no_mangle]
pub unsafe extern "C-unwind" fn shutdown(fd: c_int, how: c_int) -> c_int {
    if fdtable::any_special() {
        let _errno = sys::ErrnoGuard::save();
        // A shutdown of a connecting socket aborts its connect: the steer must not redo it.
        inside(|s| failover::program_ends(s, fd, false));
    }
    // SAFETY: forwarded unchanged.
    unsafe { sys::shutdown(fd, how) }
}

/// `fcntl` is variadic; on x86-64 its third argument travels in a register whatever its type,
/// so it is taken as a pointer-sized integer and forwarded unchanged (DESIGN.md fact 12).
///
/// # Safety
/// Same contract as libc's `fcntl`.
#[no_mangle]
pub unsafe extern "C-unwind" fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    before_fcntl(fd, cmd, arg);
    // SAFETY: forwarded unchanged.
    let r = unsafe { sys::fcntl(fd, cmd, arg) };
    after_fcntl(cmd, r)
}

/// # Safety
/// Same contract as libc's `fcntl64` (what programs built with large-file support call).
#[no_mangle]
pub unsafe extern "C-unwind" fn fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    before_fcntl(fd, cmd, arg);
    // SAFETY: forwarded unchanged.
    let r = unsafe { sys::fcntl64(fd, cmd, arg) };
    after_fcntl(cmd, r)
}

/// A steered socket made blocking: the program is about to wait in the kernel (a blocking read,
/// write or connect), where the steer's abort of an attempt would reach it. The steer settles
/// first (bounded by its budget), as if the connect had simply taken that long.
fn before_fcntl(fd: c_int, cmd: c_int, arg: usize) {
    if cmd == libc::F_SETFL && arg as c_int & libc::O_NONBLOCK == 0 && fdtable::any_special() {
        let _errno = sys::ErrnoGuard::save();
        let _cancel = sys::CancelOff::new();
        let _ = super::connect::settle(fd);
    }
}

/// `ioctl` is variadic like `fcntl` (DESIGN.md fact 12); only `FIONBIO` matters to dnsfo.
///
/// # Safety
/// Same contract as libc's `ioctl`.
#[no_mangle]
pub unsafe extern "C-unwind" fn ioctl(fd: c_int, request: libc::c_ulong, arg: usize) -> c_int {
    if request == libc::FIONBIO && arg != 0 && fdtable::any_special() {
        // SAFETY: FIONBIO takes a pointer to an int (checked non-null).
        if unsafe { std::ptr::read_unaligned(arg as *const c_int) } == 0 {
            let _errno = sys::ErrnoGuard::save();
            let _cancel = sys::CancelOff::new();
            let _ = super::connect::settle(fd);
        }
    }
    // SAFETY: forwarded unchanged.
    unsafe { sys::ioctl(fd, request, arg) }
}

fn after_fcntl(cmd: c_int, r: c_int) -> c_int {
    if (cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC) && r >= 0 {
        // The new fd number may have belonged to a socket closed behind dnsfo's back.
        if let Some(_entered) = guard::enter() {
            let _errno = sys::ErrnoGuard::save();
            let _ = guard::contain(|| FDS.remove(r));
        }
    }
    r
}

/// # Safety
/// Same contract as libc's `epoll_ctl`.
#[no_mangle]
pub unsafe extern "C-unwind" fn epoll_ctl(
    epfd: c_int,
    op: c_int,
    fd: c_int,
    ev: *mut libc::epoll_event,
) -> c_int {
    // SAFETY: forwarded unchanged.
    let r = unsafe { sys::epoll_ctl(epfd, op, fd, ev) };
    if r == 0 {
        let _errno = sys::ErrnoGuard::save();
        let (events, data) = if ev.is_null() {
            (0, 0)
        } else {
            // SAFETY: non-null, and on success the kernel just read *ev.
            unsafe { ((*ev).events, (*ev).u64) }
        };
        // Bookkeeping only, after the fact: nothing here can call epoll_ctl again.
        inside(|_| FDS.update(fd, |s| s.record_epoll(op, epfd, events, data)));
    }
    r
}
