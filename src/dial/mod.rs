//! The dialer: all socket work of a failover. Runs the planned attempts (RFC 8305: a new attempt
//! every attempt delay, at once after a failure, earlier ones kept running), picks the first to
//! connect, and leaves the winner on the program's fd number with the program's options, bound
//! address and flags.
//!
//! Two drivers share the pieces here: [`blocking`] races in the program's own thread (the
//! program is waiting in `connect` anyway); [`background`] races non-blocking connects on one
//! reactor thread while the program's fd holds a placeholder, so the event loop never stalls.
//!
//! Owns: attempt sockets (created, raced, closed) and the program's fd while a connect is being
//! raced. Must never: connect to an address it was not given, or leave the program's fd in a
//! state the program did not ask for (its flags are restored on every path).

pub mod background;
pub mod blocking;

use crate::fdtable::SockOpt;
use crate::sys::{self, RawAddr};
use libc::c_int;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// With a fixed source port only one attempt can exist at a time; each gets at least this long
/// before it is abandoned for the next address.
pub const SEQUENTIAL_SLOT_MIN: Duration = Duration::from_secs(1);

/// What a replacement socket must look like: the program's socket as the program set it up.
#[derive(Clone, Debug)]
pub struct Template {
    pub domain: c_int,
    pub protocol: c_int,
    pub opts: Vec<SockOpt>,
    /// The address the program asked to bind (port 0 = any).
    pub bind: Option<SocketAddr>,
    /// `IPV6_V6ONLY` on the program's `AF_INET6` socket: it cannot reach IPv4 then.
    pub v6only: bool,
    /// The program's file status flags (`F_GETFL`) and whether the fd is close-on-exec.
    pub status_flags: c_int,
    pub cloexec: bool,
}

impl Template {
    /// The socket domain that reaches `ip` staying closest to the program's socket: IPv4 peers
    /// are reached from an `AF_INET6` socket through `::ffff:a.b.c.d` unless it is v6-only.
    pub fn domain_for(&self, ip: IpAddr) -> c_int {
        match ip {
            IpAddr::V4(_) if self.domain == libc::AF_INET6 && !self.v6only => libc::AF_INET6,
            IpAddr::V4(_) => libc::AF_INET,
            IpAddr::V6(_) => libc::AF_INET6,
        }
    }

    /// Where a socket reaching `peer` must be bound; `Err` when the program's bind cannot be
    /// honoured for that peer (an IPv4 source cannot reach an IPv6 peer, and the reverse), so
    /// that address is not tried.
    fn bind_for(&self, peer: IpAddr) -> Result<Option<RawAddr>, ()> {
        let Some(b) = self.bind else { return Ok(None) };
        let ip = sys::canonical_ip(b.ip());
        if ip.is_unspecified() && b.port() == 0 {
            return Ok(None);
        }
        let domain = self.domain_for(peer);
        let local = match (ip, peer) {
            (IpAddr::V4(_), IpAddr::V6(_)) | (IpAddr::V6(_), IpAddr::V4(_))
                if !ip.is_unspecified() =>
            {
                return Err(())
            }
            (IpAddr::V4(_), IpAddr::V6(_)) => SocketAddr::new(IpAddr::from([0u16; 8]), b.port()),
            (IpAddr::V6(_), IpAddr::V4(_)) => SocketAddr::new(IpAddr::from([0u8; 4]), b.port()),
            _ => SocketAddr::new(ip, b.port()),
        };
        RawAddr::for_domain(local, domain).map(Some).ok_or(())
    }

    pub fn can_reach(&self, ip: IpAddr) -> bool {
        self.bind_for(ip).is_ok()
    }

    /// A fresh, unconnected socket of the program's own domain with its options: what the fd
    /// holds after a background connect failed everywhere.
    pub(crate) fn open_unconnected(&self) -> Result<c_int, c_int> {
        let fd = sys::new_socket(
            self.domain,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            self.protocol,
        )?;
        for o in &self.opts {
            let _ = sys::setsockopt_raw(fd, o.level, o.name, &o.value);
        }
        Ok(fd)
    }

    /// A fresh non-blocking socket set up like the program's.
    pub(crate) fn open(&self, ip: IpAddr) -> Result<c_int, c_int> {
        let domain = self.domain_for(ip);
        let bind = self.bind_for(ip).map_err(|_| libc::EAFNOSUPPORT)?;
        let fd = sys::new_socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            self.protocol,
        )?;
        for o in &self.opts {
            if let Err(e) = sys::setsockopt_raw(fd, o.level, o.name, &o.value) {
                // Options of the other family (IPPROTO_IPV6 on AF_INET) cannot apply; harmless.
                log::trace!(
                    "replaying option {}/{} on fd {fd}: {}",
                    o.level,
                    o.name,
                    sys::errno_name(e)
                );
            }
        }
        if let Some(b) = bind {
            if let Err(e) = sys::bind_to(fd, &b) {
                sys::close_fd(fd);
                return Err(e);
            }
        }
        Ok(fd)
    }
}

/// Errors about the socket or the call rather than the address: trying another address cannot
/// help, and the program must see them as libc gave them.
pub fn is_socket_error(e: c_int) -> bool {
    matches!(
        e,
        libc::EBADF
            | libc::ENOTSOCK
            | libc::EISCONN
            | libc::EFAULT
            | libc::EINVAL
            | libc::EPROTOTYPE
            | libc::EALREADY
    )
}

/// Connects the program's own socket (already non-blocking). A non-blocking socket whose earlier
/// attempt failed answers the next connect with `ECONNABORTED` once (and resets): try again.
pub(crate) fn connect_program_fd(fd: c_int, addr: SocketAddr, domain: c_int) -> Result<(), c_int> {
    let raw = RawAddr::for_domain(addr, domain).ok_or(libc::EAFNOSUPPORT)?;
    match sys::connect_to(fd, &raw) {
        Err(libc::ECONNABORTED) => sys::connect_to(fd, &raw),
        r => r,
    }
}

/// An attempt's "errno" when it failed but its error was deliberately left unread on the
/// socket (for the program to read itself).
pub const ERROR_LEFT_UNREAD: c_int = 0;

/// One attempt's result, for the caller's health records and log.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub addr: SocketAddr,
    /// `Ok` = connected; `Err(errno)` = failed; abandoned attempts carry `ETIMEDOUT`.
    pub result: Result<(), c_int>,
    pub elapsed: Duration,
    /// Abandoned while still pending (another address won, or time ran out).
    pub abandoned: bool,
}

impl Outcome {
    /// An attempt that settled: connected (`Ok`) or failed with this errno.
    pub fn settled(addr: SocketAddr, result: Result<(), c_int>, elapsed: Duration) -> Outcome {
        Outcome {
            addr,
            result,
            elapsed,
            abandoned: false,
        }
    }

    /// An attempt given up while still pending (another address won, or time ran out).
    pub fn abandoned(addr: SocketAddr, elapsed: Duration) -> Outcome {
        Outcome {
            addr,
            result: Err(libc::ETIMEDOUT),
            elapsed,
            abandoned: true,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The program's fd is connected to this address.
    Connected(SocketAddr),
    /// Every address failed (the caller chooses the errno the program would have seen).
    AllFailed,
    /// Stopped early: the program must see this errno (`EINTR`, `EINPROGRESS` for
    /// `SO_SNDTIMEO`, `ETIMEDOUT` for the dnsfo cap, or an error about the socket itself).
    Stopped(c_int),
}

pub struct Report {
    pub ended: Ended,
    pub outcomes: Vec<Outcome>,
}

/// Limits of one dial.
pub struct Budget {
    pub delay: Duration,
    /// When to give up, and the errno the program then sees.
    pub deadline: Option<(Instant, c_int)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpl(domain: c_int, v6only: bool, bind: Option<&str>) -> Template {
        Template {
            domain,
            protocol: 0,
            opts: vec![],
            bind: bind.map(|b| b.parse().unwrap()),
            v6only,
            status_flags: 0,
            cloexec: false,
        }
    }

    #[test]
    fn domain_choice() {
        let v4: IpAddr = "127.0.0.2".parse().unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(
            tmpl(libc::AF_INET6, false, None).domain_for(v4),
            libc::AF_INET6
        );
        assert_eq!(
            tmpl(libc::AF_INET6, true, None).domain_for(v4),
            libc::AF_INET
        );
        assert_eq!(
            tmpl(libc::AF_INET, false, None).domain_for(v6),
            libc::AF_INET6
        );
        assert_eq!(
            tmpl(libc::AF_INET, false, None).domain_for(v4),
            libc::AF_INET
        );
    }

    #[test]
    fn bind_limits_reach() {
        let v4: IpAddr = "127.0.0.2".parse().unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        let t = tmpl(libc::AF_INET, false, Some("127.0.0.1:0"));
        assert!(t.can_reach(v4));
        assert!(
            !t.can_reach(v6),
            "an IPv4 source address cannot reach an IPv6 peer"
        );
        let t = tmpl(libc::AF_INET6, false, Some("[::]:0"));
        assert!(t.can_reach(v4) && t.can_reach(v6));
        let t = tmpl(libc::AF_INET6, true, Some("[::1]:0"));
        assert!(!t.can_reach(v4) && t.can_reach(v6));
    }
}
