//! Socket set-up and fd lifecycle hooks: `socket`, `setsockopt`, `bind` record what a probe
//! must carry; `close`, `dup2`, `dup3` forget an fd whose socket is gone (and stop its steer).

use super::inside;
use crate::fdtable::{self, FdState};
use crate::state::FDS;
use crate::sys;
use libc::{c_int, c_void, sockaddr, socklen_t};

/// Largest option value remembered for replay (larger ones are unusual: filters, keys).
const MAX_OPT_LEN: usize = 256;

hook! {
    /// An IPv4/IPv6 stream socket is recorded (its domain and protocol, for probes like it).
    fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int = sys::socket;
    after(fd) {
        if fd >= 0 {
            inside(|s| {
                let base = ty & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
                let old = if (domain == libc::AF_INET || domain == libc::AF_INET6)
                    && base == libc::SOCK_STREAM
                {
                    FDS.insert(
                        fd,
                        FdState {
                            domain,
                            protocol,
                            ..Default::default()
                        },
                    )
                } else {
                    FDS.take(fd).map(Box::new)
                };
                // The number was closed behind dnsfo's back (libuv closes with a raw system
                // call): the steer on the old socket ends here.
                if let Some(steer) = old.and_then(|mut o| o.steer.take()) {
                    crate::failover::orphaned(s, steer);
                }
            });
        }
    }
}

hook! {
    /// A successful option is remembered, for probes to carry it too.
    fn setsockopt(
        fd: c_int,
        level: c_int,
        name: c_int,
        val: *const c_void,
        len: socklen_t,
    ) -> c_int = sys::setsockopt;
    after(r) {
        if r == 0 && !val.is_null() && (len as usize) <= MAX_OPT_LEN {
            // SAFETY: libc just read `len` bytes at `val` successfully.
            let value = unsafe { std::slice::from_raw_parts(val as *const u8, len as usize) };
            inside(|_| FDS.update(fd, |s| s.record_opt(level, name, value)));
        }
    }
}

hook! {
    /// A successful bind is remembered, for probes to bind alike.
    fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int = sys::bind;
    after(r) {
        if r == 0 {
            // SAFETY: libc just accepted `len` bytes at `addr`.
            if let Some(a) = unsafe { sys::read_sockaddr(addr, len) } {
                inside(|_| FDS.update(fd, |s| s.bind = Some(a)));
            }
        }
    }
}

/// Forgets `fd` before the number can be reused by another thread, and stops a steer on it.
/// Skipped when this thread is already inside dnsfo (a signal handler closing an fd while dnsfo
/// holds that fd's lock must not wait for itself); the record then goes stale, and is replaced
/// when `socket()` hands the number out again. Without any steer, only the table is touched
/// (no start-up, no cancellation state: `close` is the commonest call there is).
fn forget(fd: c_int) {
    if fdtable::any_special() {
        inside(|s| crate::failover::program_ends(s, fd, true));
    } else if let Some(_entered) = crate::guard::enter() {
        FDS.remove(fd);
    }
}

hook! {
    fn close(fd: c_int) -> c_int = sys::close;
    before { forget(fd) }
}

hook! {
    fn dup2(old: c_int, new: c_int) -> c_int = sys::dup2;
    before {
        if old != new {
            forget(new);
        }
    }
}

hook! {
    fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int = sys::dup3;
    before {
        if old != new {
            forget(new);
        }
    }
}
