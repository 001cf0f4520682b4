//! The DNS relay: how the supervisor learns the names a supervised program resolves itself
//! (Go's resolver, a static glibc). A UDP socket the program connects to a nameserver (port 53)
//! is connected to this relay instead; every query is sent on unchanged to that nameserver, and
//! every answer back unchanged to the program, read on the way for its addresses.
//!
//! Owns: the relay's sockets and the (program socket → nameserver) routes. Must never: change,
//! drop or make up a message, or send a query anywhere but the nameserver the program chose.
//! What the program can tell: its DNS socket's peer (`getpeername`) is the relay.

use crate::dnsmsg;
use crate::state::State;
use crate::sys::{self, Fd};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A route unused this long is forgotten (a resolver socket lives for one lookup).
const ROUTE_IDLE: Duration = Duration::from_secs(30);
/// Routes kept at most (a program opening more sockets just loses the oldest).
const MAX_ROUTES: usize = 1024;

struct Route {
    ns: SocketAddr,
    relay: Option<Fd>,
    used: Instant,
}

pub struct Forwarder {
    v4: Fd,
    v4_addr: SocketAddr,
    v6: Option<(Fd, SocketAddr)>,
    /// Program socket's local address (IPv4-mapped addresses unmapped) → its route.
    routes: Mutex<HashMap<SocketAddr, Route>>,
}

fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(dnsfo_core::outcome::canonical_ip(a.ip()), a.port())
}

fn bound(domain: libc::c_int, ip: IpAddr) -> Option<(Fd, SocketAddr)> {
    let fd = sys::socket(domain, libc::SOCK_DGRAM).ok()?;
    sys::bind(fd.0, domain, SocketAddr::new(ip, 0)).ok()?;
    let addr = sys::local(fd.0)?;
    Some((fd, addr))
}

impl Forwarder {
    /// The relay's sockets on 127.0.0.1 and ::1 (random ports); `None` when not even IPv4
    /// loopback is there.
    pub fn new() -> Option<Forwarder> {
        let (v4, v4_addr) = bound(libc::AF_INET, IpAddr::V4(Ipv4Addr::LOCALHOST))?;
        let v6 = bound(libc::AF_INET6, IpAddr::V6(Ipv6Addr::LOCALHOST));
        Some(Forwarder {
            v4,
            v4_addr,
            v6,
            routes: Mutex::new(HashMap::new()),
        })
    }

    /// Points the program's UDP socket `fd` (of `domain`), which it asked to connect to the
    /// nameserver `ns`, at the relay. `Err`: leave the program's connect to the kernel.
    pub fn take(
        &self,
        fd: libc::c_int,
        domain: libc::c_int,
        ns: SocketAddr,
    ) -> Result<(), libc::c_int> {
        let relay = match canonical(ns).ip() {
            IpAddr::V4(_) => self.v4_addr,
            IpAddr::V6(_) => self
                .v6
                .as_ref()
                .map(|(_, a)| *a)
                .ok_or(libc::EAFNOSUPPORT)?,
        };
        if domain == libc::AF_INET && relay.is_ipv6() {
            return Err(libc::EAFNOSUPPORT);
        }
        sys::connect(fd, domain, relay)?;
        let local = sys::local(fd).ok_or(libc::ENOTCONN)?;
        let mut routes = self.routes.lock();
        if routes.len() >= MAX_ROUTES {
            let now = Instant::now();
            routes.retain(|_, r| now.duration_since(r.used) < ROUTE_IDLE);
            if routes.len() >= MAX_ROUTES {
                routes.clear();
            }
        }
        routes.insert(
            canonical(local),
            Route {
                ns,
                relay: None,
                used: Instant::now(),
            },
        );
        log::debug!("DNS socket {local} → {ns} relayed through {relay}");
        Ok(())
    }

    /// The relay's loop (its own thread, for the supervisor's life).
    pub fn serve(self: Arc<Self>, state: Arc<State>) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let mut fds = vec![libc::pollfd {
                fd: self.v4.0,
                events: libc::POLLIN,
                revents: 0,
            }];
            if let Some((fd, _)) = &self.v6 {
                fds.push(libc::pollfd {
                    fd: fd.0,
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            let relays: Vec<(SocketAddr, libc::c_int)> = {
                let mut routes = self.routes.lock();
                let now = Instant::now();
                routes.retain(|_, r| now.duration_since(r.used) < ROUTE_IDLE);
                routes
                    .iter()
                    .filter_map(|(k, r)| r.relay.as_ref().map(|f| (*k, f.0)))
                    .collect()
            };
            let first_relay = fds.len();
            for (_, fd) in &relays {
                fds.push(libc::pollfd {
                    fd: *fd,
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            if sys::poll(&mut fds, Some(Duration::from_millis(500))) <= 0 {
                continue;
            }
            // Queries from programs, on to their nameservers.
            for listener in &fds[..first_relay] {
                if listener.revents & libc::POLLIN == 0 {
                    continue;
                }
                while let Ok((n, from)) = sys::recv_from(listener.fd, &mut buf) {
                    self.query(canonical(from), &buf[..n]);
                }
            }
            // Answers, back to the programs (read on the way).
            for (j, (program, fd)) in relays.iter().enumerate() {
                if fds[first_relay + j].revents & libc::POLLIN == 0 {
                    continue;
                }
                while let Ok((n, _)) = sys::recv_from(*fd, &mut buf) {
                    let msg = &buf[..n];
                    if let Some(a) = dnsmsg::parse_answer(msg) {
                        state.learn_answer(&a);
                    }
                    let (out, domain) = match program.ip() {
                        IpAddr::V4(_) => (self.v4.0, libc::AF_INET),
                        IpAddr::V6(_) => match &self.v6 {
                            Some((fd, _)) => (fd.0, libc::AF_INET6),
                            None => continue,
                        },
                    };
                    let _ = sys::send_to(out, domain, msg, Some(*program));
                }
            }
        }
    }

    /// A query from the program socket at `from`: to its nameserver, on the route's own socket.
    fn query(&self, from: SocketAddr, msg: &[u8]) {
        let mut routes = self.routes.lock();
        let Some(r) = routes.get_mut(&from) else {
            return; // not a socket the relay took: nothing to answer with
        };
        r.used = Instant::now();
        if r.relay.is_none() {
            let domain = if canonical(r.ns).is_ipv4() {
                libc::AF_INET
            } else {
                libc::AF_INET6
            };
            let Ok(fd) = sys::socket(domain, libc::SOCK_DGRAM) else {
                return;
            };
            if sys::connect(fd.0, domain, canonical(r.ns)).is_err() {
                return;
            }
            r.relay = Some(fd);
        }
        if let Some(fd) = &r.relay {
            let _ = sys::send_to(fd.0, 0, msg, None);
        }
    }
}
