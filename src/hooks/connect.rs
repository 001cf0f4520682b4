//! The `connect` hook: the fast path (not an IP socket address dnsfo learned) goes straight to
//! libc; everything else is decided in `failover`.

use super::inside;
use crate::failover::{self, Decision};
use crate::sys;
use libc::{c_int, sockaddr, socklen_t};

/// # Safety
/// Same contract as libc's `connect`.
#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: `addr`/`len` are the program's; read_sockaddr checks null and length first.
    let Some(target) = (unsafe { sys::read_sockaddr(addr, len) }) else {
        // SAFETY: forwarded unchanged.
        return unsafe { sys::connect(fd, addr, len) };
    };
    let saved = sys::errno();
    match inside(|s| failover::connect(s, fd, target)) {
        Some(Decision::Return(r, e)) => {
            sys::set_errno(if r == 0 { saved } else { e });
            r
        }
        Some(Decision::Watch) => {
            sys::set_errno(saved);
            // SAFETY: forwarded unchanged.
            let r = unsafe { sys::connect(fd, addr, len) };
            if r == -1 && failover::is_dead_address_error(sys::errno()) {
                let e = sys::errno();
                if let Some(Decision::Return(r, e2)) =
                    inside(|s| failover::after_failure(s, fd, target, e))
                {
                    sys::set_errno(if r == 0 { saved } else { e2 });
                    return r;
                }
                sys::set_errno(e);
            }
            r
        }
        Some(Decision::PassThrough) | None => {
            sys::set_errno(saved);
            // SAFETY: forwarded unchanged.
            unsafe { sys::connect(fd, addr, len) }
        }
    }
}
