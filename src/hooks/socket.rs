//! Socket set-up and fd lifecycle hooks: `socket`, `setsockopt`, `bind` record what a
//! replacement socket must carry; `close`, `dup2`, `dup3` forget an fd whose socket is gone.

use super::inside;
use crate::fdtable::FdState;
use crate::state::FDS;
use crate::sys::{self, ErrnoGuard};
use libc::{c_int, c_void, sockaddr, socklen_t};

/// Largest option value remembered for replay (larger ones are unusual: filters, keys).
const MAX_OPT_LEN: usize = 256;

/// # Safety
/// Same contract as libc's `socket`.
#[no_mangle]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    // SAFETY: forwarded unchanged.
    let fd = unsafe { sys::socket(domain, ty, protocol) };
    if fd >= 0 {
        let _errno = ErrnoGuard::save();
        inside(|_| {
            let base = ty & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
            if (domain == libc::AF_INET || domain == libc::AF_INET6) && base == libc::SOCK_STREAM {
                FDS.insert(
                    fd,
                    FdState {
                        domain,
                        protocol,
                        ..Default::default()
                    },
                );
            } else {
                FDS.remove(fd);
            }
        });
    }
    fd
}

/// # Safety
/// Same contract as libc's `setsockopt`.
#[no_mangle]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    // While a background connect runs the options go to the program's socket (the shadow) and
    // are recorded for the winner.
    let shadow = if crate::fdtable::any_special() {
        inside(|_| FDS.update(fd, |s| s.race.map(|l| l.shadow)))
            .flatten()
            .flatten()
    } else {
        None
    };
    // SAFETY: forwarded unchanged.
    let r = unsafe { sys::setsockopt(shadow.unwrap_or(fd), level, name, val, len) };
    if r == 0 && !val.is_null() && (len as usize) <= MAX_OPT_LEN {
        let _errno = ErrnoGuard::save();
        // SAFETY: libc just read `len` bytes at `val` successfully.
        let value = unsafe { std::slice::from_raw_parts(val as *const u8, len as usize) };
        inside(|_| FDS.update(fd, |s| s.record_opt(level, name, value)));
    }
    r
}

/// # Safety
/// Same contract as libc's `bind`.
#[no_mangle]
pub unsafe extern "C" fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: forwarded unchanged.
    let r = unsafe { sys::bind(fd, addr, len) };
    if r == 0 {
        let _errno = ErrnoGuard::save();
        // SAFETY: libc just accepted `len` bytes at `addr`.
        if let Some(a) = unsafe { sys::read_sockaddr(addr, len) } {
            inside(|_| FDS.update(fd, |s| s.bind = Some(a)));
        }
    }
    r
}

/// Forgets `fd` before the number can be reused by another thread; a background connect on it
/// is called off (its winner must never land on whatever gets this number next). Skipped when
/// this thread is already inside dnsfo (a signal handler closing an fd while dnsfo holds that
/// fd's lock must not wait for itself); the record then goes stale and is recognised as such.
fn forget(fd: c_int) {
    let Some(_entered) = crate::guard::enter() else {
        return;
    };
    let _errno = ErrnoGuard::save();
    let _ = crate::guard::contain(|| {
        if let Some(link) = FDS.take(fd).and_then(|s| s.race) {
            if let Some(s) = crate::state::get() {
                crate::dial::background::cancel(s, link.id);
            }
        }
    });
}

/// # Safety
/// Same contract as libc's `close`.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    forget(fd);
    // SAFETY: forwarded unchanged.
    unsafe { sys::close(fd) }
}

/// # Safety
/// Same contract as libc's `dup2`.
#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if old != new {
        forget(new);
    }
    // SAFETY: forwarded unchanged.
    unsafe { sys::dup2(old, new) }
}

/// # Safety
/// Same contract as libc's `dup3`.
#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if old != new {
        forget(new);
    }
    // SAFETY: forwarded unchanged.
    unsafe { sys::dup3(old, new, flags) }
}
