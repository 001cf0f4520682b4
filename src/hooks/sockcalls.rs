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

hook! {
    /// `SO_ERROR` of a steered socket: the steer is advanced past an intermediate failure
    /// before the program reads the socket's error, and a failed steer reports the error of the
    /// program's own address.
    fn getsockopt(
        fd: c_int,
        level: c_int,
        name: c_int,
        val: *mut c_void,
        len: *mut socklen_t,
    ) -> c_int = sys::getsockopt;
    before {
        if is_so_error(level, name) && fdtable::any_special() {
            inside(|s| failover::advance_for_program(s, fd));
        }
    }
    after(r) {
        if r == 0 && is_so_error(level, name) && fdtable::any_special() {
            // SAFETY: the program's pointers, which the kernel just filled on success.
            unsafe { report_own_error(fd, val, len) };
        }
    }
}

fn is_so_error(level: c_int, name: c_int) -> bool {
    level == libc::SOL_SOCKET && name == libc::SO_ERROR
}

/// Replaces a non-zero `SO_ERROR` by the one a failed steer reports.
///
/// # Safety
/// `val`/`len` null, or as the kernel just filled them for a successful `getsockopt`.
unsafe fn report_own_error(fd: c_int, val: *mut c_void, len: *mut socklen_t) {
    if val.is_null() || len.is_null() {
        return;
    }
    // SAFETY: the kernel just filled `*len` bytes at `val`.
    let n = unsafe { *len } as usize;
    if n < std::mem::size_of::<c_int>() {
        return;
    }
    // SAFETY: at least an int was written.
    let v = unsafe { std::ptr::read_unaligned(val as *const c_int) };
    if v != 0 {
        if let Some(e) = inside(|_| failover::take_report(fd)).flatten() {
            // SAFETY: as above.
            unsafe { std::ptr::write_unaligned(val as *mut c_int, e) };
        }
    }
}

hook! {
    /// A shutdown of a connecting socket aborts its connect: the steer must not redo it.
    fn shutdown(fd: c_int, how: c_int) -> c_int = sys::shutdown;
    before {
        if fdtable::any_special() {
            inside(|s| failover::program_ends(s, fd, false));
        }
    }
}

hook! {
    /// `fcntl` is variadic; on x86-64 its third argument travels in a register whatever its
    /// type, so it is taken as a pointer-sized integer and forwarded unchanged (DESIGN.md fact 12).
    fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int = sys::fcntl;
    before { before_fcntl(fd, cmd, arg) }
    after(r) { after_fcntl(cmd, r) }
}

hook! {
    /// What programs built with large-file support call for `fcntl`.
    fn fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int = sys::fcntl64;
    before { before_fcntl(fd, cmd, arg) }
    after(r) { after_fcntl(cmd, r) }
}

/// A steered socket made blocking: the program is about to wait in the kernel (a blocking read,
/// write or connect), where the steer's abort of an attempt would reach it. The steer settles
/// first (bounded by its budget), as if the connect had simply taken that long; its waits are
/// made with cancellation off (they are inside a hook's contained step).
fn before_fcntl(fd: c_int, cmd: c_int, arg: usize) {
    if cmd == libc::F_SETFL && arg as c_int & libc::O_NONBLOCK == 0 && fdtable::any_special() {
        let _cancel = sys::CancelOff::new();
        let _ = super::connect::settle(fd);
    }
}

/// The new fd number of a successful `F_DUPFD` may have belonged to a socket closed behind
/// dnsfo's back: its record goes.
fn after_fcntl(cmd: c_int, r: c_int) {
    if (cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC) && r >= 0 {
        if let Some(_entered) = guard::enter() {
            FDS.remove(r);
        }
    }
}

hook! {
    /// `ioctl` is variadic like `fcntl` (DESIGN.md fact 12); only `FIONBIO` matters to dnsfo:
    /// a steered socket made blocking settles first, as with `fcntl`.
    fn ioctl(fd: c_int, request: libc::c_ulong, arg: usize) -> c_int = sys::ioctl;
    before {
        if request == libc::FIONBIO && arg != 0 && fdtable::any_special() {
            // SAFETY: FIONBIO takes a pointer to an int (checked non-null).
            if unsafe { std::ptr::read_unaligned(arg as *const c_int) } == 0 {
                let _cancel = sys::CancelOff::new();
                let _ = super::connect::settle(fd);
            }
        }
    }
}

hook! {
    /// Registrations are recorded after the fact, so that the wait hooks know which fd an event
    /// is about and can re-arm a one-shot registration; nothing here calls `epoll_ctl` again.
    fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, ev: *mut libc::epoll_event) -> c_int =
        sys::epoll_ctl;
    after(r) {
        if r == 0 {
            let (events, data) = if ev.is_null() {
                (0, 0)
            } else {
                // SAFETY: non-null, and on success the kernel just read *ev.
                unsafe { ((*ev).events, (*ev).u64) }
            };
            inside(|_| FDS.update(fd, |s| s.record_epoll(op, epfd, events, data)));
        }
    }
}
