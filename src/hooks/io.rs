//! Reads and writes on an fd whose connect is being raced in the background. The fd holds a
//! placeholder (a pipe's read end); a socket that is still connecting answers `EAGAIN`, so that
//! is what these hooks answer. Every other call goes straight to libc after one relaxed atomic
//! load (no fd anywhere is racing).

use crate::fdtable;
use crate::guard;
use crate::state::FDS;
use crate::sys;
use libc::{c_int, c_void, size_t, sockaddr, socklen_t};

/// Is `fd` being raced? Cheap when nothing is.
fn racing(fd: c_int) -> bool {
    if !fdtable::any_special() {
        return false;
    }
    let Some(_entered) = guard::enter() else {
        return false;
    };
    guard::contain(|| {
        FDS.locked(fd, |s| {
            s.as_deref_mut().is_some_and(|s| {
                s.race.is_some() && super::still_special(fd, s) && s.race.is_some()
            })
        })
    })
    .unwrap_or(false)
}

fn would_block() -> isize {
    sys::set_errno(libc::EAGAIN);
    -1
}

macro_rules! io_hook {
    ($(fn $name:ident($fd:ident: c_int $(, $a:ident: $t:ty)*);)*) => {$(
        /// # Safety
        /// Same contract as the libc function of this name.
        #[no_mangle]
        pub unsafe extern "C" fn $name($fd: c_int $(, $a: $t)*) -> isize {
            if racing($fd) {
                return would_block();
            }
            // SAFETY: forwarded unchanged.
            unsafe { sys::$name($fd $(, $a)*) }
        }
    )*};
}

io_hook! {
    fn read(fd: c_int, buf: *mut c_void, n: size_t);
    fn readv(fd: c_int, iov: *const libc::iovec, n: c_int);
    fn write(fd: c_int, buf: *const c_void, n: size_t);
    fn writev(fd: c_int, iov: *const libc::iovec, n: c_int);
    fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int);
    fn recvfrom(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t);
    fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int);
    fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int);
    fn sendto(fd: c_int, buf: *const c_void, n: size_t, flags: c_int, addr: *const sockaddr, len: socklen_t);
    fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int);
}
