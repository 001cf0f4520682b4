//! The dialer: all socket work of a failover. Runs the planned attempts (RFC 8305: a new attempt
//! every attempt delay, at once after a failure, earlier ones kept running), picks the first to
//! connect, and leaves the winner on the program's fd number with the program's options, bound
//! address and flags.
//!
//! Owns: attempt sockets (created, raced, closed: none outlives `dial_blocking`), the
//! program's fd while a blocking connect runs. Must never: touch shared state (it reports what
//! happened; the caller records it), connect to an address it was not given, or leave the
//! program's fd in a state the program did not ask for (its flags are restored on every path).

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

    /// A fresh non-blocking socket set up like the program's.
    fn open(&self, ip: IpAddr) -> Result<c_int, c_int> {
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

struct Attempt {
    fd: c_int,
    own: bool,
    addr: SocketAddr,
    started: Instant,
}

/// Errors about the socket or the call rather than the address: trying another address cannot
/// help, and the program must see them as libc gave them.
fn is_socket_error(e: c_int) -> bool {
    matches!(
        e,
        libc::EBADF
            | libc::ENOTSOCK
            | libc::EISCONN
            | libc::EFAULT
            | libc::EINVAL
            | libc::EPROTOTYPE
    )
}

/// Restores the program's file status flags however the dial ends.
struct FlagsRestore {
    fd: c_int,
    flags: c_int,
    changed: bool,
}

impl Drop for FlagsRestore {
    fn drop(&mut self) {
        if self.changed {
            let _ = sys::fcntl_set(self.fd, libc::F_SETFL, self.flags);
        }
    }
}

/// A blocking connect on `fd` across `candidates` (already ordered and filtered by
/// [`Template::can_reach`]). The program's thread waits here, as it would in libc's connect.
pub fn dial_blocking(
    fd: c_int,
    tmpl: &Template,
    candidates: &[SocketAddr],
    budget: &Budget,
) -> Report {
    let mut outcomes = Vec::new();
    let mut restore = FlagsRestore {
        fd,
        flags: tmpl.status_flags,
        changed: false,
    };
    let sequential = tmpl.bind.is_some_and(|b| b.port() != 0);
    let mut queue: std::collections::VecDeque<SocketAddr> = candidates.iter().copied().collect();
    let mut pending: Vec<Attempt> = Vec::new();
    let mut program_fd_free = true;
    let mut next_start = Instant::now();

    let ended = 'race: loop {
        let now = Instant::now();
        if let Some((deadline, errno)) = budget.deadline {
            if now >= deadline {
                break 'race Ended::Stopped(errno);
            }
        }
        // Start every attempt that is due: the first at once, then one per delay, and the next
        // at once whenever nothing is pending.
        while let Some(&addr) = queue.front() {
            let due = pending.is_empty() || (!sequential && now >= next_start);
            if !due {
                break;
            }
            queue.pop_front();
            let on_program_fd = program_fd_free && tmpl.domain_for(addr.ip()) == tmpl.domain;
            let start = Instant::now();
            let (afd, res) = if on_program_fd {
                if !restore.changed {
                    restore.changed = true;
                    let _ = sys::fcntl_set(fd, libc::F_SETFL, tmpl.status_flags | libc::O_NONBLOCK);
                }
                program_fd_free = false;
                (fd, connect_program_fd(fd, addr, tmpl.domain))
            } else {
                match tmpl.open(addr.ip()) {
                    Ok(s) => {
                        let raw = RawAddr::for_domain(addr, tmpl.domain_for(addr.ip()));
                        (
                            s,
                            raw.map_or(Err(libc::EAFNOSUPPORT), |r| sys::connect_to(s, &r)),
                        )
                    }
                    Err(e) => {
                        outcomes.push(Outcome {
                            addr,
                            result: Err(e),
                            elapsed: start.elapsed(),
                            abandoned: false,
                        });
                        continue;
                    }
                }
            };
            let own = afd != fd;
            match res {
                Ok(()) => {
                    outcomes.push(Outcome {
                        addr,
                        result: Ok(()),
                        elapsed: start.elapsed(),
                        abandoned: false,
                    });
                    pending.push(Attempt {
                        fd: afd,
                        own,
                        addr,
                        started: start,
                    });
                    let winner = pending.len() - 1;
                    break 'race finish(
                        fd,
                        tmpl,
                        &mut pending,
                        winner,
                        &mut outcomes,
                        &mut restore,
                    );
                }
                Err(libc::EINPROGRESS) | Err(libc::EALREADY) => {
                    pending.push(Attempt {
                        fd: afd,
                        own,
                        addr,
                        started: start,
                    });
                    next_start = start + budget.delay;
                }
                Err(e) if !own && is_socket_error(e) => break 'race Ended::Stopped(e),
                Err(e) => {
                    outcomes.push(Outcome {
                        addr,
                        result: Err(e),
                        elapsed: start.elapsed(),
                        abandoned: false,
                    });
                    if own {
                        sys::close_fd(afd);
                    } else {
                        program_fd_free = true;
                    }
                }
            }
        }
        if pending.is_empty() {
            break 'race Ended::AllFailed;
        }

        // Wait for the next event: an attempt finishing, the next start, the deadline.
        let now = Instant::now();
        let mut wake: Option<Instant> = budget.deadline.map(|d| d.0);
        if !queue.is_empty() {
            let t = if sequential {
                pending[0].started + budget.delay.max(SEQUENTIAL_SLOT_MIN)
            } else {
                next_start
            };
            wake = Some(wake.map_or(t, |w| w.min(t)));
        }
        let timeout_ms: c_int = match wake {
            None => -1,
            Some(w) => {
                let d = w.saturating_duration_since(now);
                // Round up so that a wake-up never comes early and spins.
                d.as_millis()
                    .saturating_add(u128::from(d.subsec_nanos() % 1_000_000 != 0))
                    .min(c_int::MAX as u128) as c_int
            }
        };
        let mut pfds: Vec<libc::pollfd> = pending
            .iter()
            .map(|a| libc::pollfd {
                fd: a.fd,
                events: libc::POLLOUT,
                revents: 0,
            })
            .collect();
        match sys::poll_out(&mut pfds, timeout_ms) {
            Err(libc::EINTR) => {
                if sys::any_handler_without_restart() {
                    break 'race Ended::Stopped(libc::EINTR);
                }
                continue;
            }
            Err(e) => break 'race Ended::Stopped(e),
            Ok(_) => {}
        }
        let mut i = 0;
        let mut winner = None;
        for p in &pfds {
            if p.revents == 0 {
                i += 1;
                continue;
            }
            let a = &pending[i];
            let err =
                sys::getsockopt_int(a.fd, libc::SOL_SOCKET, libc::SO_ERROR).unwrap_or(libc::EIO);
            if err == 0 {
                outcomes.push(Outcome {
                    addr: a.addr,
                    result: Ok(()),
                    elapsed: a.started.elapsed(),
                    abandoned: false,
                });
                winner = Some(i);
                break;
            }
            outcomes.push(Outcome {
                addr: a.addr,
                result: Err(err),
                elapsed: a.started.elapsed(),
                abandoned: false,
            });
            let a = pending.remove(i);
            if a.own {
                sys::close_fd(a.fd);
            } else {
                program_fd_free = true;
            }
            next_start = Instant::now();
        }
        if let Some(w) = winner {
            break 'race finish(fd, tmpl, &mut pending, w, &mut outcomes, &mut restore);
        }
        // Sequential mode: an attempt that used up its slot makes way for the next address.
        if sequential && !queue.is_empty() {
            if let Some(a) = pending.first() {
                if a.started.elapsed() >= budget.delay.max(SEQUENTIAL_SLOT_MIN) {
                    let a = pending.remove(0);
                    abandon(&a, &mut outcomes);
                    if a.own {
                        sys::close_fd(a.fd);
                    } else {
                        let _ = sys::disconnect(fd);
                        program_fd_free = true;
                    }
                }
            }
        }
    };

    // Whatever is still pending lost: close dnsfo's sockets. The program's own attempt is left
    // running, exactly as libc leaves it after EINTR or SO_SNDTIMEO.
    for a in pending.drain(..) {
        abandon(&a, &mut outcomes);
        if a.own {
            sys::close_fd(a.fd);
        }
    }
    drop(restore);
    Report { ended, outcomes }
}

fn abandon(a: &Attempt, outcomes: &mut Vec<Outcome>) {
    outcomes.push(Outcome {
        addr: a.addr,
        result: Err(libc::ETIMEDOUT),
        elapsed: a.started.elapsed(),
        abandoned: true,
    });
}

/// Connects the program's own socket (already non-blocking). A non-blocking socket whose earlier
/// attempt failed answers the next connect with `ECONNABORTED` once (and resets): try again.
fn connect_program_fd(fd: c_int, addr: SocketAddr, domain: c_int) -> Result<(), c_int> {
    let raw = RawAddr::for_domain(addr, domain).ok_or(libc::EAFNOSUPPORT)?;
    match sys::connect_to(fd, &raw) {
        Err(libc::ECONNABORTED) => sys::connect_to(fd, &raw),
        r => r,
    }
}

/// Puts the winner on the program's fd and closes every other attempt.
fn finish(
    fd: c_int,
    tmpl: &Template,
    pending: &mut Vec<Attempt>,
    winner: usize,
    outcomes: &mut Vec<Outcome>,
    restore: &mut FlagsRestore,
) -> Ended {
    let w = pending.remove(winner);
    for a in pending.drain(..) {
        if a.own {
            abandon(&a, outcomes);
            sys::close_fd(a.fd);
        } else {
            // The program's socket is about to be replaced; its attempt ends with it.
            abandon(&a, outcomes);
        }
    }
    if !w.own {
        return Ended::Connected(w.addr);
    }
    let flags = if tmpl.cloexec { libc::O_CLOEXEC } else { 0 };
    let placed = sys::dup3_fd(w.fd, fd, flags);
    sys::close_fd(w.fd);
    match placed {
        Ok(()) => {
            // The new description starts non-blocking (dnsfo's socket); give it the program's flags.
            restore.changed = true;
            Ended::Connected(w.addr)
        }
        Err(e) => {
            log::warn!(
                "could not place the connected socket on fd {fd}: {}",
                sys::errno_name(e)
            );
            Ended::AllFailed
        }
    }
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
