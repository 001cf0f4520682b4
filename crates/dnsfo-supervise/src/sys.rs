//! The thin layer around the kernel: seccomp user notification, pidfds, reading the program's
//! memory, socket calls on the supervisor's duplicates, process start and signals. The only
//! `unsafe` code of the supervisor.
//!
//! Owns: the kernel ABI (structures, ioctl numbers) and errno handling. Must never: decide
//! anything (that is `notify`, `steer`, the core), or keep state.
#![allow(unsafe_code)]

use libc::{c_int, c_void, socklen_t};
use std::ffi::CString;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::time::Duration;

/// `errno` of the last failed call.
pub fn errno() -> c_int {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn check(r: c_int) -> Result<c_int, c_int> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}

// ------------------------------------------------------------------ seccomp ABI

/// `struct seccomp_data`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct SeccompData {
    pub nr: i32,
    pub arch: u32,
    pub ip: u64,
    pub args: [u64; 6],
}

/// `struct seccomp_notif`: one system call a program waits in. `pid` is the thread's id.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct Notif {
    pub id: u64,
    pub pid: u32,
    pub flags: u32,
    pub data: SeccompData,
}

#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// `struct sock_filter` (classic BPF).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const SECCOMP_GET_NOTIF_SIZES: libc::c_ulong = 3;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_ulong = 1 << 3;
/// Linux 5.19: once the supervisor has received a notification, only a fatal signal interrupts
/// the program's wait (a handled signal waits for the answer, so a held connect is never cut in
/// two by SIGALRM or SIGCHLD).
const SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: libc::c_ulong = 1 << 5;
const SECCOMP_USER_NOTIF_FLAG_CONTINUE: u32 = 1;
// _IOWR('!', 0, struct seccomp_notif), _IOWR('!', 1, struct seccomp_notif_resp),
// _IOW('!', 2, __u64): from linux/seccomp.h.
const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;
const NOTIF_ID_VALID: libc::c_ulong = 0x4008_2102;

/// Does the kernel's idea of the notification structures match ours?
pub fn notif_sizes_match() -> bool {
    let mut sizes = [0u16; 3];
    // SAFETY: SECCOMP_GET_NOTIF_SIZES writes three u16s into the buffer given.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_GET_NOTIF_SIZES,
            0,
            sizes.as_mut_ptr(),
        )
    };
    r == 0
        && usize::from(sizes[0]) == size_of::<Notif>()
        && usize::from(sizes[1]) == size_of::<NotifResp>()
        && usize::from(sizes[2]) == size_of::<SeccompData>()
}

/// In the child before `exec`: no new privileges, then the filter; returns the listener. Only
/// async-signal-safe calls (this runs between `fork` and `exec`).
pub fn install_filter(prog: &[SockFilter]) -> Result<c_int, c_int> {
    // SAFETY: prctl with integer arguments.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    let fprog = SockFprog {
        len: prog.len() as u16,
        filter: prog.as_ptr(),
    };
    let mut flags = SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    loop {
        // SAFETY: `fprog` points to `prog`, alive for the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                flags,
                &fprog as *const SockFprog,
            )
        };
        if r >= 0 {
            return Ok(r as c_int);
        }
        let e = errno();
        if e == libc::EINVAL && flags & SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0 {
            // Before Linux 5.19: without the flag (a handled signal may then cut a held connect).
            flags &= !SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
            continue;
        }
        return Err(e);
    }
}

/// Waits for the next notification on `listener`.
pub fn notif_recv(listener: c_int) -> Result<Notif, c_int> {
    let mut n = Notif::default();
    // SAFETY: NOTIF_RECV fills a `struct seccomp_notif` (sizes checked at start-up).
    check(unsafe { libc::ioctl(listener, NOTIF_RECV, &mut n as *mut Notif) })?;
    Ok(n)
}

/// Is the program still waiting in notification `id` (so what was read of it still holds)?
pub fn notif_id_valid(listener: c_int, id: u64) -> bool {
    let mut i = id;
    // SAFETY: NOTIF_ID_VALID reads one u64.
    unsafe { libc::ioctl(listener, NOTIF_ID_VALID, &mut i as *mut u64) == 0 }
}

fn notif_send(listener: c_int, resp: NotifResp) -> Result<(), c_int> {
    let mut r = resp;
    // SAFETY: NOTIF_SEND reads a `struct seccomp_notif_resp`.
    check(unsafe { libc::ioctl(listener, NOTIF_SEND, &mut r as *mut NotifResp) }).map(drop)
}

/// Lets the kernel run the program's own system call, unchanged.
pub fn notif_continue(listener: c_int, id: u64) -> Result<(), c_int> {
    notif_send(
        listener,
        NotifResp {
            id,
            val: 0,
            error: 0,
            flags: SECCOMP_USER_NOTIF_FLAG_CONTINUE,
        },
    )
}

/// Answers the program's system call: success (`Ok`, return value 0) or this errno.
pub fn notif_answer(listener: c_int, id: u64, result: Result<(), c_int>) -> Result<(), c_int> {
    let error = match result {
        Ok(()) => 0,
        Err(e) => -e.abs(),
    };
    notif_send(
        listener,
        NotifResp {
            id,
            val: 0,
            error,
            flags: 0,
        },
    )
}

// ------------------------------------------------------------------ the program's process

/// Reads `buf.len()` bytes at `addr` in process (thread) `pid`.
pub fn read_memory(pid: u32, addr: u64, buf: &mut [u8]) -> Result<(), c_int> {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` is our buffer of that length; the remote side is checked by the kernel.
    let n = unsafe { libc::process_vm_readv(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    if n < 0 {
        Err(errno())
    } else if n as usize != buf.len() {
        Err(libc::EFAULT)
    } else {
        Ok(())
    }
}

/// `PIDFD_THREAD` (Linux 6.9): a pidfd for a thread that is not its process's leader.
const PIDFD_THREAD: libc::c_long = libc::O_EXCL as libc::c_long;

/// A pidfd for process (or, with `thread`, thread) `pid`; close-on-exec.
pub fn pidfd_open(pid: u32, thread: bool) -> Result<c_int, c_int> {
    let flags = if thread { PIDFD_THREAD } else { 0 };
    // SAFETY: pidfd_open takes two integers.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_long, flags) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r as c_int)
    }
}

/// A duplicate of the process's fd `fd` (the same open file description); close-on-exec.
pub fn pidfd_getfd(pidfd: c_int, fd: c_int) -> Result<c_int, c_int> {
    // SAFETY: pidfd_getfd takes three integers.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r as c_int)
    }
}

/// A duplicate of fd `fd` of thread `tid`'s process (a pidfd for the thread, or before Linux 6.9
/// for its process).
pub fn program_fd(tid: u32, fd: c_int) -> Option<Fd> {
    let pidfd = pidfd_open(tid, true)
        .or_else(|_| {
            tgid_of(tid)
                .ok_or(libc::ESRCH)
                .and_then(|p| pidfd_open(p, false))
        })
        .ok()
        .map(Fd)?;
    pidfd_getfd(pidfd.0, fd).ok().map(Fd)
}

// ------------------------------------------------------------------ sockets

pub fn close(fd: c_int) {
    // SAFETY: closing an fd the supervisor owns.
    unsafe { libc::close(fd) };
}

/// An owned fd, closed when dropped.
pub struct Fd(pub c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        close(self.0);
    }
}

/// A `sockaddr` for `addr` on a socket of `domain` (`dnsfo_os::sockaddr::Raw`).
fn raw(addr: SocketAddr, domain: c_int) -> Option<(libc::sockaddr_storage, socklen_t)> {
    dnsfo_os::sockaddr::Raw::for_domain(addr, domain).map(|r| (r.storage, r.len))
}

/// Reads a socket address from bytes the program passed (`None`: not IPv4/IPv6, or short).
pub fn sockaddr_of(bytes: &[u8]) -> Option<SocketAddr> {
    // SAFETY: `bytes` is readable for its length, which is what `read` is told.
    unsafe { dnsfo_os::sockaddr::read(bytes.as_ptr().cast(), bytes.len() as socklen_t) }
}

/// `connect` to `addr` (never waits on a non-blocking socket).
pub fn connect(fd: c_int, domain: c_int, addr: SocketAddr) -> Result<(), c_int> {
    let (ss, len) = raw(addr, domain).ok_or(libc::EAFNOSUPPORT)?;
    // SAFETY: `ss` holds a valid sockaddr of `len` bytes.
    check(unsafe { libc::connect(fd, (&ss as *const libc::sockaddr_storage).cast(), len) })
        .map(drop)
}

/// Ends a connect under way (`connect` to `AF_UNSPEC`): the socket is unconnected again.
pub fn disconnect(fd: c_int) {
    // SAFETY: all-zero sockaddr with family AF_UNSPEC.
    let mut sa: libc::sockaddr = unsafe { zeroed() };
    sa.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
    // SAFETY: `sa` is a valid sockaddr of that size.
    unsafe { libc::connect(fd, &sa, size_of::<libc::sockaddr>() as socklen_t) };
}

/// A fresh non-blocking, close-on-exec socket.
pub fn socket(domain: c_int, kind: c_int) -> Result<Fd, c_int> {
    // SAFETY: plain system call.
    check(unsafe { libc::socket(domain, kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) })
        .map(Fd)
}

pub fn bind(fd: c_int, domain: c_int, addr: SocketAddr) -> Result<(), c_int> {
    let (ss, len) = raw(addr, domain).ok_or(libc::EAFNOSUPPORT)?;
    // SAFETY: `ss` holds a valid sockaddr of `len` bytes.
    check(unsafe { libc::bind(fd, (&ss as *const libc::sockaddr_storage).cast(), len) }).map(drop)
}

pub fn getsockopt_int(fd: c_int, level: c_int, name: c_int) -> Result<c_int, c_int> {
    let mut v: c_int = 0;
    let mut len = size_of::<c_int>() as socklen_t;
    // SAFETY: an int-sized buffer and its length.
    check(unsafe { libc::getsockopt(fd, level, name, (&mut v as *mut c_int).cast(), &mut len) })?;
    Ok(v)
}

/// A socket option as raw bytes (at most 64).
pub fn getsockopt_bytes(fd: c_int, level: c_int, name: c_int) -> Result<Vec<u8>, c_int> {
    let mut buf = [0u8; 64];
    let mut len = buf.len() as socklen_t;
    // SAFETY: a buffer and its length.
    check(unsafe { libc::getsockopt(fd, level, name, buf.as_mut_ptr().cast(), &mut len) })?;
    Ok(buf[..(len as usize).min(buf.len())].to_vec())
}

pub fn setsockopt_bytes(fd: c_int, level: c_int, name: c_int, v: &[u8]) -> Result<(), c_int> {
    // SAFETY: a buffer and its length.
    check(unsafe { libc::setsockopt(fd, level, name, v.as_ptr().cast(), v.len() as socklen_t) })
        .map(drop)
}

/// The pending error of a socket (reading it clears it).
pub fn so_error(fd: c_int) -> c_int {
    getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR).unwrap_or_else(|e| e)
}

fn name_of(
    fd: c_int,
    f: unsafe extern "C" fn(c_int, *mut libc::sockaddr, *mut socklen_t) -> c_int,
) -> Option<SocketAddr> {
    // SAFETY: sockaddr_storage is plain data; all-zero is valid.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as socklen_t;
    // SAFETY: a buffer of `len` bytes for the address.
    if unsafe {
        f(
            fd,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    } != 0
    {
        return None;
    }
    // SAFETY: the kernel wrote `len` bytes of `ss` (at most its size).
    unsafe {
        dnsfo_os::sockaddr::read(
            (&ss as *const libc::sockaddr_storage).cast(),
            len.min(size_of::<libc::sockaddr_storage>() as socklen_t),
        )
    }
}

/// The peer of a connected socket.
pub fn peer(fd: c_int) -> Option<SocketAddr> {
    name_of(fd, libc::getpeername)
}

/// The local address of a socket.
pub fn local(fd: c_int) -> Option<SocketAddr> {
    name_of(fd, libc::getsockname)
}

/// The TCP state (`tcpi_state`) and RTT of a TCP socket.
pub fn tcp_info(fd: c_int) -> Option<(u8, u32, u32)> {
    // SAFETY: tcp_info is plain data; all-zero is valid.
    let mut ti: libc::tcp_info = unsafe { zeroed() };
    let mut len = size_of::<libc::tcp_info>() as socklen_t;
    // SAFETY: a tcp_info-sized buffer and its length.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut ti as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (r == 0).then_some((ti.tcpi_state, ti.tcpi_rtt, ti.tcpi_rttvar))
}

pub fn get_flags(fd: c_int) -> Result<c_int, c_int> {
    // SAFETY: F_GETFL takes no argument.
    check(unsafe { libc::fcntl(fd, libc::F_GETFL) })
}

pub fn set_flags(fd: c_int, flags: c_int) -> Result<(), c_int> {
    // SAFETY: F_SETFL takes an int.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) }).map(drop)
}

/// Waits for events on `fds` at most `limit` (`None`: for ever); the count ready.
pub fn poll(fds: &mut [libc::pollfd], limit: Option<Duration>) -> c_int {
    let ms = limit.map_or(-1, |d| {
        let ms = d.as_millis().min(i32::MAX as u128) as c_int;
        // Round up: a wait of 0.4 ms must not spin as 0 ms.
        if Duration::from_millis(ms as u64) < d {
            ms + 1
        } else {
            ms
        }
    });
    // SAFETY: `fds` is a valid slice of pollfd.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) }
}

/// Receives one datagram and its source.
pub fn recv_from(fd: c_int, buf: &mut [u8]) -> Result<(usize, SocketAddr), c_int> {
    // SAFETY: sockaddr_storage is plain data; all-zero is valid.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as socklen_t;
    // SAFETY: a buffer and an address buffer, each with its length.
    let n = unsafe {
        libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            0,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if n < 0 {
        return Err(errno());
    }
    // SAFETY: the kernel wrote `len` bytes of `ss`.
    let from = unsafe {
        dnsfo_os::sockaddr::read(
            (&ss as *const libc::sockaddr_storage).cast(),
            len.min(size_of::<libc::sockaddr_storage>() as socklen_t),
        )
    }
    .ok_or(libc::EAFNOSUPPORT)?;
    Ok((n as usize, from))
}

/// Sends one datagram to `to` (on an unconnected socket of `domain`) or on a connected socket.
pub fn send_to(fd: c_int, domain: c_int, data: &[u8], to: Option<SocketAddr>) -> Result<(), c_int> {
    let n = match to {
        Some(to) => {
            let (ss, len) = raw(to, domain).ok_or(libc::EAFNOSUPPORT)?;
            // SAFETY: a buffer and a valid sockaddr, each with its length.
            unsafe {
                libc::sendto(
                    fd,
                    data.as_ptr().cast(),
                    data.len(),
                    libc::MSG_NOSIGNAL,
                    (&ss as *const libc::sockaddr_storage).cast(),
                    len,
                )
            }
        }
        // SAFETY: a buffer and its length.
        None => unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) },
    };
    if n < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

// ------------------------------------------------------------------ processes

/// A pair of connected `AF_UNIX` datagram sockets, close-on-exec.
pub fn socketpair() -> Result<(Fd, Fd), c_int> {
    let mut sv = [0 as c_int; 2];
    // SAFETY: a two-int buffer.
    check(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            sv.as_mut_ptr(),
        )
    })?;
    Ok((Fd(sv[0]), Fd(sv[1])))
}

/// Sends `fd` over the `AF_UNIX` socket `sock` (async-signal-safe: used in the child).
pub fn send_fd(sock: c_int, fd: c_int) -> Result<(), c_int> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cbuf = [0u64; 4];
    // SAFETY: msghdr is plain data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is a size computation.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<c_int>() as u32) } as usize;
    // SAFETY: the control buffer (32 bytes) holds one cmsg with one int, as set up above.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(size_of::<c_int>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<c_int>(), fd);
    }
    // SAFETY: `msg` points to live buffers.
    check(unsafe { libc::sendmsg(sock, &msg, 0) } as c_int).map(drop)
}

/// Receives an fd sent with [`send_fd`] (close-on-exec).
pub fn recv_fd(sock: c_int) -> Result<c_int, c_int> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cbuf = [0u64; 8];
    // SAFETY: msghdr is plain data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 8]>();
    // SAFETY: `msg` points to live buffers.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n <= 0 {
        return Err(if n == 0 { libc::EPIPE } else { errno() });
    }
    // SAFETY: the kernel filled the control buffer; the header is checked before its data.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_level != libc::SOL_SOCKET || (*c).cmsg_type != libc::SCM_RIGHTS
        {
            return Err(libc::EPROTO);
        }
        Ok(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<c_int>()))
    }
}

pub fn write_byte(fd: c_int) -> Result<(), c_int> {
    // SAFETY: one byte from a live buffer.
    check(unsafe { libc::write(fd, b"g".as_ptr().cast(), 1) } as c_int).map(drop)
}

pub fn read_byte(fd: c_int) -> Result<(), c_int> {
    let mut b = [0u8; 1];
    // SAFETY: one byte into a live buffer.
    match unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) } {
        1 => Ok(()),
        0 => Err(libc::EPIPE),
        _ => Err(errno()),
    }
}

/// Forks a process that runs `f` and exits with what it returns (it never returns into the
/// caller's code). Only while this process has one thread; `f` must be async-signal-safe when
/// it leads to `exec`.
pub fn fork_then(f: impl FnOnce() -> c_int) -> Result<libc::pid_t, c_int> {
    // SAFETY: called while single-threaded (start-up); the child leaves through _exit.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(errno()),
        0 => {
            let code = f();
            // SAFETY: leaving the child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        p => Ok(p),
    }
}

/// `execvp` (async-signal-safe: the argument vector is built before `fork`); returns the errno.
pub fn execvp(argv: &[CString], ptrs: &[*const libc::c_char]) -> c_int {
    debug_assert_eq!(argv.len() + 1, ptrs.len());
    // SAFETY: `ptrs` is a null-terminated array of pointers into `argv`, alive for the call.
    unsafe { libc::execvp(ptrs[0], ptrs.as_ptr()) };
    errno()
}

/// Waits for the child `pid` to end; its raw wait status.
pub fn wait_for(pid: libc::pid_t, nohang: bool) -> Option<c_int> {
    let mut st: c_int = 0;
    loop {
        // SAFETY: a status buffer.
        let r = unsafe { libc::waitpid(pid, &mut st, if nohang { libc::WNOHANG } else { 0 }) };
        if r == pid {
            return Some(st);
        }
        if r == 0 || (r < 0 && errno() != libc::EINTR) {
            return None;
        }
    }
}

pub fn getpid() -> libc::pid_t {
    // SAFETY: no arguments.
    unsafe { libc::getpid() }
}

/// The signals the supervisor passes on to the program instead of acting on them.
pub const FORWARDED: [c_int; 6] = [
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

fn sigset(signals: &[c_int]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it.
    unsafe {
        let mut set: libc::sigset_t = zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        set
    }
}

/// Blocks `signals` in this thread (and threads it starts later); the previous mask.
pub fn block_signals(signals: &[c_int]) -> libc::sigset_t {
    let set = sigset(signals);
    // SAFETY: sigset_t is plain data.
    let mut old: libc::sigset_t = unsafe { zeroed() };
    // SAFETY: valid sets.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
    old
}

/// Puts back a signal mask (in the child before `exec`: async-signal-safe).
pub fn set_signal_mask(mask: &libc::sigset_t) {
    // SAFETY: a valid set.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, mask, std::ptr::null_mut()) };
}

/// A signalfd for `signals` (blocked by the caller), non-blocking, close-on-exec.
pub fn signalfd(signals: &[c_int]) -> Result<Fd, c_int> {
    let set = sigset(signals);
    // SAFETY: a valid set.
    check(unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) }).map(Fd)
}

/// The next signal read from a signalfd.
pub fn read_signal(fd: c_int) -> Option<c_int> {
    // SAFETY: signalfd_siginfo is plain data.
    let mut si: libc::signalfd_siginfo = unsafe { zeroed() };
    // SAFETY: a buffer of that structure's size.
    let n = unsafe {
        libc::read(
            fd,
            (&mut si as *mut libc::signalfd_siginfo).cast(),
            size_of::<libc::signalfd_siginfo>(),
        )
    };
    (n as usize == size_of::<libc::signalfd_siginfo>()).then_some(si.ssi_signo as c_int)
}

pub fn kill(pid: libc::pid_t, sig: c_int) {
    // SAFETY: plain system call.
    unsafe { libc::kill(pid, sig) };
}

/// Ignores `signals` in this process.
pub fn ignore_signals(signals: &[c_int]) {
    for s in signals {
        // SAFETY: SIG_IGN for a catchable signal.
        unsafe { libc::signal(*s, libc::SIG_IGN) };
    }
}

/// Sets this process's name as `ps` shows it (`comm`).
pub fn set_name(name: &std::ffi::CStr) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
}

/// Closes every fd from `from` up, except `keep`.
pub fn close_from(from: c_int, keep: &[c_int]) {
    let max = 4096;
    for fd in from..max {
        if !keep.contains(&fd) {
            // SAFETY: closing fds this process will not use again.
            unsafe { libc::close(fd) };
        }
    }
}

pub fn dup2(old: c_int, new: c_int) {
    // SAFETY: plain system call.
    unsafe { libc::dup2(old, new) };
}

pub fn open_devnull() -> c_int {
    // SAFETY: a NUL-terminated path.
    unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) }
}

/// `value` in memory shared with the processes forked after this call (never unmapped). `T`
/// must be made of atomics (or other data that is sound to share between processes).
pub fn shared<T: Sync>(value: T) -> Option<&'static T> {
    // SAFETY: anonymous shared mapping, no fd.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size_of::<T>(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    let p = p.cast::<T>();
    // SAFETY: a fresh page-aligned mapping of at least size_of::<T>() bytes, never unmapped, so
    // the reference lives for the program; written once before anyone reads it.
    unsafe {
        std::ptr::write(p, value);
        Some(&*p)
    }
}

/// The thread-group (process) id of thread `tid`, from `/proc`.
pub fn tgid_of(tid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}
