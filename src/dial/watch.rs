//! The reactor's epoll registrations of the sockets it waits on (probes, and the duplicate of a
//! steered socket), reachable from the steer without naming the reactor.
//!
//! Owns: the current epoll fd of the reactor (-1 when none) and the token that says which
//! steer an event is for. Must never: create or close the epoll instance (the reactor does).

use crate::sys;
use libc::c_int;
use std::sync::atomic::{AtomicI32, Ordering};

/// The reactor's epoll fd, for `unwatch` from any thread (-1: none).
static EPFD: AtomicI32 = AtomicI32::new(-1);

/// Set by the reactor when it starts (and -1 when it is gone).
pub fn set_epfd(epfd: c_int) {
    EPFD.store(epfd, Ordering::Release);
}

/// The token of an event on `sock` for the steer on `fd`.
pub fn token(fd: c_int, sock: c_int) -> u64 {
    ((fd as u32 as u64) << 32) | sock as u32 as u64
}

/// The (fd, sock) an event's token names.
pub fn parts(token: u64) -> (c_int, c_int) {
    ((token >> 32) as c_int, token as u32 as c_int)
}

/// Lets the reactor hear about `sock` (a probe, or a steer's duplicate of the program's socket)
/// of the steer on `fd`. Edge-triggered: each change of state is one event.
pub fn watch(fd: c_int, sock: c_int) -> bool {
    let epfd = EPFD.load(Ordering::Acquire);
    epfd >= 0
        && sys::epoll_op(
            epfd,
            libc::EPOLL_CTL_ADD,
            sock,
            (libc::EPOLLOUT | libc::EPOLLERR | libc::EPOLLHUP | libc::EPOLLET) as u32,
            token(fd, sock),
        )
        .is_ok()
}

/// Before closing a watched socket: a duplicate of the program's socket keeps the description
/// (and so the registration) alive after dnsfo's own copy is closed.
pub fn unwatch(sock: c_int) {
    let epfd = EPFD.load(Ordering::Acquire);
    if epfd >= 0 {
        let _ = sys::epoll_op(epfd, libc::EPOLL_CTL_DEL, sock, 0, 0);
    }
}
