//! The dialer: all socket work of a failover, on the program's own socket (DESIGN.md, "One
//! socket"). [`steer`] is the one state machine: the program's socket makes every attempt that
//! can win, shadow probes find out which other address is live, and the program's socket is
//! moved there. Two drivers run it: [`blocking`] in the program's thread (the program waits in
//! `connect` anyway), and `crate::reactor` on one background thread for non-blocking connects,
//! so that an event loop never stalls; [`watch`] is that thread's epoll registrations.
//!
//! Owns: probe sockets (created, raced, closed) and dnsfo's duplicate of a steered socket. Must
//! never: connect to an address it was not given, put any other file description on the
//! program's fd, or leave the program's socket in a mode the program did not ask for (its flags
//! are restored on every path).

pub mod blocking;
pub mod steer;
pub mod watch;

use crate::sys::{self, RawAddr};
use libc::c_int;
use std::net::{IpAddr, SocketAddr};

/// A socket option the program set (`setsockopt`), to set again on a replacement socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SockOpt {
    pub level: i32,
    pub name: i32,
    pub value: Vec<u8>,
}

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

    /// Where a probe reaching `peer` must be bound: the program's bound address with any port
    /// (a probe only finds out whether the peer answers; the program's socket keeps its own
    /// port). `Err` when the program's bind cannot be honoured for that peer (an IPv4 source
    /// cannot reach an IPv6 peer, and the reverse), so that address is not tried.
    fn bind_for(&self, peer: IpAddr) -> Result<Option<RawAddr>, ()> {
        let Some(b) = self.bind else { return Ok(None) };
        let ip = sys::canonical_ip(b.ip());
        if ip.is_unspecified() {
            return Ok(None);
        }
        let domain = self.domain_for(peer);
        let local = match (ip, peer) {
            (IpAddr::V4(_), IpAddr::V6(_)) | (IpAddr::V6(_), IpAddr::V4(_)) => return Err(()),
            _ => SocketAddr::new(ip, 0),
        };
        RawAddr::for_domain(local, domain).map(Some).ok_or(())
    }

    /// The program's socket as the planner sees it (which peers it can reach).
    pub fn reach(&self) -> crate::plan::Reach {
        crate::plan::Reach {
            v6: self.domain == libc::AF_INET6,
            v6only: self.v6only,
            bind: self.bind.map(|b| b.ip()),
        }
    }

    /// Can the program's own socket reach `ip`, bound as it is (`plan::Reach::can_reach`)?
    pub fn can_reach(&self, ip: IpAddr) -> bool {
        self.reach().can_reach(ip)
    }

    /// A fresh non-blocking probe set up like the program's socket (options, source address),
    /// on a number out of the program's way.
    pub(crate) fn open_probe(&self, ip: IpAddr) -> Result<c_int, c_int> {
        let domain = self.domain_for(ip);
        let bind = self.bind_for(ip).map_err(|_| libc::EAFNOSUPPORT)?;
        let low = sys::new_socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            self.protocol,
        )?;
        let fd = match sys::dup_above(low, steer::OWN_FD_MIN) {
            Ok(high) => {
                sys::close_fd(low);
                high
            }
            Err(_) => low,
        };
        for o in &self.opts {
            if o.level == libc::SOL_SOCKET && (o.name == libc::SO_SNDTIMEO || o.name == 67) {
                // A probe never blocks; its send timeout means nothing.
                continue;
            }
            if let Err(e) = sys::setsockopt_raw(fd, o.level, o.name, &o.value) {
                log::trace!(
                    "replaying option {}/{} on probe {fd}: {}",
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

pub use dnsfo_core::outcome::{is_socket_error, Outcome, ERROR_LEFT_UNREAD};

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

    /// A program that binds its socket to a fixed source port keeps that port on its own socket
    /// (which is the one that connects in the end); a probe of another address is bound to the
    /// same source address with any port, so it never fails with `EADDRINUSE` against the
    /// program's socket, and a stuck attempt never holds the program's port hostage.
    #[test]
    fn a_probe_never_takes_the_programs_fixed_source_port() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to hold");
        let port = held.local_addr().expect("bound").port();
        for (domain, bind) in [
            (libc::AF_INET, format!("127.0.0.1:{port}")),
            (libc::AF_INET6, format!("[::ffff:127.0.0.1]:{port}")),
        ] {
            let t = tmpl(domain, false, Some(&bind));
            let fd = t
                .open_probe("127.0.0.2".parse().expect("ip"))
                .unwrap_or_else(|e| panic!("{bind}: probe not opened: {}", sys::errno_name(e)));
            let local = sys::local_addr(fd);
            sys::close_fd(fd);
            let local = local.expect("a bound probe");
            assert_eq!(
                sys::canonical_ip(local.ip()),
                "127.0.0.1".parse::<IpAddr>().expect("ip"),
                "{bind}: the program's source address"
            );
            assert_ne!(local.port(), port, "{bind}: not the program's port");
            assert_ne!(local.port(), 0, "{bind}: bound to some port");
        }
    }
}
