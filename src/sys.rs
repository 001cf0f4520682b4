//! The thin layer around libc: the *real* (next in link order) versions of the functions dnsfo
//! hooks, `errno`, and conversions between `sockaddr` and std's `SocketAddr`.
//!
//! Owns: every `unsafe` call into libc that the logic needs. Must never: decide anything, take a
//! lock, allocate on a hot path, or call an exported hook (that would recurse into dnsfo). Code in
//! this crate calling `libc::connect` would bind to dnsfo's own exported `connect`; that is why
//! every hooked function is reached through [`next!`]-generated wrappers here.

use libc::{c_char, c_int, c_void, hostent, size_t, sockaddr, socklen_t};
use std::ffi::CStr;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicPtr, Ordering};

/// Resolves a symbol in the libraries loaded after dnsfo (`RTLD_NEXT`), once.
fn resolve_next(slot: &AtomicPtr<c_void>, name: &CStr) -> *mut c_void {
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name has no preconditions; a null result
    // (symbol missing) is handled by the callers. Racing resolutions store the same value.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
    slot.store(p, Ordering::Release);
    p
}

/// Defines `pub unsafe fn NAME(args) -> ret` calling the next definition of `NAME` in link
/// order; when none exists (impossible with glibc), returns `$missing` with `errno = ENOSYS`.
macro_rules! next {
    ($(fn $name:ident($($a:ident: $t:ty),*) -> $r:ty, missing $missing:expr;)*) => {$(
        /// The real libc function of this name (dnsfo's hook bypassed).
        ///
        /// # Safety
        /// Same contract as the libc function.
        pub unsafe fn $name($($a: $t),*) -> $r {
            static SLOT: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
            let mut p = SLOT.load(Ordering::Acquire);
            if p.is_null() {
                const NAME: &[u8] = concat!(stringify!($name), "\0").as_bytes();
                if let Ok(n) = CStr::from_bytes_with_nul(NAME) {
                    p = resolve_next(&SLOT, n);
                }
            }
            if p.is_null() {
                set_errno(libc::ENOSYS);
                return $missing;
            }
            // SAFETY: `p` is the address of the libc function with exactly this C signature.
            // "C-unwind": many of these are cancellation points, and a cancelled thread's forced
            // unwind must pass through (DESIGN.md fact 13).
            let f: unsafe extern "C-unwind" fn($($t),*) -> $r = unsafe { std::mem::transmute(p) };
            // SAFETY: forwarded under the caller's contract.
            unsafe { f($($a),*) }
        }
    )*};
}

next! {
    fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int, missing -1;
    fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int, missing -1;
    fn close(fd: c_int) -> c_int, missing -1;
    fn dup2(old: c_int, new: c_int) -> c_int, missing -1;
    fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int, missing -1;
    fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int, missing -1;
    fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int, missing -1;
    fn getaddrinfo(node: *const c_char, service: *const c_char, hints: *const libc::addrinfo, res: *mut *mut libc::addrinfo) -> c_int, missing libc::EAI_SYSTEM;
    fn gethostbyname(name: *const c_char) -> *mut hostent, missing std::ptr::null_mut();
    fn gethostbyname2(name: *const c_char, af: c_int) -> *mut hostent, missing std::ptr::null_mut();
    fn gethostbyname_r(name: *const c_char, ret: *mut hostent, buf: *mut c_char, buflen: size_t, result: *mut *mut hostent, h_errnop: *mut c_int) -> c_int, missing libc::ENOSYS;
    fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int, missing -1;
    fn fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int, missing -1;
    fn ioctl(fd: c_int, request: libc::c_ulong, arg: usize) -> c_int, missing -1;
    fn getsockopt(fd: c_int, level: c_int, name: c_int, val: *mut c_void, len: *mut socklen_t) -> c_int, missing -1;
    fn getsockname(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int, missing -1;
    fn getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int, missing -1;
    fn shutdown(fd: c_int, how: c_int) -> c_int, missing -1;
    fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, ev: *mut libc::epoll_event) -> c_int, missing -1;
    fn read(fd: c_int, buf: *mut c_void, n: size_t) -> isize, missing -1;
    fn readv(fd: c_int, iov: *const libc::iovec, n: c_int) -> isize, missing -1;
    fn write(fd: c_int, buf: *const c_void, n: size_t) -> isize, missing -1;
    fn writev(fd: c_int, iov: *const libc::iovec, n: c_int) -> isize, missing -1;
    fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> isize, missing -1;
    fn recvfrom(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> isize, missing -1;
    fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> isize, missing -1;
    fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> isize, missing -1;
    fn sendto(fd: c_int, buf: *const c_void, n: size_t, flags: c_int, addr: *const sockaddr, len: socklen_t) -> isize, missing -1;
    fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> isize, missing -1;
    fn gethostbyname2_r(name: *const c_char, af: c_int, ret: *mut hostent, buf: *mut c_char, buflen: size_t, result: *mut *mut hostent, h_errnop: *mut c_int) -> c_int, missing libc::ENOSYS;
    fn epoll_wait(epfd: c_int, events: *mut libc::epoll_event, max: c_int, timeout: c_int) -> c_int, missing -1;
    fn epoll_pwait(epfd: c_int, events: *mut libc::epoll_event, max: c_int, timeout: c_int, mask: *const libc::sigset_t) -> c_int, missing -1;
    fn epoll_pwait2(epfd: c_int, events: *mut libc::epoll_event, max: c_int, timeout: *const libc::timespec, mask: *const libc::sigset_t) -> c_int, missing -1;
    fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int, missing -1;
    fn ppoll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: *const libc::timespec, mask: *const libc::sigset_t) -> c_int, missing -1;
    fn __poll_chk(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int, fdslen: size_t) -> c_int, missing -1;
    fn __ppoll_chk(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: *const libc::timespec, mask: *const libc::sigset_t, fdslen: size_t) -> c_int, missing -1;
    fn select(n: c_int, r: *mut libc::fd_set, w: *mut libc::fd_set, e: *mut libc::fd_set, timeout: *mut libc::timeval) -> c_int, missing -1;
    fn pselect(n: c_int, r: *mut libc::fd_set, w: *mut libc::fd_set, e: *mut libc::fd_set, timeout: *const libc::timespec, mask: *const libc::sigset_t) -> c_int, missing -1;
    fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int, missing -1;
    fn execv(path: *const c_char, argv: *const *const c_char) -> c_int, missing -1;
    fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int, missing -1;
    fn execvpe(file: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int, missing -1;
    fn fexecve(fd: c_int, argv: *const *const c_char, envp: *const *const c_char) -> c_int, missing -1;
}

extern "C-unwind" {
    // Not in the libc crate for this target; glibc has had them forever. "C-unwind": switching
    // back to the program's state acts on a pending cancellation at once (an unwind).
    fn pthread_setcancelstate(state: c_int, old: *mut c_int) -> c_int;
    fn pthread_setcanceltype(ty: c_int, old: *mut c_int) -> c_int;
}

const PTHREAD_CANCEL_DISABLE: c_int = 1;
const PTHREAD_CANCEL_DEFERRED: c_int = 0;

/// Keeps thread cancellation off while dnsfo works in a program's thread, so that a
/// cancellation point inside dnsfo (any libc socket call) never starts a forced unwind where a
/// panic boundary would turn it into an abort (DESIGN.md fact 13). The program's own state comes
/// back on drop.
pub struct CancelOff(c_int);

impl CancelOff {
    pub fn new() -> CancelOff {
        let mut old: c_int = 0;
        // SAFETY: plain call with a valid out pointer; not a cancellation point.
        unsafe { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &mut old) };
        CancelOff(old)
    }
}

impl Default for CancelOff {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for CancelOff {
    fn drop(&mut self) {
        let mut ignored: c_int = 0;
        // SAFETY: as in `new`; a pending cancellation may unwind from here (no lock held).
        unsafe { pthread_setcancelstate(self.0, &mut ignored) };
    }
}

/// Makes cancellation deferred for a while: a program that enabled asynchronous cancellation
/// (and then called `connect`, which is not async-cancel-safe) is cancelled at dnsfo's waits,
/// which are cancellation points, never in the middle of dnsfo's own code. The program's type
/// comes back on drop (a pending cancellation then acts at once).
pub struct CancelDeferred(c_int);

impl CancelDeferred {
    pub fn new() -> CancelDeferred {
        let mut old: c_int = 0;
        // SAFETY: plain call with a valid out pointer; async-cancel-safe.
        unsafe { pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &mut old) };
        CancelDeferred(old)
    }
}

impl Default for CancelDeferred {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for CancelDeferred {
    fn drop(&mut self) {
        if self.0 != PTHREAD_CANCEL_DEFERRED {
            let mut ignored: c_int = 0;
            // SAFETY: as in `new`.
            unsafe { pthread_setcanceltype(self.0, &mut ignored) };
        }
    }
}

/// Linux `tcp_info.tcpi_state` values dnsfo looks at (include/net/tcp_states.h).
pub mod tcp_state {
    pub const SYN_SENT: u8 = 2;
    pub const SYN_RECV: u8 = 3;
    pub const CLOSE: u8 = 7;
}

/// The TCP state of a socket (`TCP_INFO`'s first byte), without touching its pending error.
pub fn tcp_state(fd: c_int) -> Option<u8> {
    tcp_state_rtt(fd).map(|(state, _)| state)
}

/// The TCP state of a socket and, once connected, the kernel's RTT for it (`tcpi_rtt` and
/// `tcpi_rttvar`, µs, at bytes 68 and 72 of `struct tcp_info`): one `TCP_INFO` read.
pub fn tcp_state_rtt(fd: c_int) -> Option<(u8, Option<crate::plan::Rtt>)> {
    let mut info = [0u8; 76];
    let mut len = info.len() as socklen_t;
    // SAFETY: the buffer is valid for `len` bytes; the kernel copies at most that.
    let r = unsafe {
        getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr() as *mut c_void,
            &mut len,
        )
    };
    if r != 0 || len < 1 {
        return None;
    }
    let word = |at: usize| u32::from_ne_bytes([info[at], info[at + 1], info[at + 2], info[at + 3]]);
    let rtt = (len >= 76 && word(68) > 0).then(|| crate::plan::Rtt {
        srtt_us: word(68),
        var_us: word(72),
    });
    Some((info[0], rtt))
}

/// `dup` of `fd`, close-on-exec, on the lowest free number at or above `min` (or the lowest
/// free one when that fails): dnsfo's own copies keep out of the low numbers programs expect.
pub fn dup_above(fd: c_int, min: c_int) -> Result<c_int, c_int> {
    // SAFETY: F_DUPFD_CLOEXEC takes an int (the lowest acceptable fd).
    check(unsafe { fcntl(fd, libc::F_DUPFD_CLOEXEC, min as usize) }).or_else(|_| dup_cloexec(fd))
}

/// `CLOCK_MONOTONIC` in ms: the same clock in every process (unlike `Instant`'s origin).
pub fn monotonic_ms() -> u64 {
    // SAFETY: timespec is plain old data; clock_gettime fills it.
    let mut ts: libc::timespec = unsafe { zeroed() };
    // SAFETY: valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// The identity (device, inode) of what `fd` refers to.
pub fn file_id(fd: c_int) -> Option<(u64, u64)> {
    // SAFETY: stat is plain old data, fstat fills it.
    let mut st: libc::stat = unsafe { zeroed() };
    // SAFETY: valid out pointer.
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some((st.st_dev, st.st_ino))
}

/// What `fd` is ready for right now (`poll` with no wait), among `events` (plus the error and
/// hang-up bits the kernel always reports).
pub fn ready_now(fd: c_int, events: i16) -> i16 {
    let mut p = [libc::pollfd {
        fd,
        events,
        revents: 0,
    }];
    match poll_fds(&mut p, 0) {
        Ok(_) => p[0].revents,
        Err(_) => 0,
    }
}

/// A zeroed shared anonymous mapping of `len` bytes that `fork()` children share (never
/// unmapped).
pub fn shared_zeroed(len: usize) -> Option<*mut u8> {
    // SAFETY: an anonymous mapping has no preconditions; failure is MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p as *mut u8)
}

/// Do two fds refer to the same open socket? (`false` when either is not open.) Tells whether
/// the program's fd number still holds the socket a steer is working on, after a close that
/// dnsfo did not see (libuv closes with a raw system call).
pub fn same_file(a: c_int, b: c_int) -> bool {
    matches!((file_id(a), file_id(b)), (Some(x), Some(y)) if x == y)
}

/// The process id (a system call: glibc caches nothing), for telling a `vfork` child apart.
/// This process's id as dnsfo last noted it (at start-up, after each `fork()`): a `vfork` child,
/// which shares dnsfo's memory but runs no fork handler, tells itself apart by it.
static NOTED_PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Notes this process's id (at start-up, and in a `fork()` child).
pub fn note_pid(pid: u32) {
    NOTED_PID.store(pid, Ordering::Relaxed);
}

/// This process's id as of start-up or the last `fork()` (not updated in a `vfork` child), with
/// no system call.
pub fn noted_pid() -> u32 {
    NOTED_PID.load(Ordering::Relaxed)
}

pub fn getpid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libc::getpid() as u32 }
}

/// The calling thread's `errno`.
pub fn errno() -> c_int {
    // SAFETY: __errno_location always returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Sets the calling thread's `errno`.
pub fn set_errno(e: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = e }
}

/// Saves `errno` and puts it back on drop, so that dnsfo's own work never changes what the
/// program sees.
pub struct ErrnoGuard(c_int);
impl ErrnoGuard {
    pub fn save() -> Self {
        ErrnoGuard(errno())
    }
}
impl Drop for ErrnoGuard {
    fn drop(&mut self) {
        set_errno(self.0)
    }
}

/// `Err(errno)` when a libc call returned -1.
fn check(ret: c_int) -> Result<c_int, c_int> {
    if ret == -1 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

pub use dnsfo_os::sockaddr::read as read_sockaddr;

pub use dnsfo_os::sockaddr::Raw as RawAddr;

pub use dnsfo_core::outcome::canonical_ip;

pub fn connect_to(fd: c_int, addr: &RawAddr) -> Result<(), c_int> {
    // SAFETY: `addr` points to a valid sockaddr of `len` bytes.
    check(unsafe { connect(fd, addr.as_ptr(), addr.len) }).map(drop)
}

pub fn bind_to(fd: c_int, addr: &RawAddr) -> Result<(), c_int> {
    // SAFETY: as in connect_to.
    check(unsafe { bind(fd, addr.as_ptr(), addr.len) }).map(drop)
}

/// Aborts a pending connect (`connect(fd, AF_UNSPEC)`).
pub fn disconnect(fd: c_int) -> Result<(), c_int> {
    // SAFETY: a zeroed sockaddr with family AF_UNSPEC is the documented way to dissolve a
    // connection; the pointer is valid for its size.
    let sa: libc::sockaddr = unsafe { zeroed() };
    // SAFETY: `sa` lives across the call and is exactly the length passed.
    check(unsafe { connect(fd, &sa, size_of::<libc::sockaddr>() as socklen_t) }).map(drop)
}

pub fn new_socket(domain: c_int, ty: c_int, protocol: c_int) -> Result<c_int, c_int> {
    // SAFETY: socket() has no memory preconditions.
    check(unsafe { socket(domain, ty, protocol) })
}

/// The address a socket is bound to (`getsockname`).
pub fn local_addr(fd: c_int) -> Option<SocketAddr> {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as socklen_t;
    // SAFETY: `storage` is writable for `len` bytes, and `len` is ours.
    check(unsafe { getsockname(fd, &mut storage as *mut _ as *mut sockaddr, &mut len) }).ok()?;
    // SAFETY: the kernel just wrote `len` bytes of address into `storage`.
    unsafe { read_sockaddr(&storage as *const _ as *const sockaddr, len) }
}

pub fn close_fd(fd: c_int) {
    // SAFETY: the caller owns `fd` (one of dnsfo's own sockets); errors are irrelevant here.
    unsafe { close(fd) };
}

pub fn fcntl_get(fd: c_int, cmd: c_int) -> Result<c_int, c_int> {
    // SAFETY: F_GETFL/F_GETFD take no argument (the 0 is ignored).
    check(unsafe { fcntl(fd, cmd, 0) })
}

pub fn fcntl_set(fd: c_int, cmd: c_int, value: c_int) -> Result<(), c_int> {
    // SAFETY: F_SETFL/F_SETFD take an int argument.
    check(unsafe { fcntl(fd, cmd, value as usize) }).map(drop)
}

pub fn setsockopt_raw(fd: c_int, level: c_int, name: c_int, value: &[u8]) -> Result<(), c_int> {
    // SAFETY: `value` is valid for its length.
    check(unsafe {
        setsockopt(
            fd,
            level,
            name,
            value.as_ptr() as *const c_void,
            value.len() as socklen_t,
        )
    })
    .map(drop)
}

pub fn getsockopt_int(fd: c_int, level: c_int, name: c_int) -> Result<c_int, c_int> {
    let mut v: c_int = 0;
    let mut len = size_of::<c_int>() as socklen_t;
    // SAFETY: buffer and length describe a valid c_int.
    check(unsafe { getsockopt(fd, level, name, &mut v as *mut _ as *mut c_void, &mut len) })?;
    Ok(v)
}

/// `poll` over `fds`; returns the count ready or the errno (EINTR included).
pub fn poll_fds(fds: &mut [libc::pollfd], timeout_ms: c_int) -> Result<usize, c_int> {
    // SAFETY: `fds` is a valid, exclusively borrowed slice of pollfd.
    check(unsafe { poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) })
        .map(|n| n as usize)
}

/// Did some installed signal handler ask for interrupted calls to fail with `EINTR` (no
/// `SA_RESTART`)? Used after a wait was interrupted: the kernel restarts a blocking `connect`
/// for `SA_RESTART` handlers, so dnsfo must then keep waiting instead of returning `EINTR`.
pub fn any_handler_without_restart() -> bool {
    (1..=libc::SIGRTMAX()).any(|sig| {
        // SAFETY: sigaction is plain old data; querying (null new action) has no side effect.
        let mut old: libc::sigaction = unsafe { zeroed() };
        // SAFETY: a null new action only reads the current one into `old`, which we own.
        let r = unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) };
        r == 0
            && old.sa_sigaction != libc::SIG_DFL
            && old.sa_sigaction != libc::SIG_IGN
            && old.sa_flags & libc::SA_RESTART == 0
    })
}

/// Is this process running with secure execution (setuid/setgid, capabilities)?
pub fn secure_execution() -> bool {
    // SAFETY: getauxval has no preconditions.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// Writes a whole message to a file descriptor, ignoring errors (used for config warnings on
/// stderr, which must appear even when logging is off).
pub fn write_all(fd: c_int, mut buf: &[u8]) {
    for _ in 0..64 {
        if buf.is_empty() {
            return;
        }
        // SAFETY: `buf` is valid for its length.
        let n = unsafe { write(fd, buf.as_ptr() as *const c_void, buf.len()) };
        if n <= 0 {
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            return;
        }
        buf = &buf[n as usize..];
    }
}

/// The symbolic name of an errno value, for logs.
pub fn errno_name(e: c_int) -> &'static str {
    match e {
        0 => "failed (error left for the program)",
        e => dnsfo_core::errno::name(e).unwrap_or("error"),
    }
}

/// Registers `fork()` handlers.
pub fn register_atfork(prepare: extern "C" fn(), parent: extern "C" fn(), child: extern "C" fn()) {
    // SAFETY: the handlers are plain `extern "C" fn()` that live for the whole process.
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
}

/// `dup` onto the lowest free fd, close-on-exec.
pub fn dup_cloexec(fd: c_int) -> Result<c_int, c_int> {
    // SAFETY: F_DUPFD_CLOEXEC takes an int (the lowest acceptable fd).
    check(unsafe { fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })
}

pub fn epoll_op(epfd: c_int, op: c_int, fd: c_int, events: u32, data: u64) -> Result<(), c_int> {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: `ev` is a valid epoll_event for the duration of the call.
    check(unsafe { epoll_ctl(epfd, op, fd, &mut ev) }).map(drop)
}

pub fn epoll_new() -> Result<c_int, c_int> {
    // SAFETY: no preconditions.
    check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
}

pub fn epoll_wait_into(
    epfd: c_int,
    events: &mut [libc::epoll_event],
    timeout_ms: c_int,
) -> Result<usize, c_int> {
    // SAFETY: `events` is a valid, exclusively borrowed buffer of its length.
    check(unsafe { epoll_wait(epfd, events.as_mut_ptr(), events.len() as c_int, timeout_ms) })
        .map(|n| n as usize)
}

pub fn eventfd_new() -> Result<c_int, c_int> {
    // SAFETY: no preconditions.
    check(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })
}

/// Adds 1 to an eventfd (wakes its reader).
pub fn eventfd_kick(fd: c_int) {
    let one: u64 = 1;
    // SAFETY: writes 8 valid bytes.
    unsafe { write(fd, &one as *const u64 as *const c_void, 8) };
}

/// Empties an eventfd.
pub fn eventfd_drain(fd: c_int) {
    let mut v: u64 = 0;
    // SAFETY: reads into 8 valid bytes.
    unsafe { read(fd, &mut v as *mut u64 as *mut c_void, 8) };
}

/// Blocks every signal in the calling thread: dnsfo's own thread must not run the program's
/// signal handlers.
pub fn block_all_signals() {
    // SAFETY: sigset_t is plain old data; sigfillset/pthread_sigmask only touch it.
    unsafe {
        let mut set: libc::sigset_t = zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Runs `f` at normal process exit.
pub fn at_exit(f: extern "C" fn()) {
    // SAFETY: `f` is a plain function that lives for the whole process.
    unsafe { libc::atexit(f) };
}

/// Are at least `headroom` fd numbers free above `lowest_free` (the number the kernel just
/// handed out, lowest first) under `RLIMIT_NOFILE`?
pub fn fd_headroom(lowest_free: c_int, headroom: c_int) -> bool {
    // SAFETY: rlimit is plain old data; getrlimit fills it.
    let mut rl: libc::rlimit = unsafe { zeroed() };
    // SAFETY: `rl` is ours and of the type getrlimit fills.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return true;
    }
    (lowest_free as u64).saturating_add(headroom as u64) < rl.rlim_cur
}
