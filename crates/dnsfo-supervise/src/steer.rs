//! The race for one held connect, on the supervisor's duplicate of the program's socket (the
//! same open file description: whatever it connects, the program's fd is connected).
//!
//! As in the library (DESIGN.md, "One socket"): the program's socket makes every attempt it can
//! (first its own address, or the known winner when that one is known dead), attempts start one
//! attempt delay apart or at once after a failure (`dnsfo_core::schedule`), probes (the
//! supervisor's own sockets, bound like the program's) find out which other address answers,
//! and the program's socket is moved there (its attempt ended with `connect(AF_UNSPEC)`, then a
//! connect to the proven address). The program's own address, still going when everything else
//! failed, is left to the kernel as without dnsfo.
//!
//! Owns: probes, the program socket's attempts while the connect is held. Must never: connect
//! anywhere but the candidates given, or leave the program's socket in another mode than the
//! program's (the caller restores its flags on every path).

use crate::sys::{self, Fd};
use dnsfo_core::outcome::{errno_to_report, is_dead_address_error, Outcome};
use dnsfo_core::plan::{Reach, Rtt};
use dnsfo_core::schedule::{Deadlines, Expired, Schedule};
use libc::c_int;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// `SO_MARK` and `SO_BINDTODEVICE`: what routes a probe the way the program's socket goes.
const ROUTING_OPTS: [(c_int, c_int); 2] = [
    (libc::SOL_SOCKET, libc::SO_MARK),
    (libc::SOL_SOCKET, libc::SO_BINDTODEVICE),
];

/// The program's socket, as the supervisor holds it.
pub struct Program {
    /// The supervisor's duplicate (made non-blocking by the caller for the race).
    pub fd: c_int,
    pub domain: c_int,
    pub reach: Reach,
    /// Where the program bound it, if it did (a probe binds the same address, any port).
    pub bind: Option<SocketAddr>,
}

/// One race.
pub struct Race<'a> {
    pub program: &'a Program,
    /// The address the program passed to `connect`.
    pub chosen: SocketAddr,
    /// Where to try, in order (the first on the program's socket).
    pub candidates: Vec<SocketAddr>,
    pub delay: Duration,
    pub budget: Duration,
    /// The program's own deadline (`SO_SNDTIMEO` of a blocking socket, or
    /// `DNSFO_CONNECT_TIMEOUT_MS`), and the errno it ends with.
    pub cap: Option<(Instant, c_int)>,
    /// Should a success read the kernel's RTT for the address? (The health memory's call.)
    pub rtt_wanted: &'a dyn Fn(SocketAddr) -> bool,
}

/// How the race ended: the program's connect result and what every attempt did.
pub struct Ended {
    pub result: Result<(), c_int>,
    pub outcomes: Vec<Outcome>,
}

struct Probe {
    fd: Fd,
    addr: SocketAddr,
    started: Instant,
}

fn rtt_of(fd: c_int) -> Option<Rtt> {
    let (_, srtt_us, var_us) = sys::tcp_info(fd)?;
    (srtt_us > 0).then_some(Rtt { srtt_us, var_us })
}

/// Has a non-blocking connect on `fd` that polled ready succeeded (`Ok`), failed (`Err`), or
/// not finished (`None`: a spurious wake-up)?
fn settled(fd: c_int) -> Option<Result<(), c_int>> {
    match sys::so_error(fd) {
        0 if sys::peer(fd).is_some() => Some(Ok(())),
        0 => None,
        e => Some(Err(e)),
    }
}

impl Race<'_> {
    /// A probe's attempt at `addr`, set up as the program's socket routes: the probe and
    /// whether it connected at once.
    fn probe(&self, addr: SocketAddr) -> Result<(Fd, bool), c_int> {
        let p = self.program;
        let domain = match addr.ip() {
            IpAddr::V4(_) if p.domain == libc::AF_INET6 && !p.reach.v6only => libc::AF_INET6,
            IpAddr::V4(_) => libc::AF_INET,
            IpAddr::V6(_) => libc::AF_INET6,
        };
        let fd = sys::socket(domain, libc::SOCK_STREAM)?;
        for (level, name) in ROUTING_OPTS {
            if let Ok(v) = sys::getsockopt_bytes(p.fd, level, name) {
                if v.iter().any(|b| *b != 0) {
                    let _ = sys::setsockopt_bytes(fd.0, level, name, &v);
                }
            }
        }
        if let Some(b) = p.bind.filter(|b| !b.ip().is_unspecified()) {
            sys::bind(fd.0, domain, SocketAddr::new(b.ip(), 0))?;
        }
        match sys::connect(fd.0, domain, addr) {
            Ok(()) => Ok((fd, true)),
            Err(libc::EINPROGRESS) => Ok((fd, false)),
            Err(e) => Err(e),
        }
    }

    /// Connects the program's socket to `addr` without waiting; after an earlier attempt's
    /// error was read, the kernel answers the next connect `ECONNABORTED` once (and resets).
    fn connect_program(&self, addr: SocketAddr) -> Result<(), c_int> {
        let p = self.program;
        match sys::connect(p.fd, p.domain, addr) {
            Err(libc::ECONNABORTED) => sys::connect(p.fd, p.domain, addr),
            r => r,
        }
    }

    /// Runs the race to its end.
    pub fn run(self) -> Ended {
        let start = Instant::now();
        let own = self.chosen;
        let mut queue: VecDeque<SocketAddr> = self.candidates.iter().copied().collect();
        let mut schedule = Schedule::new(self.delay, start);
        schedule.next_at_once(start);
        let mut deadlines = Deadlines::new(self.budget, self.cap.map(|(t, _)| t));
        let mut outcomes: Vec<Outcome> = Vec::new();
        // The program socket's attempt under way: (address, started).
        let mut program: Option<(SocketAddr, Instant)> = None;
        let mut probes: Vec<Probe> = Vec::new();
        let is_own = |a: SocketAddr| {
            dnsfo_core::outcome::canonical_ip(a.ip()) == dnsfo_core::outcome::canonical_ip(own.ip())
        };
        let mut won: Option<(SocketAddr, Instant)> = None;
        let mut expired = None;
        for _ in 0..100_000 {
            let now = Instant::now();
            // Start what is due: on the program's socket while it is free, else a probe.
            while schedule.due(now) {
                let Some(addr) = queue.pop_front() else { break };
                schedule.started(now);
                if program.is_none() {
                    match self.connect_program(addr) {
                        Ok(()) => {
                            let rtt = (self.rtt_wanted)(addr)
                                .then(|| rtt_of(self.program.fd))
                                .flatten();
                            outcomes.push(Outcome::connected(addr, now.elapsed(), rtt));
                            return self.finish(Ok(()), outcomes, probes);
                        }
                        Err(libc::EINPROGRESS) => program = Some((addr, now)),
                        Err(e) if is_dead_address_error(e) => {
                            outcomes.push(Outcome::settled(addr, Err(e), Duration::ZERO));
                            if is_own(addr) {
                                deadlines.own_address_failed(now);
                            }
                            schedule.next_at_once(now);
                        }
                        // The socket's or the call's error: the program sees it, as from libc.
                        Err(e) => return self.finish(Err(e), outcomes, probes),
                    }
                } else {
                    match self.probe(addr) {
                        Ok((fd, true)) => {
                            let rtt = (self.rtt_wanted)(addr).then(|| rtt_of(fd.0)).flatten();
                            outcomes.push(Outcome::connected(addr, Duration::ZERO, rtt));
                            won = Some((addr, now));
                            break;
                        }
                        Ok((fd, false)) => probes.push(Probe {
                            fd,
                            addr,
                            started: now,
                        }),
                        Err(e) => {
                            outcomes.push(Outcome::settled(addr, Err(e), Duration::ZERO));
                            schedule.next_at_once(now);
                        }
                    }
                }
            }
            if won.is_some() {
                break;
            }
            if program.is_none() && probes.is_empty() && queue.is_empty() {
                break; // every address failed
            }
            expired = deadlines.expired(now, program.is_some_and(|(a, _)| is_own(a)));
            if expired.is_some() {
                break;
            }
            // Wait for an answer, the next start, or a deadline.
            let mut until: Option<Instant> = deadlines.earliest();
            if !queue.is_empty() {
                let n = schedule.next_start();
                until = Some(until.map_or(n, |u| u.min(n)));
            }
            let mut fds: Vec<libc::pollfd> = Vec::with_capacity(probes.len() + 1);
            if program.is_some() {
                fds.push(libc::pollfd {
                    fd: self.program.fd,
                    events: libc::POLLOUT,
                    revents: 0,
                });
            }
            for p in &probes {
                fds.push(libc::pollfd {
                    fd: p.fd.0,
                    events: libc::POLLOUT,
                    revents: 0,
                });
            }
            if fds.is_empty() {
                if let Some(u) = until {
                    std::thread::sleep(u.saturating_duration_since(Instant::now()));
                }
                continue;
            }
            let wait = until.map(|u| u.saturating_duration_since(Instant::now()));
            if sys::poll(&mut fds, wait) <= 0 {
                continue;
            }
            let now = Instant::now();
            let mut k = 0;
            if let Some((addr, t0)) = program {
                let ready = fds[0].revents != 0;
                k = 1;
                if ready {
                    match settled(self.program.fd) {
                        Some(Ok(())) => {
                            let rtt = (self.rtt_wanted)(addr)
                                .then(|| rtt_of(self.program.fd))
                                .flatten();
                            outcomes.push(Outcome::connected(addr, now - t0, rtt));
                            return self.finish(Ok(()), outcomes, probes);
                        }
                        Some(Err(e)) => {
                            outcomes.push(Outcome::settled(addr, Err(e), now - t0));
                            program = None;
                            if is_own(addr) {
                                deadlines.own_address_failed(now);
                            }
                            schedule.next_at_once(now);
                        }
                        None => {}
                    }
                }
            }
            let mut i = 0;
            while i < probes.len() {
                let ready = fds[k].revents != 0;
                k += 1;
                if !ready {
                    i += 1;
                    continue;
                }
                match settled(probes[i].fd.0) {
                    Some(Ok(())) => {
                        let p = probes.remove(i);
                        let rtt = (self.rtt_wanted)(p.addr).then(|| rtt_of(p.fd.0)).flatten();
                        outcomes.push(Outcome::connected(p.addr, now - p.started, rtt));
                        won = Some((p.addr, p.started));
                        break;
                    }
                    Some(Err(e)) => {
                        let p = probes.remove(i);
                        outcomes.push(Outcome::settled(p.addr, Err(e), now - p.started));
                        schedule.next_at_once(now);
                    }
                    None => i += 1,
                }
            }
            if won.is_some() {
                break;
            }
        }
        let now = Instant::now();
        if let Some((addr, _)) = won {
            // A probe proved `addr` live: the program's socket goes there.
            if let Some((p_addr, t0)) = program.take() {
                sys::disconnect(self.program.fd);
                let _ = sys::so_error(self.program.fd);
                outcomes.push(Outcome::abandoned(p_addr, now - t0));
            }
            let result = self.move_program(addr, &mut deadlines);
            return self.finish(result, outcomes, probes);
        }
        match expired {
            Some(Expired::Cap) => {
                let e = self.cap.map_or(libc::ETIMEDOUT, |(_, e)| e);
                if let Some((addr, t0)) = program {
                    if e == libc::EINPROGRESS {
                        // The program's own timeout: its attempt goes on in the kernel, as a
                        // timed-out blocking connect's does.
                        outcomes.push(Outcome::abandoned(addr, now - t0));
                        return self.finish(Err(e), outcomes, probes);
                    }
                    sys::disconnect(self.program.fd);
                    let _ = sys::so_error(self.program.fd);
                    outcomes.push(Outcome::abandoned(addr, now - t0));
                }
                self.finish(Err(e), outcomes, probes)
            }
            _ => {
                if let Some((addr, t0)) = program {
                    sys::disconnect(self.program.fd);
                    let _ = sys::so_error(self.program.fd);
                    outcomes.push(Outcome::abandoned(addr, now - t0));
                }
                let e = errno_to_report(own, &outcomes);
                self.finish(Err(e), outcomes, probes)
            }
        }
    }

    /// Moves the program's (unconnected) socket to `addr`, proven live, and waits for it.
    fn move_program(
        &self,
        addr: SocketAddr,
        deadlines: &mut Deadlines<Instant>,
    ) -> Result<(), c_int> {
        let fd = self.program.fd;
        match self.connect_program(addr) {
            Ok(()) => return Ok(()),
            Err(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        // A proven address answers within a round trip or two; the budget bounds the wait.
        let limit = Instant::now() + self.budget.max(self.delay * 2);
        let limit = deadlines.earliest().map_or(limit, |d| d.min(limit));
        for _ in 0..10_000 {
            let left = limit.saturating_duration_since(Instant::now());
            let mut fds = [libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            }];
            if left.is_zero() {
                break;
            }
            if sys::poll(&mut fds, Some(left)) > 0 {
                if let Some(r) = settled(fd) {
                    return r;
                }
            }
        }
        sys::disconnect(fd);
        let _ = sys::so_error(fd);
        Err(libc::ETIMEDOUT)
    }

    /// Closes the probes still going (their attempts abandoned).
    fn finish(
        &self,
        result: Result<(), c_int>,
        mut outcomes: Vec<Outcome>,
        probes: Vec<Probe>,
    ) -> Ended {
        let now = Instant::now();
        for p in probes {
            outcomes.push(Outcome::abandoned(p.addr, now - p.started));
        }
        Ended { result, outcomes }
    }
}
