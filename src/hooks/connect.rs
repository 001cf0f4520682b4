//! The `connect` hook: the fast path (not an IP socket address dnsfo learned) goes straight to
//! libc; everything else is decided in `failover`. The waits of a blocking connect (its first
//! attempt, the race's `poll`) happen here, between the steps that `failover` and the dialer
//! take, outside every panic boundary.

use super::inside;
use crate::dial::blocking::{Blocking, Step};
use crate::failover::{self, Decision};
use crate::fdtable;
use crate::sys;
use libc::{c_int, sockaddr, socklen_t};

/// Steps of one blocking race at most (each is a wait or an attempt; a race has a handful).
const MAX_STEPS: usize = 100_000;

hook! {
    /// An IP address: decided in `failover::connect` (which may steer it); `AF_UNSPEC`: the
    /// program aborts its connect itself, its steer (if any) stops first. Anything else (a Unix
    /// socket, a bad pointer) goes straight to libc.
    fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int = sys::connect;
    // SAFETY: the program's `addr`/`len`; only the family is read, after a length check.
    take over if unsafe { may_concern_dnsfo(addr, len) } => {
        // SAFETY: `addr`/`len` are the program's; read_sockaddr checks null and length first.
        let Some(target) = (unsafe { sys::read_sockaddr(addr, len) }) else {
            if fdtable::any_special() {
                let _errno = sys::ErrnoGuard::save();
                inside(|s| failover::program_ends(s, fd, false));
            }
            // SAFETY: forwarded unchanged.
            return unsafe { sys::connect(fd, addr, len) };
        };
        let saved = sys::errno();
        // Whatever the program's cancellation type, dnsfo's own code is only ever cancelled at
        // its waits (cancellation points), never halfway through.
        let _deferred = sys::CancelDeferred::new();
        crate::learn::note_connect_addr(addr);
        let decision =
            inside(|s| failover::connect(s, fd, target)).unwrap_or(Decision::PassThrough);
        // SAFETY: forwarded to the same call when needed.
        unsafe { carry_out(fd, addr, len, decision, saved) }
    }
}

/// The connect's family is IPv4, IPv6 or `AF_UNSPEC` (the only ones dnsfo acts on); no other
/// byte of the address is read here.
///
/// # Safety
/// `addr` null or valid for `len` bytes.
unsafe fn may_concern_dnsfo(addr: *const sockaddr, len: socklen_t) -> bool {
    if addr.is_null() || (len as usize) < std::mem::size_of::<libc::sa_family_t>() {
        return false;
    }
    // SAFETY: checked non-null and long enough for the family.
    let family = c_int::from(unsafe { std::ptr::read_unaligned(addr as *const libc::sa_family_t) });
    matches!(family, libc::AF_INET | libc::AF_INET6 | libc::AF_UNSPEC)
}

/// # Safety
/// Same contract as libc's `connect` for `addr`/`len`.
unsafe fn carry_out(
    fd: c_int,
    addr: *const sockaddr,
    len: socklen_t,
    decision: Decision,
    saved: c_int,
) -> c_int {
    match decision {
        Decision::Return(r, e) => {
            sys::set_errno(if r == 0 { saved } else { e });
            r
        }
        Decision::First(first) => {
            sys::set_errno(saved);
            // Waits up to the attempt delay, with the program's cancellation state.
            let result = first.attempt();
            match inside(|s| failover::after_first(s, first, result)) {
                // SAFETY: same arguments.
                Some(next) => unsafe { carry_out(fd, addr, len, next, saved) },
                None => match result {
                    Ok(()) => 0,
                    Err(e) => {
                        sys::set_errno(e);
                        -1
                    }
                },
            }
        }
        // SAFETY: same arguments.
        Decision::Blocking(dial) => unsafe { race(fd, addr, len, *dial, saved) },
        // SAFETY: same arguments.
        Decision::AwaitSteer => unsafe { await_steer(fd, addr, len, saved) },
        Decision::PassThrough => {
            sys::set_errno(saved);
            // SAFETY: forwarded unchanged.
            let r = unsafe { sys::connect(fd, addr, len) };
            translate(fd, r)
        }
    }
}

/// After libc answered a connect on a socket whose steer failed everywhere: the program is told
/// the error of its own address rather than that of the last one tried.
fn translate(fd: c_int, r: c_int) -> c_int {
    if r == -1 && fdtable::any_special() && dnsfo_core::outcome::is_dead_address_error(sys::errno())
    {
        let e = sys::errno();
        let report = inside(|_| failover::take_report(fd)).flatten();
        sys::set_errno(report.unwrap_or(e));
    }
    r
}

/// A blocking connect racing in this thread: dialer steps, and `poll` between them.
///
/// # Safety
/// Same contract as libc's `connect` for `addr`/`len`.
unsafe fn race(
    fd: c_int,
    addr: *const sockaddr,
    len: socklen_t,
    mut dial: Blocking,
    saved: c_int,
) -> c_int {
    let mut polled: Vec<libc::pollfd> = Vec::new();
    for _ in 0..MAX_STEPS {
        match inside(|_| dial.step(&polled)) {
            Some(Step::Done(result)) => {
                inside(|s| {
                    if let Some(steer) = dial.take_steer() {
                        failover::finish(s, steer);
                    }
                });
                return match result {
                    Ok(()) => {
                        sys::set_errno(saved);
                        0
                    }
                    Err(e) => {
                        sys::set_errno(e);
                        -1
                    }
                };
            }
            Some(Step::Stopped(steer, e)) => {
                inside(|s| failover::handover(s, steer));
                sys::set_errno(e);
                return -1;
            }
            Some(Step::Wait(fds, timeout)) => {
                polled = fds;
                // The program's thread waits here as it would in the kernel's connect
                // (a cancellation point, outside every panic boundary).
                if sys::poll_fds(&mut polled, timeout) == Err(libc::EINTR) {
                    dial.interrupted();
                }
            }
            Some(Step::Plain) | None => break,
        }
    }
    // Nothing left to race (or the dialer failed midway: its guards gave the socket its flags
    // back). The kernel finishes on the program's socket: it waits for an attempt under way,
    // or makes the plain one.
    let sock = dial.handle();
    sys::set_errno(saved);
    // SAFETY: forwarded to the program's socket (dnsfo's duplicate of it while it exists).
    let r = unsafe { sys::connect(if sock >= 0 { sock } else { fd }, addr, len) };
    let _errno = (r == -1).then(sys::errno);
    inside(|s| {
        if let Some(steer) = dial.take_steer() {
            failover::finish(s, steer);
        }
    });
    if let Some(e) = _errno {
        sys::set_errno(e);
    }
    translate(fd, r)
}

/// A blocking `connect` on a socket whose steer is in flight (the program made it blocking after
/// a non-blocking connect, and asks again to wait): wait for the steer, then let the kernel
/// answer for the socket's state.
///
/// # Safety
/// Same contract as libc's `connect` for `addr`/`len`.
unsafe fn await_steer(fd: c_int, addr: *const sockaddr, len: socklen_t, saved: c_int) -> c_int {
    if settle(fd) == Err(libc::EINTR) {
        sys::set_errno(libc::EINTR);
        return -1;
    }
    sys::set_errno(saved);
    // SAFETY: forwarded unchanged.
    translate(fd, unsafe { sys::connect(fd, addr, len) })
}

/// Waits until the steer on `fd` (if any) has settled: before a call after which the program
/// waits in the kernel itself (a blocking connect, read or write), where an abort by the steer
/// would reach it. `Err(EINTR)`: a signal without `SA_RESTART` came.
pub(super) fn settle(fd: c_int) -> Result<(), c_int> {
    for _ in 0..MAX_STEPS {
        let going = inside(|s| failover::advance(s, fd))
            .flatten()
            .is_some_and(|st| !st.settled());
        if !going {
            return Ok(());
        }
        let mut p = [libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        }];
        if sys::poll_fds(&mut p, 50) == Err(libc::EINTR) && sys::any_handler_without_restart() {
            return Err(libc::EINTR);
        }
    }
    Ok(())
}
