//! The steer: one program socket being connected to a live address of its name, on that very
//! socket (DESIGN.md, "One socket").
//!
//! The program's socket always makes the attempt that wins. Its first attempt goes to the
//! address the program chose (or the known winner when that address is known dead). When it
//! fails, the same socket moves on to the next address at once. When it is still pending after
//! the attempt delay, shadow sockets ("probes", set up like the program's) try the next
//! addresses, one per attempt delay, earlier ones kept running (RFC 8305); the first probe that
//! connects proves its address live, and the program's attempt is aborted (`connect(AF_UNSPEC)`)
//! and made again there. A probe never becomes the program's socket.
//!
//! Every step is a non-blocking system call: whoever notices that something happened (the
//! reactor, the blocking driver, or a hook the program itself called: a wait, `getsockopt`, a
//! repeated `connect`) advances the steer under the fd's lock.
//!
//! Owns: `handle`, a close-on-exec duplicate of the program's socket (so that a steer always acts
//! on the program's socket even if the program's fd number is closed and reused), and the
//! probes. Must never: put any socket on the program's fd, connect the program's socket to an
//! address it was not given, block, or leave its own fds behind (`Drop` closes them).

use super::{is_socket_error, Outcome, Template};
use crate::sys::{self, RawAddr};
use dnsfo_core::outcome::errno_to_report;
use dnsfo_core::schedule::{Deadlines, Expired, Schedule};
use libc::c_int;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// dnsfo's own descriptors are put at or above this number, out of the way of programs that
/// expect the lowest free numbers for themselves.
pub const OWN_FD_MIN: c_int = 256;

/// Where a steer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The program's socket is still connecting and something else may still win.
    Going,
    /// The program's socket is connected to this address.
    Won(SocketAddr),
    /// Every address failed. The program's socket holds a real error (the kernel's, unread:
    /// `POLLERR`, `SO_ERROR`); `report` is the errno the program must be told instead, when the
    /// kernel's is not the one it would have seen without dnsfo.
    Failed { report: Option<c_int> },
    /// Nothing left to race: the program's socket goes on with its own attempt to the address
    /// the program chose, exactly as without dnsfo.
    Released,
}

impl Status {
    pub fn settled(&self) -> bool {
        *self != Status::Going
    }
}

/// The program socket's current attempt.
#[derive(Clone, Copy, Debug)]
struct Own {
    addr: SocketAddr,
    started: Instant,
}

/// A shadow attempt (dnsfo's socket).
#[derive(Debug)]
pub struct Probe {
    pub fd: c_int,
    pub addr: SocketAddr,
    started: Instant,
    /// Registered with the reactor's epoll (the blocking driver polls probes itself).
    pub watched: bool,
}

/// What a new steer starts from.
pub struct Start {
    pub fd: c_int,
    /// dnsfo's duplicate of the program's socket when the caller made it already (else made
    /// here). Owned by the steer from here on.
    pub handle: Option<c_int>,
    pub tmpl: Template,
    pub name: String,
    /// The address the program passed to `connect`.
    pub chosen: SocketAddr,
    /// The address the program's socket is connecting to now (`None`: its last attempt failed
    /// and the error was read: the socket is free for the next address).
    pub own: Option<SocketAddr>,
    /// When that attempt started (the first probe is due one attempt delay later).
    pub own_started: Option<Instant>,
    /// Addresses not tried yet, in plan order.
    pub queue: VecDeque<SocketAddr>,
    /// Attempts that already settled inside `connect` (and were recorded).
    pub outcomes: Vec<Outcome>,
    pub delay: Duration,
    /// `DNSFO_CONNECT_TIMEOUT_MS`: the connect ends with `ETIMEDOUT` then.
    pub cap: Option<Instant>,
    /// Once the program's own address has failed, how long other addresses may still take
    /// before the program gets that failure (never later than without dnsfo plus this).
    pub budget: Duration,
    /// Asks DNS again (once) when every address has failed or none answered within the attempt
    /// delay; new addresses join the race.
    pub reresolve: Option<Reresolve>,
    /// A blocking connect may wait for that answer with its socket failed; a non-blocking one
    /// must not (its program would see the failure meanwhile).
    pub wait_for_dns: bool,
}

/// Starts a re-resolution of the steer's name; the answer (the name's addresses now, or
/// `None`) goes into the cell it is given.
pub type Reresolve = fn(&str, Answer);

/// Where a re-resolution's answer lands (written by the resolver's thread).
pub type Answer = std::sync::Arc<parking_lot::Mutex<Option<Option<Vec<std::net::IpAddr>>>>>;

/// How often a steer looks for a re-resolution's answer.
const DNS_POLL: Duration = Duration::from_millis(10);
/// How long a connect whose every address has failed waits for DNS to name another: without
/// dnsfo the program would have its error by now, so this is what a refusal may cost more
/// (issue 12: under 100 ms, also when DNS is down; a lookup that failed, or is still in flight
/// after this long, is not waited for again).
pub const DNS_WAIT_WHEN_FAILED: Duration = Duration::from_millis(50);
/// A connect still going this long logs that it is (then after twice as long, and so on).
const STILL_WAITING_FIRST: Duration = Duration::from_secs(2);

#[derive(Debug)]
enum Refill {
    Unasked,
    Asked(Answer),
    Done,
}

#[derive(Debug)]
pub struct Steer {
    pub id: u64,
    /// The program's fd number (for the log and the reactor's bookkeeping).
    pub fd: c_int,
    handle: c_int,
    tmpl: Template,
    pub name: String,
    pub chosen: SocketAddr,
    own: Option<Own>,
    queue: VecDeque<SocketAddr>,
    pub probes: Vec<Probe>,
    pub outcomes: Vec<Outcome>,
    /// Outcomes before this index were recorded in the health memory already.
    pub recorded: usize,
    /// When the next probe may start (RFC 8305; the one rule, shared with `dnsfo check`).
    schedule: Schedule<Instant>,
    /// When the race gives up (the budget, the program's own timeout, the wait for DNS).
    deadlines: Deadlines<Instant>,
    /// The errno of the program's own address, once it failed.
    chosen_errno: Option<c_int>,
    status: Status,
    /// The program's last attempt failed and its error is still on the socket, unread.
    error_pending: bool,
    /// The handle is registered with the reactor's epoll.
    pub watched: bool,
    refill: Refill,
    /// When the program's connect began (for the "still waiting" log line).
    began: Instant,
    /// The next "still waiting" line is due this long after `began` (doubling each time).
    next_note: Duration,
    /// A non-blocking socket whose attempts all failed keeps its error unread while DNS is asked
    /// (until `dns_deadline`): the program's waits are held for the answer meanwhile.
    dns_hold: bool,
    reresolve: Option<Reresolve>,
    wait_for_dns: bool,
    /// Every address planned or tried: re-resolution only adds others.
    tried: Vec<std::net::IpAddr>,
    /// The socket's identity, and its entry in the table that forked children see.
    pub ident: Option<(u64, u64)>,
    mark: Option<usize>,
}

fn new_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The socket's state as far as a steer cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attempt {
    Connecting,
    Connected,
    /// Failed (refused, unreachable, reset by an abort): the socket is in `TCP_CLOSE`.
    Failed,
}

fn attempt_state(fd: c_int) -> Attempt {
    attempt_state_rtt(fd).0
}

/// The attempt's state and, when connected, the kernel's RTT for it (the same one read).
fn attempt_state_rtt(fd: c_int) -> (Attempt, Option<crate::plan::Rtt>) {
    let info = sys::tcp_state_rtt(fd);
    let attempt = match info.map(|(state, _)| state) {
        Some(sys::tcp_state::SYN_SENT) | Some(sys::tcp_state::SYN_RECV) => Attempt::Connecting,
        Some(sys::tcp_state::CLOSE) | None => Attempt::Failed,
        Some(_) => Attempt::Connected,
    };
    (attempt, info.and_then(|(_, rtt)| rtt))
}

impl Steer {
    /// Takes over the program's socket `st.fd` for steering. `Err` (nothing changed) when no
    /// duplicate of it can be made.
    pub fn new(st: Start, now: Instant) -> Result<Steer, c_int> {
        let handle = match st.handle {
            Some(h) => h,
            None => sys::dup_above(st.fd, OWN_FD_MIN)?,
        };
        // The program's connect began with its own attempt (or now, when dnsfo makes the first).
        let began = st.own_started.unwrap_or(now);
        let mut steer = Steer {
            id: new_id(),
            fd: st.fd,
            handle,
            tmpl: st.tmpl,
            name: st.name,
            chosen: st.chosen,
            own: st.own.map(|addr| Own {
                addr,
                started: began,
            }),
            queue: st.queue,
            probes: Vec::new(),
            recorded: st.outcomes.len(),
            outcomes: st.outcomes,
            schedule: Schedule::new(st.delay, began),
            deadlines: Deadlines::new(st.budget, st.cap),
            chosen_errno: None,
            status: Status::Going,
            error_pending: false,
            watched: false,
            refill: if st.reresolve.is_some() {
                Refill::Unasked
            } else {
                Refill::Done
            },
            began,
            next_note: STILL_WAITING_FIRST,
            dns_hold: false,
            reresolve: st.reresolve,
            wait_for_dns: st.wait_for_dns,
            tried: Vec::new(),
            ident: None,
            mark: None,
        };
        steer.tried = steer
            .queue
            .iter()
            .map(|a| a.ip())
            .chain(steer.outcomes.iter().map(|o| o.addr.ip()))
            .chain(steer.own.map(|o| o.addr.ip()))
            .map(sys::canonical_ip)
            .collect();
        steer.ident = sys::file_id(handle);
        steer.mark = steer.ident.and_then(crate::copies::mark);
        let chosen_ip = sys::canonical_ip(steer.chosen.ip());
        if let Some(e) = steer
            .outcomes
            .iter()
            .find(|o| o.addr.ip() == chosen_ip)
            .and_then(|o| o.result.err())
        {
            steer.chosen_failed(e, now);
        }
        Ok(steer)
    }

    /// Puts the program's socket (made non-blocking by the caller when it was not) on its first
    /// address when it has none under way.
    pub fn begin(&mut self, now: Instant) {
        if self.own.is_none() {
            self.own_next(now);
        }
    }

    /// The attempt delay this steer runs with.
    pub fn delay(&self) -> Duration {
        self.schedule.delay()
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// The duplicate of the program's socket that the steer acts on.
    pub fn handle(&self) -> c_int {
        self.handle
    }

    /// Is an attempt of the program's socket under way? Not while the socket waits, failed,
    /// for DNS to name another address: a failed socket polls ready at once, so a wait on it
    /// then would spin.
    pub fn own_attempt_live(&self) -> bool {
        self.own.is_some()
    }

    /// Has the race begun (a probe started)? Until then only the program's own attempt runs.
    pub fn racing(&self) -> bool {
        !self.probes.is_empty() || self.outcomes.iter().any(|o| o.addr != self.chosen)
    }

    /// Looks at the program's socket and moves on if its attempt ended; applies the clocks.
    pub fn advance(&mut self, now: Instant) -> Status {
        if self.status.settled() {
            return self.status;
        }
        self.take_refill(now);
        if let Some(own) = self.own {
            let (state, rtt) = attempt_state_rtt(self.handle);
            match state {
                Attempt::Connected => {
                    self.outcomes.push(Outcome::connected(
                        own.addr,
                        now.saturating_duration_since(own.started),
                        rtt,
                    ));
                    return self.settle(Status::Won(own.addr));
                }
                Attempt::Connecting => {}
                Attempt::Failed => self.own_failed(now),
            }
        }
        if !self.status.settled() {
            self.apply_clocks(now);
        }
        if !self.status.settled() {
            self.note_waiting(now);
        }
        if !self.status.settled() && self.nothing_left_but_own_choice() {
            return self.settle(Status::Released);
        }
        self.status
    }

    /// Starts the probes that are due (RFC 8305: one per attempt delay, the next at once after a
    /// failure). A probe that connects at once proves its address on the spot.
    pub fn start_due(&mut self, now: Instant) {
        let quiet = |started: Instant| now >= self.schedule.refill_at(started);
        if self.queue.is_empty()
            && matches!(self.refill, Refill::Unasked)
            && self.own.is_none_or(|o| quiet(o.started))
            && self.probes.iter().all(|p| quiet(p.started))
        {
            // Nothing answered within the attempt delay and nothing is left to try.
            self.ask_dns(now);
        }
        if self.own.is_none() && !self.queue.is_empty() && !self.status.settled() {
            self.own_next(now);
        }
        while !self.status.settled() && self.schedule.due(now) {
            let Some(addr) = self.queue.pop_front() else {
                return;
            };
            let started = Instant::now();
            let sock = match self.tmpl.open_probe(addr.ip()) {
                Ok(s) => s,
                Err(e) => {
                    self.outcomes
                        .push(Outcome::settled(addr, Err(e), Duration::ZERO));
                    continue;
                }
            };
            let raw = RawAddr::for_domain(addr, self.tmpl.domain_for(addr.ip()));
            match raw.map_or(Err(libc::EAFNOSUPPORT), |r| sys::connect_to(sock, &r)) {
                Ok(()) => {
                    self.probes.push(Probe {
                        fd: sock,
                        addr,
                        started,
                        watched: false,
                    });
                    self.proven(addr, now);
                    return;
                }
                Err(libc::EINPROGRESS) => {
                    self.probes.push(Probe {
                        fd: sock,
                        addr,
                        started,
                        watched: false,
                    });
                    self.schedule.started(started);
                }
                Err(e) => {
                    sys::close_fd(sock);
                    self.outcomes
                        .push(Outcome::settled(addr, Err(e), started.elapsed()));
                }
            }
        }
    }

    /// A probe reported readiness: it connected (its address is live) or failed.
    pub fn probe_ready(&mut self, sock: c_int, now: Instant) {
        let Some(i) = self.probes.iter().position(|p| p.fd == sock) else {
            return;
        };
        if self.status.settled() {
            return;
        }
        match attempt_state(sock) {
            Attempt::Connecting => {}
            Attempt::Connected => {
                let addr = self.probes[i].addr;
                self.proven(addr, now);
            }
            Attempt::Failed => {
                let p = self.probes.remove(i);
                let e = sys::getsockopt_int(p.fd, libc::SOL_SOCKET, libc::SO_ERROR)
                    .ok()
                    .filter(|e| *e != 0)
                    .unwrap_or(libc::ECONNREFUSED);
                self.outcomes.push(Outcome::settled(
                    p.addr,
                    Err(e),
                    now.saturating_duration_since(p.started),
                ));
                sys::close_fd(p.fd);
                self.schedule.next_at_once(now);
            }
        }
    }

    /// When the steer next needs a look without any socket event: the next probe start, the
    /// budget, the cap, DNS, the next "still waiting" note. Always `Some` while unsettled (the
    /// note is always due some time), so a driver's wait is never unbounded.
    pub fn wake_at(&self) -> Option<Instant> {
        if self.status.settled() {
            return None;
        }
        let dns = match &self.refill {
            // An answer already there (given at once: /etc/hosts, a failure remembered) is
            // taken at once.
            Refill::Asked(cell) if cell.lock().is_some() => Some(Instant::now()),
            Refill::Asked(_) => Some(Instant::now() + DNS_POLL),
            Refill::Unasked if self.queue.is_empty() => Some(
                self.schedule.refill_at(
                    self.own
                        .map(|o| o.started)
                        .into_iter()
                        .chain(self.probes.iter().map(|p| p.started))
                        .max()
                        .unwrap_or_else(Instant::now),
                ),
            ),
            _ => None,
        };
        [
            (!self.queue.is_empty()).then_some(self.schedule.next_start()),
            self.deadlines.earliest(),
            dns,
            Some(self.began + self.next_note),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// In a `fork()` child: the steer is the parent's. Close the child's copies of dnsfo's fds
    /// (the shared epoll registrations are the parent's and stay) and forget it.
    pub fn forget_in_child(self: Box<Self>) {
        sys::close_fd(self.handle);
        for p in &self.probes {
            sys::close_fd(p.fd);
        }
        std::mem::forget(self);
    }

    /// The program's current address in C form (a blocking connect that won connects once more
    /// to it, which the kernel answers 0 and marks the socket connected).
    pub fn own_raw(&self) -> Option<RawAddr> {
        self.own
            .and_then(|o| RawAddr::for_domain(o.addr, self.tmpl.domain))
    }

    /// A blocking connect that failed leaves the socket as the kernel leaves it: error read,
    /// unconnected. Returns the kernel's error when one was still on the socket.
    pub fn read_failure(&mut self) -> Option<c_int> {
        let mut kernel = None;
        if std::mem::take(&mut self.error_pending) {
            if let Some(raw) = self.own_raw() {
                kernel = match sys::connect_to(self.handle, &raw) {
                    Err(e) if e != libc::EINPROGRESS && e != libc::EALREADY => Some(e),
                    _ => None,
                };
            }
        }
        // An abort leaves ECONNRESET behind.
        let _ = sys::getsockopt_int(self.handle, libc::SOL_SOCKET, libc::SO_ERROR);
        kernel
    }

    /// Stops steering now: probes go, the program's socket is left exactly as it is.
    /// The program ended the connect itself (close, shutdown): what its attempt had been doing
    /// so far still counts (a program that fails over by itself then plans around it).
    pub fn release(&mut self) {
        if !self.status.settled() {
            if let Some(own) = self.own {
                self.outcomes
                    .push(Outcome::abandoned(own.addr, own.started.elapsed()));
            }
            self.settle(Status::Released);
        }
    }

    // ---------------------------------------------------------------------------------------

    fn ask_dns(&mut self, _now: Instant) {
        if !matches!(self.refill, Refill::Unasked) {
            return;
        }
        let Some(ask) = self.reresolve else {
            self.refill = Refill::Done;
            return;
        };
        let cell: Answer = Default::default();
        self.refill = Refill::Asked(cell.clone());
        ask(&self.name, cell);
    }

    /// A re-resolution answered: addresses not tried yet join the race (the program's socket
    /// takes the first when it is free).
    fn take_refill(&mut self, now: Instant) {
        let Refill::Asked(cell) = &self.refill else {
            return;
        };
        let Some(answer) = cell.lock().take() else {
            return;
        };
        self.refill = Refill::Done;
        let port = self.chosen.port();
        for ip in answer.unwrap_or_default() {
            let ip = sys::canonical_ip(ip);
            // An AF_INET6 socket that tried an IPv4 peer cannot reach an IPv6 one any more
            // (see `failover::reachable`).
            let v4_stuck = self.tmpl.domain == libc::AF_INET6
                && sys::canonical_ip(self.chosen.ip()).is_ipv4()
                && ip.is_ipv6();
            if !self.tried.contains(&ip) && self.tmpl.can_reach(ip) && !v4_stuck {
                log::info!("{}: DNS now also lists {ip}", self.name);
                self.tried.push(ip);
                self.queue.push_back(SocketAddr::new(ip, port));
            }
        }
        self.schedule.next_at_once(now);
        if self.own.is_none() {
            self.own_next(now);
        }
    }

    /// When a wait must hold the program back for DNS's answer (the socket's failure is still
    /// unread, and DNS may name another address): until then.
    pub fn holding_for_dns(&self) -> Option<Instant> {
        self.dns_hold
            .then_some(self.deadlines.dns_deadline())
            .flatten()
    }

    /// Could DNS still name another address in time for this connect?
    fn dns_may_help(&self, now: Instant) -> bool {
        match self.refill {
            Refill::Unasked => self.reresolve.is_some(),
            Refill::Asked(_) => self.deadlines.dns_deadline().is_none_or(|d| now < d),
            Refill::Done => false,
        }
    }

    /// Only the program's own attempt to its own address is left, and DNS was asked: the kernel
    /// can finish it.
    fn nothing_left_but_own_choice(&self) -> bool {
        self.queue.is_empty()
            && self.probes.is_empty()
            && matches!(self.refill, Refill::Done)
            && !self.deadlines.bounded()
            && self.own.is_some_and(|o| o.addr.ip() == self.chosen.ip())
    }

    fn chosen_failed(&mut self, e: c_int, now: Instant) {
        if self.chosen_errno.is_none() {
            self.chosen_errno = Some(e);
            self.deadlines.own_address_failed(now);
        }
    }

    fn record_failure(&mut self, addr: SocketAddr, e: c_int, elapsed: Duration, now: Instant) {
        self.outcomes.push(Outcome::settled(addr, Err(e), elapsed));
        if addr.ip() == self.chosen.ip() {
            self.chosen_failed(e, now);
        }
    }

    /// The program's socket failed. Move it on to the next address (or to a pending probe's, so
    /// that it never sits in a failed state while something may still win); with nothing left,
    /// the failure stands and stays unread for the program.
    fn own_failed(&mut self, now: Instant) {
        let Some(own) = self.own else { return };
        let mut next = self
            .queue
            .pop_front()
            .or_else(|| self.probes.first().map(|p| p.addr));
        if next.is_none() && !self.wait_for_dns && self.dns_may_help(now) {
            // Non-blocking: the failure stays on the socket, unread, while DNS is asked; the
            // program's waits are held for the answer (`holding_for_dns`), a bounded while.
            self.ask_dns(now);
            self.take_refill(now);
            next = self.queue.pop_front();
            if next.is_none() && self.dns_may_help(now) {
                self.dns_hold = true;
                self.deadlines.wait_for_dns(now, DNS_WAIT_WHEN_FAILED);
                return;
            }
        }
        self.dns_hold = false;
        let Some(next) = next else {
            if self.wait_for_dns && !matches!(self.refill, Refill::Done) {
                // Blocking: nobody watches the socket meanwhile; DNS may name another address.
                let e = match self.connect_handle(own.addr) {
                    Err(e) if e != libc::EINPROGRESS && e != libc::EALREADY => e,
                    _ => libc::ECONNREFUSED,
                };
                self.own = None;
                self.record_failure(own.addr, e, now.saturating_duration_since(own.started), now);
                self.ask_dns(now);
                self.deadlines.wait_for_dns(now, DNS_WAIT_WHEN_FAILED);
                return;
            }
            let report = self.report_for_last(own.addr);
            self.outcomes.push(Outcome::settled(
                own.addr,
                Err(super::ERROR_LEFT_UNREAD),
                now.saturating_duration_since(own.started),
            ));
            self.error_pending = true;
            self.settle(Status::Failed { report });
            return;
        };
        // The next connect returns the pending error (and resets the socket).
        let e = match self.connect_handle(next) {
            Err(libc::EINPROGRESS) | Err(libc::EALREADY) | Ok(()) => {
                // It was not failed after all (the program reconnected it itself?): let go.
                self.settle(Status::Released);
                return;
            }
            Err(libc::ECONNABORTED) => libc::ECONNREFUSED,
            Err(e) => e,
        };
        self.own = None;
        self.record_failure(own.addr, e, now.saturating_duration_since(own.started), now);
        self.queue.push_front(next);
        self.own_next(now);
    }

    /// Connects the program's (free) socket to the next address, moving past addresses that
    /// fail at once; settles as failed when none is left.
    fn own_next(&mut self, now: Instant) {
        while self.own.is_none() && !self.status.settled() {
            let Some(addr) = self
                .queue
                .pop_front()
                .or_else(|| self.probes.first().map(|p| p.addr))
            else {
                if self.wait_for_dns && !matches!(self.refill, Refill::Done) {
                    // Free until DNS answers (a blocking connect: nobody sees the socket).
                    self.ask_dns(now);
                    self.deadlines.wait_for_dns(now, DNS_WAIT_WHEN_FAILED);
                    return;
                }
                let report = errno_to_report(self.chosen, &self.outcomes);
                // The socket's own error was read on the way here: the program is told.
                self.settle(Status::Failed {
                    report: Some(report),
                });
                return;
            };
            let started = Instant::now();
            match self.connect_handle(addr) {
                Ok(()) => {
                    self.own = Some(Own { addr, started });
                }
                Err(libc::EINPROGRESS) => {
                    self.own = Some(Own { addr, started });
                    if attempt_state(self.handle) == Attempt::Failed {
                        // Refused on the spot (loopback): read the error, go on.
                        self.own = None;
                        let e = self.read_error(addr);
                        self.record_failure(addr, e, started.elapsed(), now);
                    }
                }
                Err(e) if is_socket_error(e) => {
                    // Not the address's fault (the program changed the socket meanwhile).
                    self.settle(Status::Released);
                }
                Err(e) => self.record_failure(addr, e, started.elapsed(), now),
            }
        }
    }

    /// A probe connected to `addr`: the address is live. The program's socket goes there.
    fn proven(&mut self, addr: SocketAddr, now: Instant) {
        for p in std::mem::take(&mut self.probes) {
            let elapsed = now.saturating_duration_since(p.started);
            if p.addr == addr {
                let rtt = sys::tcp_state_rtt(p.fd).and_then(|(_, r)| r);
                self.outcomes.push(Outcome::connected(addr, elapsed, rtt));
            } else {
                self.outcomes.push(Outcome::abandoned(p.addr, elapsed));
            }
            if p.watched {
                super::watch::unwatch(p.fd);
            }
            sys::close_fd(p.fd);
        }
        let Some(own) = self.own else {
            self.queue.push_front(addr);
            self.own_next(now);
            return;
        };
        if own.addr == addr {
            return;
        }
        match attempt_state(self.handle) {
            Attempt::Connected => {
                self.outcomes.push(Outcome::settled(
                    own.addr,
                    Ok(()),
                    now.saturating_duration_since(own.started),
                ));
                self.settle(Status::Won(own.addr));
                return;
            }
            Attempt::Connecting => {
                self.outcomes.push(Outcome::abandoned(
                    own.addr,
                    now.saturating_duration_since(own.started),
                ));
                // Abort the pending attempt; the next connect starts afresh (EINPROGRESS).
                let _ = sys::disconnect(self.handle);
            }
            Attempt::Failed => {
                let e = self.read_error(addr);
                self.record_failure(own.addr, e, now.saturating_duration_since(own.started), now);
            }
        }
        self.own = None;
        self.queue.push_front(addr);
        self.own_next(now);
    }

    /// A connect still going after 2, 4, 8, ... s says so at info, naming what it waits on: an
    /// operator watching the log of a program that seems stuck sees why.
    fn note_waiting(&mut self, now: Instant) {
        let waited = now.saturating_duration_since(self.began);
        if waited < self.next_note {
            return;
        }
        let mut on: Vec<String> = self.own.iter().map(|o| o.addr.to_string()).collect();
        on.extend(self.probes.iter().map(|p| p.addr.to_string()));
        if on.is_empty() {
            on.push("DNS".to_string());
        }
        log::info!(
            "{}: connect on fd {} still waiting on {} after {} s",
            self.name,
            self.fd,
            on.join(", "),
            waited.as_secs()
        );
        while self.next_note <= waited {
            self.next_note = self.next_note.saturating_mul(2);
        }
    }

    fn apply_clocks(&mut self, now: Instant) {
        match self.deadlines.expired(now, self.own.is_some()) {
            None => {}
            Some(Expired::NoNewAddress) => {
                let e = errno_to_report(self.chosen, &self.outcomes);
                self.settle_failed_with(e);
            }
            Some(Expired::Cap) => {
                self.abort_own(now);
                self.settle_failed_with(libc::ETIMEDOUT);
            }
            Some(Expired::GiveUp) => {
                let e = self.chosen_errno.unwrap_or(libc::ECONNREFUSED);
                self.abort_own(now);
                self.settle_failed_with(e);
            }
        }
    }

    fn settle_failed_with(&mut self, e: c_int) {
        self.settle(Status::Failed { report: Some(e) });
    }

    /// Ends the program's pending attempt: the kernel then reports a real error (`POLLERR`,
    /// `ECONNRESET`), which dnsfo's hooks translate into the errno the program would have seen.
    fn abort_own(&mut self, now: Instant) {
        if let Some(own) = self.own.take() {
            self.outcomes.push(Outcome::abandoned(
                own.addr,
                now.saturating_duration_since(own.started),
            ));
            if attempt_state(self.handle) == Attempt::Connecting {
                let _ = sys::disconnect(self.handle);
            }
        }
    }

    /// What the program must be told when its last attempt failed with its error unread.
    fn report_for_last(&self, last: SocketAddr) -> Option<c_int> {
        let chosen_ip = sys::canonical_ip(self.chosen.ip());
        if sys::canonical_ip(last.ip()) == chosen_ip {
            return None;
        }
        Some(
            self.chosen_errno
                .unwrap_or_else(|| errno_to_report(self.chosen, &self.outcomes)),
        )
    }

    /// Reads the pending error of the program's failed attempt: the next connect (here to
    /// `next`) returns it and resets the socket. An error already read by someone else shows as
    /// `ECONNABORTED`; the attempt was refused, as far as anyone can tell.
    fn read_error(&self, next: SocketAddr) -> c_int {
        match self.connect_handle(next) {
            Err(libc::ECONNABORTED) | Err(libc::EINPROGRESS) | Ok(()) => libc::ECONNREFUSED,
            Err(e) => e,
        }
    }

    /// Connects the program's socket, never waiting: a socket the program has made blocking
    /// (or a blocking connect handed over to the reactor) is non-blocking for this one call.
    fn connect_handle(&self, addr: SocketAddr) -> Result<(), c_int> {
        let raw = RawAddr::for_domain(addr, self.tmpl.domain).ok_or(libc::EAFNOSUPPORT)?;
        let flags = sys::fcntl_get(self.handle, libc::F_GETFL).unwrap_or(libc::O_NONBLOCK);
        let blocking = flags & libc::O_NONBLOCK == 0;
        if blocking {
            let _ = sys::fcntl_set(self.handle, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        let r = sys::connect_to(self.handle, &raw);
        if blocking {
            let _ = sys::fcntl_set(self.handle, libc::F_SETFL, flags);
        }
        r
    }

    fn settle(&mut self, status: Status) -> Status {
        self.status = status;
        for p in std::mem::take(&mut self.probes) {
            self.outcomes
                .push(Outcome::abandoned(p.addr, p.started.elapsed()));
            if p.watched {
                super::watch::unwatch(p.fd);
            }
            sys::close_fd(p.fd);
        }
        status
    }
}

impl Drop for Steer {
    fn drop(&mut self) {
        for p in &self.probes {
            if p.watched {
                super::watch::unwatch(p.fd);
            }
            sys::close_fd(p.fd);
        }
        if self.watched {
            super::watch::unwatch(self.handle);
        }
        sys::close_fd(self.handle);
        if let Some(i) = self.mark.take() {
            crate::copies::unmark(i);
        }
    }
}
