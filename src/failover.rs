//! The connect operation: from a program's `connect(fd, addr)` to an outcome, and everything the
//! program later asks about a steered socket.
//!
//! **The connect is decided in `dnsfo_core::route::route`**; [`connect`] gathers the facts it
//! asks for and carries the route out: not an address of a learned name (or a socket dnsfo
//! cannot steer) → libc; otherwise the planner orders the name's addresses (one or more:
//! DNS may name others once they fail) and the program's socket is steered: a
//! non-blocking connect makes its attempts that settle at once right here and leaves the rest
//! to the reactor; a blocking one makes its first attempt (with the attempt delay as its
//! timeout) and then races in the program's thread.
//!
//! Owns: carrying out the route, the errno the program sees, and recording outcomes in the health memory.
//! Must never: hold a lock while the program waits, try an address that the registry did not
//! list for the name, or answer a connect the kernel would answer differently (a repeated
//! connect on a steered socket says what the kernel would say for its state).

use crate::dial::blocking::Blocking;
use crate::dial::steer::{self, Start, Status, Steer};
use crate::dial::{self, Template};
use crate::fdtable::FdState;
use crate::lifecycle;
use crate::plan::{self, Input};
use crate::reactor;
use crate::registry::{Known, Scope};
use crate::resolver;
use crate::state::{State, FDS};
use crate::stats;
use crate::sys::{self, RawAddr};
use dnsfo_core::outcome::{dead_after, errno_to_report, failover_of, is_dead_address_error};
use dnsfo_core::route::{self, Route};
use libc::c_int;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the hook does next.
pub enum Decision {
    /// Not dnsfo's business: call libc's `connect` unchanged.
    PassThrough,
    /// dnsfo handled the call: return this value with this errno (ignored on success).
    Return(c_int, c_int),
    /// A blocking connect: make this first attempt on the program's socket, then call
    /// [`after_first`].
    First(Box<First>),
    /// A blocking connect racing in the program's thread.
    Blocking(Box<Blocking>),
    /// A blocking `connect` on a socket whose steer is in flight: wait until it settles (the
    /// kernel's connect would wait for the attempt under way), then call libc's `connect`.
    AwaitSteer,
}

/// The first attempt of a blocking connect, made by the hook (it waits, so it runs outside
/// every panic boundary): the program's socket with `SO_SNDTIMEO` set to the attempt delay.
///
/// The attempt is made on the program's fd itself (no duplicate: a healthy connect costs two
/// `setsockopt` calls and nothing else). Whatever another thread does with the fd number
/// meanwhile, dnsfo touches the fd afterwards only when its record is still the one the
/// attempt started with (`gen`): a `close` (and a new socket at that number) replaces it.
/// What only a race needs (the probe template, the rest of the plan) is read when one starts:
/// a connect that succeeds at once allocates nothing.
pub struct First {
    pub fd: c_int,
    /// The fd record's number when the attempt started.
    gen: u64,
    /// dnsfo's duplicate of the program's socket, made once a race is needed.
    handle: Option<c_int>,
    pub addr: SocketAddr,
    /// The `SO_SNDTIMEO` value for the attempt.
    pub limit: [u8; 16],
    /// The program's own `SO_SNDTIMEO` to put back after the attempt (once).
    restore: Option<Restore>,
    own: Option<Duration>,
    delay: Duration,
    started: Instant,
    domain: c_int,
    status_flags: c_int,
    known: Arc<Known>,
    chosen: SocketAddr,
    /// A success needs recording (not the known winner, or an RTT sample is due).
    news: bool,
    /// Read when a race starts (or at once, when the plan had to be made up front). Boxed: a
    /// `First` is moved through a few calls, and a connect that succeeds never needs this.
    race: Option<Box<RaceParts>>,
}

/// What a race needs beyond the first attempt.
struct RaceParts {
    tmpl: Template,
    /// The planned addresses after the first attempt's.
    queue: VecDeque<SocketAddr>,
}

/// The program's `SO_SNDTIMEO` before dnsfo set the attempt delay.
enum Restore {
    /// None set (the kernel's default: wait for ever).
    Unset,
    /// As it set it (option name, value).
    Own(c_int, Vec<u8>),
}

impl First {
    /// Makes the attempt: a blocking connect that waits at most the attempt delay.
    pub fn attempt(&self) -> Result<(), c_int> {
        let raw = RawAddr::for_domain(self.addr, self.domain).ok_or(libc::EAFNOSUPPORT)?;
        sys::setsockopt_raw(self.fd, libc::SOL_SOCKET, libc::SO_SNDTIMEO, &self.limit)?;
        sys::connect_to(self.fd, &raw)
    }

    /// Does the program's fd still hold the socket the attempt was made on?
    fn same_socket(&self) -> bool {
        FDS.update(self.fd, |st| st.gen) == Some(self.gen)
    }

    /// Gives the program's `SO_SNDTIMEO` back (once), if the fd still holds its socket.
    fn restore_timeout(&mut self) {
        if let Some(r) = self.restore.take() {
            if self.same_socket() {
                let _ = match &r {
                    Restore::Unset => sys::setsockopt_raw(
                        self.fd,
                        libc::SOL_SOCKET,
                        libc::SO_SNDTIMEO,
                        &timeval_bytes(Duration::ZERO),
                    ),
                    Restore::Own(name, value) => {
                        sys::setsockopt_raw(self.fd, libc::SOL_SOCKET, *name, value)
                    }
                };
            }
        }
    }

    /// Reads what a race needs: the probe template and the planned addresses after the first.
    /// `false`: the socket cannot be steered (closed meanwhile, or not a socket dnsfo knows).
    fn prepare_race(&mut self, s: &State) -> bool {
        if self.race.is_some() {
            return true;
        }
        let Some(tmpl) = capture(self.fd, self.domain, self.status_flags) else {
            return false;
        };
        let chosen = sys::canonical_ip(self.chosen.ip());
        let order = plan_for(s, &self.known, chosen, self.chosen.port());
        let mut queue: VecDeque<SocketAddr> = reachable(&tmpl, &order, chosen, self.chosen).into();
        queue.retain(|a| *a != self.addr);
        self.race = Some(Box::new(RaceParts { tmpl, queue }));
        true
    }
}

impl Drop for First {
    fn drop(&mut self) {
        // Also on a forced unwind out of the attempt: the program's timeout comes back.
        self.restore_timeout();
        if let Some(h) = self.handle.take() {
            sys::close_fd(h);
        }
    }
}

/// `TCP_FASTOPEN_CONNECT` (linux/tcp.h): `connect` returns at once and the SYN leaves with the
/// first write, so a connect "success" proves nothing about the address. Such sockets are left
/// alone, so a dead address can never be remembered as a winner because of it.
const TCP_FASTOPEN_CONNECT: c_int = 30;
/// `SO_SNDTIMEO_NEW` (asm-generic/socket.h): the 64-bit-time variant; same layout on x86-64.
const SO_SNDTIMEO_NEW: c_int = 67;
/// A steer holds one fd (and probes) for a while; it starts only while at least this many fds
/// remain below the program's `RLIMIT_NOFILE`.
const FD_HEADROOM: c_int = 16;

/// What the connect needs to know about the program's socket, read from its record.
struct Sock {
    domain: c_int,
    fast_open: bool,
    /// The program's `SO_SNDTIMEO` as it set it (option name, value).
    timeout: Option<(c_int, Vec<u8>)>,
    gen: u64,
}

/// The facts `route::route` asks for, gathered on demand (cheapest first) and kept for the
/// route that follows.
struct ConnectFacts {
    s: &'static State,
    fd: c_int,
    chosen: IpAddr,
    known: Option<Arc<Known>>,
    sock: Option<Sock>,
    status_flags: Option<c_int>,
}

impl route::Facts for ConnectFacts {
    fn learned(&mut self) -> bool {
        self.known = lookup(self.s, self.chosen);
        self.known.is_some()
    }

    fn socket(&mut self) -> route::Socket {
        let sock = FDS.update(self.fd, |st| {
            if st.dialed || st.steer.is_some() {
                return None;
            }
            Some(Sock {
                domain: st.domain,
                fast_open: st.opts.iter().any(is_fast_open),
                timeout: recorded_send_timeout(st),
                gen: st.gen,
            })
        });
        match sock {
            None => route::Socket::Untracked,
            Some(None) => route::Socket::Connecting,
            Some(Some(sock)) => {
                let facts = route::Socket::Fresh {
                    ipv4: sock.domain == libc::AF_INET,
                    fast_open: sock.fast_open,
                };
                self.sock = Some(sock);
                facts
            }
        }
    }

    fn nonblocking(&mut self) -> Option<bool> {
        let flags = sys::fcntl_get(self.fd, libc::F_GETFL).ok()?;
        self.status_flags = Some(flags);
        Some(flags & libc::O_NONBLOCK != 0)
    }
}

/// A connect on a learned or unlearned address: `route::route` decides what dnsfo does (the
/// one place); this carries the route out.
pub fn connect(s: &'static State, fd: c_int, addr: SocketAddr) -> Decision {
    let mut facts = ConnectFacts {
        s,
        fd,
        chosen: sys::canonical_ip(addr.ip()),
        known: None,
        sock: None,
        status_flags: None,
    };
    let route = route::route(addr.is_ipv4(), &mut facts);
    let ConnectFacts {
        known,
        sock,
        status_flags,
        ..
    } = facts;
    match (route, known, sock, status_flags) {
        (Route::Again, ..) => repeated(s, fd).unwrap_or(Decision::PassThrough),
        (Route::Blocking, Some(known), Some(sock), Some(flags)) => {
            blocking(s, fd, addr, known, sock, flags)
        }
        (Route::NonBlocking, Some(known), Some(sock), Some(flags)) => {
            non_blocking(s, fd, addr, &known, &sock, flags)
        }
        // Passing through, or (impossible) a route without its facts.
        _ => Decision::PassThrough,
    }
}

/// A non-blocking connect: the first attempt at once on the program's socket, the race (if it
/// comes to one) in the background.
fn non_blocking(
    s: &'static State,
    fd: c_int,
    addr: SocketAddr,
    known: &Known,
    sock: &Sock,
    status_flags: c_int,
) -> Decision {
    let chosen = sys::canonical_ip(addr.ip());
    let order = plan_for(s, known, chosen, addr.port());
    let Some(tmpl) = capture(fd, sock.domain, status_flags) else {
        return Decision::PassThrough;
    };
    // One candidate (a one-address name, or an AF_INET socket and IPv6 others) is steered
    // too: DNS may name another address once it fails or stays silent (stale DNS).
    let candidates = reachable(&tmpl, &order, chosen, addr);
    if candidates.is_empty() {
        return Decision::PassThrough;
    }
    FDS.update(fd, |st| st.dialed = true);
    stats::add(&stats::CONNECTS, 1);
    nonblocking(s, fd, tmpl, known.name.to_string(), addr, candidates.into())
}

/// A blocking connect: its first attempt, on the program's socket. One look at the health
/// memory says where it goes (the program's choice unless it is known dead), how long it may
/// take (the attempt delay) and whether a success would teach anything.
fn blocking(
    s: &'static State,
    fd: c_int,
    addr: SocketAddr,
    known: Arc<Known>,
    sock: Sock,
    status_flags: c_int,
) -> Decision {
    let chosen = sys::canonical_ip(addr.ip());
    let port = addr.port();
    let now = Instant::now();
    let at = |ip: IpAddr| SocketAddr::new(ip, port);
    // The head: the program's choice, or when that is known dead the failover's winner (the
    // plan's rule, told without making the whole plan: that waits until a race needs it).
    let (head, delay, news) = {
        let h = s.health.read();
        let winner = h.winner(&known.name, port);
        let live = |ip: IpAddr| known.addrs.contains(&ip) && h.dead_until(&at(ip), now).is_none();
        // A head of the other family needs the whole plan (the socket may not reach it).
        let head = plan::head(chosen, winner, live)
            .filter(|hd| hd.is_ipv4() == chosen.is_ipv4())
            .map(|hd| if hd == chosen { addr } else { at(hd) });
        let delay = delay_with(
            &h,
            &s.config,
            &known.name,
            known.addrs.iter().map(|ip| at(*ip)),
        );
        let news = head.is_none_or(|hd| {
            winner != Some(hd.ip()) || (s.config.adaptive && h.rtt_wanted(&hd, now))
        });
        (head, delay.max(Duration::from_millis(1)), news)
    };
    let mut race = None;
    let head = match head {
        Some(hd) => hd,
        None => {
            // Known dead and no live winner: the plan says where to go instead.
            let Some(t) = capture(fd, sock.domain, status_flags) else {
                return Decision::PassThrough;
            };
            let order = plan_for(s, &known, chosen, port);
            let mut q: VecDeque<SocketAddr> = reachable(&t, &order, chosen, addr).into();
            let Some(hd) = q.pop_front() else {
                return Decision::PassThrough;
            };
            race = Some(Box::new(RaceParts { tmpl: t, queue: q }));
            hd
        }
    };
    FDS.update(fd, |st| st.dialed = true);
    stats::add(&stats::CONNECTS, 1);
    let own = sock.timeout.as_ref().and_then(|(_, v)| timeval_of(v));
    let limit = match own {
        // The program's own timeout: exactly as it set it (the kernel rounds it as always).
        Some(o) if o <= delay => o,
        // The kernel rounds a send timeout up to its tick and wakes on the tick after: set
        // one tick less, and the race (which starts on dnsfo's clock, waiting out the rest)
        // begins on time instead of up to two ticks late.
        _ => delay.saturating_sub(KERNEL_TICK).max(delay / 2),
    };
    let restore = Some(match sock.timeout {
        Some((name, value)) => Restore::Own(name, value),
        None => Restore::Unset,
    });
    let mut first = Box::new(First {
        fd,
        gen: sock.gen,
        handle: None,
        addr: head,
        limit: timeval_bytes(limit),
        restore,
        own,
        delay,
        started: now,
        domain: sock.domain,
        status_flags,
        known,
        chosen: addr,
        news,
        race,
    });
    if delay < SHORTEST_FIRST_ATTEMPT && own.is_none_or(|o| o > delay) {
        // A send timeout this short is rounded up to the kernel's tick (4 ms at HZ=250): the
        // race starts at once instead, the program's socket making the first attempt.
        if !is_stream(fd) || !first.prepare_race(s) {
            return Decision::PassThrough;
        }
        first.restore = None;
        let head = first.addr;
        if let Some(r) = first.race.as_mut() {
            r.queue.push_front(head);
        }
        let own_deadline = own.map(|o| first.started + o);
        let flags = first.status_flags;
        return match new_steer(s, &mut first, None, Vec::new()) {
            Ok(steer) => Decision::Blocking(Box::new(Blocking::new(steer, flags, own_deadline))),
            Err(_) => Decision::PassThrough,
        };
    }
    Decision::First(first)
}

/// The kernel's timer tick at HZ=250, the usual distribution setting (4 ms; at HZ=1000 the first
/// attempt just ends 3 ms before the race starts, at HZ=100 up to 6 ms after).
const KERNEL_TICK: Duration = Duration::from_millis(4);

/// Below this attempt delay a blocking connect races at once (see `connect`).
/// (A send timeout is rounded up to the kernel's tick, 4 ms at HZ=250: fine from 10 ms on, the
/// least delay RFC 8305 and the adaptive delay allow.)
const SHORTEST_FIRST_ATTEMPT: Duration = Duration::from_millis(10);

/// After the first attempt of a blocking connect.
pub fn after_first(
    s: &'static State,
    mut first: Box<First>,
    result: Result<(), c_int>,
) -> Decision {
    // The program's timeout goes back now.
    first.restore_timeout();
    if result.is_ok() {
        if first.news {
            let elapsed = first.started.elapsed();
            let rtt = rtt_if_wanted(s, first.fd, first.addr);
            record(
                s,
                &first.known.name,
                &[dial::Outcome::connected(first.addr, elapsed, rtt)],
            );
        }
        return Decision::Return(0, 0);
    }
    let elapsed = first.started.elapsed();
    let addr = first.addr;
    let own_deadline = first.own.map(|o| first.started + o);
    let pending = matches!(result, Err(libc::EINPROGRESS) | Err(libc::EINTR));
    if let Err(e) = result {
        if !pending && !is_dead_address_error(e) {
            return Decision::Return(-1, e);
        }
    }
    if !first.same_socket() {
        // Closed by another thread meanwhile (and the number maybe reused): not dnsfo's to
        // touch any more.
        return Decision::Return(-1, result.err().unwrap_or(libc::EBADF));
    }
    let steerable = is_stream(first.fd) && first.prepare_race(s);
    match sys::dup_above(first.fd, steer::OWN_FD_MIN) {
        Ok(h) if steerable => first.handle = Some(h),
        Ok(h) => {
            sys::close_fd(h);
            return Decision::Return(-1, result.err().unwrap_or(libc::EBADF));
        }
        // No fd to steer with: the kernel finishes (a blocking connect waits for the attempt
        // under way) or reports, as without dnsfo.
        Err(_) if pending => return Decision::PassThrough,
        Err(_) => return Decision::Return(-1, result.err().unwrap_or(libc::EBADF)),
    }
    let mut outcomes = Vec::new();
    let still_going = match result {
        Ok(()) => return Decision::Return(0, 0),
        Err(libc::EINPROGRESS) => {
            if first.own.is_some_and(|o| o <= first.delay) {
                // The program's own timeout ran out: exactly what the kernel says then; the
                // failover goes on in the background, as the kernel's connect would.
                let e = background(s, &mut first, Some(addr), outcomes, libc::EINPROGRESS);
                return Decision::Return(-1, e);
            }
            true
        }
        Err(libc::EINTR) => {
            if first.own.is_some() || sys::any_handler_without_restart() {
                let e = background(s, &mut first, Some(addr), outcomes, libc::EINTR);
                return Decision::Return(-1, e);
            }
            // SA_RESTART: the kernel would go on waiting; so does the race.
            true
        }
        Err(e) if is_dead_address_error(e) => {
            outcomes.push(dial::Outcome::settled(first.addr, Err(e), elapsed));
            false
        }
        Err(e) => return Decision::Return(-1, e),
    };
    let own = still_going.then_some(first.addr);
    record(s, &first.known.name, &outcomes);
    let steer = match new_steer(s, &mut first, own, outcomes) {
        Ok(steer) => steer,
        Err(e) => return Decision::Return(-1, e),
    };
    let flags = first.status_flags;
    Decision::Blocking(Box::new(Blocking::new(steer, flags, own_deadline)))
}

fn new_steer(
    s: &State,
    first: &mut First,
    own: Option<SocketAddr>,
    outcomes: Vec<dial::Outcome>,
) -> Result<Box<Steer>, c_int> {
    let errno = outcomes
        .first()
        .and_then(|o| o.result.err())
        .unwrap_or(libc::ECONNREFUSED);
    let Some(race) = first.race.take() else {
        return Err(errno);
    };
    let RaceParts { tmpl, queue } = *race;
    Steer::new(
        Start {
            fd: first.fd,
            handle: first.handle.take(),
            tmpl,
            name: first.known.name.to_string(),
            chosen: first.chosen,
            own,
            own_started: Some(first.started),
            queue,
            outcomes,
            delay: first.delay,
            cap: s.config.connect_timeout.map(|t| first.started + t),
            budget: s.config.failover_budget,
            reresolve: Some(reresolve_later),
            wait_for_dns: true,
        },
        Instant::now(),
    )
    .map(Box::new)
    .map_err(|_| errno)
}

/// A blocking connect stopped early (signal, the program's timeout) with an attempt under way:
/// the steer goes on in the background. Returns the errno the program sees.
fn background(
    s: &'static State,
    first: &mut First,
    own: Option<SocketAddr>,
    outcomes: Vec<dial::Outcome>,
    errno: c_int,
) -> c_int {
    if let Ok(mut steer) = new_steer(s, first, own, outcomes) {
        steer.begin(Instant::now());
        handover(s, steer);
    }
    errno
}

/// Puts a steer on its fd's record and asks the reactor to look after it. Dropped (the
/// program's socket simply goes on) when that cannot be done.
pub fn handover(s: &'static State, steer: Box<Steer>) {
    let (fd, id) = (steer.fd, steer.id);
    let at = steer.wake_at().unwrap_or_else(Instant::now);
    let mut steer = Some(steer);
    let placed = FDS.update(fd, |st| {
        if st.steer.is_none() {
            st.steer = steer.take();
        }
        steer.is_none()
    }) == Some(true);
    if placed && !reactor::schedule(s, fd, id, at, finish) {
        // No reactor: nobody would advance it; the program's own attempt simply goes on.
        drop(FDS.update(fd, |st| st.steer.take()));
    }
}

/// A non-blocking connect. Attempts that settle at once (a refusal on this host, say) are made
/// right here on the program's socket, which the program cannot observe before `connect`
/// returns; when the program's attempt is still pending, a steer takes it from there (the
/// reactor). Either way the program gets what libc would have given it (`EINPROGRESS`).
fn nonblocking(
    s: &'static State,
    fd: c_int,
    tmpl: Template,
    name: String,
    addr: SocketAddr,
    mut queue: VecDeque<SocketAddr>,
) -> Decision {
    let mut outcomes = Vec::new();
    while let Some(c) = queue.pop_front() {
        let t = Instant::now();
        let raw = RawAddr::for_domain(c, tmpl.domain);
        match raw.map_or(Err(libc::EAFNOSUPPORT), |r| sys::connect_to(fd, &r)) {
            Ok(()) => {
                let rtt = rtt_if_wanted(s, fd, c);
                outcomes.push(dial::Outcome::connected(c, t.elapsed(), rtt));
                record(s, &name, &outcomes);
                return Decision::Return(0, 0);
            }
            Err(libc::EINPROGRESS) => match sys::tcp_state_rtt(fd) {
                Some((sys::tcp_state::CLOSE, _)) if !queue.is_empty() => {
                    // Refused on the spot: reading the error (the next connect returns it)
                    // resets the socket for the next address.
                    let e = match raw.map(|r| sys::connect_to(fd, &r)) {
                        Some(Err(e)) if e != libc::ECONNABORTED => e,
                        _ => libc::ECONNREFUSED,
                    };
                    outcomes.push(dial::Outcome::settled(c, Err(e), t.elapsed()));
                }
                Some((sys::tcp_state::CLOSE, _)) => {
                    // The last address failed too. DNS may name another (a steer asks, the
                    // failure held back a bounded while); else its error stays on the socket,
                    // as the kernel leaves it, for the program to read (translated to the
                    // error of its own address).
                    record(s, &name, &outcomes);
                    if steer_in_background(s, fd, &tmpl, &name, addr, c, &queue, &outcomes) {
                        return Decision::Return(-1, libc::EINPROGRESS);
                    }
                    outcomes.push(dial::Outcome::settled(
                        c,
                        Err(dial::ERROR_LEFT_UNREAD),
                        t.elapsed(),
                    ));
                    // The ones before were recorded just above (twice would double their
                    // dead-address backoff).
                    let slow = dead_after(s.config.attempt_delay);
                    record_with(s, &name, &outcomes, outcomes.len() - 1, slow);
                    if sys::canonical_ip(c.ip()) != sys::canonical_ip(addr.ip()) {
                        let e = errno_to_report(addr, &outcomes);
                        FDS.update(fd, |st| st.report = Some(e));
                    }
                    return Decision::Return(-1, libc::EINPROGRESS);
                }
                Some((sys::tcp_state::SYN_SENT, _)) | Some((sys::tcp_state::SYN_RECV, _)) => {
                    // What failed on the spot is known now: later connects (a program that
                    // fails over by itself, say) plan around it at once.
                    record(s, &name, &outcomes);
                    steer_in_background(s, fd, &tmpl, &name, addr, c, &queue, &outcomes);
                    return Decision::Return(-1, libc::EINPROGRESS);
                }
                info => {
                    // Connected already (loopback): the program sees POLLOUT at once. The
                    // read that said so carries the RTT (recorded only when a sample is due).
                    let rtt = info.and_then(|(_, rtt)| rtt);
                    outcomes.push(dial::Outcome::connected(c, t.elapsed(), rtt));
                    record(s, &name, &outcomes);
                    return Decision::Return(-1, libc::EINPROGRESS);
                }
            },
            Err(e) if dial::is_socket_error(e) || e == libc::ECONNABORTED => {
                record(s, &name, &outcomes);
                return Decision::Return(-1, e);
            }
            Err(e) => {
                outcomes.push(dial::Outcome::settled(c, Err(e), t.elapsed()));
                if queue.is_empty() {
                    record(s, &name, &outcomes);
                    return Decision::Return(-1, errno_to_report(addr, &outcomes));
                }
            }
        }
    }
    Decision::Return(-1, errno_to_report(addr, &outcomes))
}

/// Steers the program's socket from its attempt to `own` (pending, or failed on the spot with
/// its error unread) on. `false` when no steer could be made: the socket goes on alone.
#[allow(clippy::too_many_arguments)]
fn steer_in_background(
    s: &'static State,
    fd: c_int,
    tmpl: &Template,
    name: &str,
    chosen: SocketAddr,
    own: SocketAddr,
    queue: &VecDeque<SocketAddr>,
    outcomes: &[dial::Outcome],
) -> bool {
    if !sys::fd_headroom(fd, FD_HEADROOM) {
        // The program is near its fd limit: a steer would hold fds it may need next.
        log::debug!("fd {fd}: too close to RLIMIT_NOFILE to steer");
        return false;
    }
    let now = Instant::now();
    let start = Start {
        fd,
        handle: None,
        tmpl: tmpl.clone(),
        name: name.to_string(),
        chosen,
        own: Some(own),
        own_started: None,
        queue: queue.clone(),
        outcomes: outcomes.to_vec(),
        delay: delay_for(s, name, std::iter::once(own).chain(queue.iter().copied())),
        cap: s.config.connect_timeout.map(|t| now + t),
        budget: s.config.failover_budget,
        reresolve: Some(reresolve_later),
        wait_for_dns: false,
    };
    let mut steer = match Steer::new(start, now) {
        Ok(steer) => Box::new(steer),
        Err(e) => {
            log::debug!("fd {fd}: cannot steer: {}", sys::errno_name(e));
            return false;
        }
    };
    // A failed attempt moves on (or asks DNS) right away.
    match steer.advance(now) {
        Status::Going => {
            log::debug!("{}: fd {fd} connecting to {own}, steered", steer.name);
            handover(s, steer);
        }
        Status::Failed { report } => {
            if let Some(e) = report {
                FDS.update(fd, |st| st.report = Some(e));
            }
            finish(s, steer);
        }
        _ => finish(s, steer),
    }
    true
}

/// A `connect` on a socket whose steer is still in flight: the kernel's answer for a socket
/// that is connecting (`EALREADY`), or, when the steer has settled, whatever the kernel says now
/// (0 once, then `EISCONN`; or the failure). A blocking socket waits, as the kernel's connect
/// does.
fn repeated(s: &'static State, fd: c_int) -> Option<Decision> {
    match advance(s, fd)? {
        Status::Going => {
            let nonblocking =
                sys::fcntl_get(fd, libc::F_GETFL).map_or(true, |f| f & libc::O_NONBLOCK != 0);
            if nonblocking {
                Some(Decision::Return(-1, libc::EALREADY))
            } else {
                Some(Decision::AwaitSteer)
            }
        }
        _ => None,
    }
}

/// Advances the steer on `fd`, finishing it when it settled. `None`: no steer there.
pub fn advance(s: &'static State, fd: c_int) -> Option<Status> {
    let now = Instant::now();
    let (status, done) = FDS.locked(fd, |slot| {
        let slot = slot.as_deref_mut()?;
        let status = slot.steer.as_deref_mut()?.advance(now);
        let done = if status.settled() {
            slot.take_settled()
        } else {
            None
        };
        Some((status, done))
    })?;
    if let Some(steer) = done {
        finish(s, steer);
    }
    Some(status)
}

/// [`advance`] for a hook the program is waiting in (a wait, `getsockopt(SO_ERROR)`): when the
/// steer holds the socket's failure back while DNS is asked, the program waits for that answer
/// (at most `steer::DNS_WAIT_WHEN_FAILED`), as it would wait for an attempt's outcome.
pub fn advance_for_program(s: &'static State, fd: c_int) -> Option<Status> {
    let mut status = advance(s, fd)?;
    for _ in 0..1000 {
        let hold = FDS
            .update(fd, |st| st.steer.as_ref().and_then(|x| x.holding_for_dns()))
            .flatten();
        let Some(until) = hold else { break };
        let now = Instant::now();
        if now >= until {
            // Time is up: this advance gives up on DNS and lets the failure through.
            status = advance(s, fd).unwrap_or(status);
            break;
        }
        std::thread::sleep((until - now).min(DNS_HOLD_STEP));
        status = advance(s, fd).unwrap_or(status);
    }
    Some(status)
}

/// How often a program held for DNS looks for the answer.
const DNS_HOLD_STEP: Duration = Duration::from_millis(1);

/// What a wait does with an event on a steered socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not a steered socket: the event stands.
    Keep,
    /// The event was an intermediate failure (or dnsfo's own abort of an attempt) that the
    /// steer has moved past, and the socket is ready for nothing now: hold it back.
    Hide,
    /// The socket's readiness now (the event's own bits may be stale).
    Now(i16),
}

/// How long a wait may give the process it was forked from to make the next attempt on a
/// socket both share, when it caught the instant in between.
const COPY_GRACE: Duration = Duration::from_millis(5);

/// Judges an event (with error or hang-up bits, or any bits for `select`) on `fd`, a steered
/// socket or a copy of one, here or in the process this one was forked from; `interest` is what
/// the program waits for (poll bits).
pub fn judge(s: &'static State, fd: c_int, interest: i16) -> Verdict {
    let mut involved = advance_for_program(s, fd).is_some();
    if !involved {
        if let Some(id) = sys::file_id(fd) {
            let owner = crate::fdtable::special_fds().into_iter().find(|&f| {
                FDS.update(f, |st| {
                    st.steer.as_ref().is_some_and(|x| x.ident == Some(id))
                }) == Some(true)
            });
            if let Some(f) = owner {
                // A copy of a socket steered here (a dup under another number).
                advance(s, f);
                involved = true;
            } else {
                match crate::copies::marked(id) {
                    Some(crate::copies::Mark::Steering) => {
                        // Steered by the process this one was forked from: it makes the next
                        // attempt right after the abort this wait may have caught.
                        involved = true;
                        let until = Instant::now() + COPY_GRACE;
                        while sys::tcp_state(fd) == Some(sys::tcp_state::CLOSE)
                            && crate::copies::marked(id) == Some(crate::copies::Mark::Steering)
                            && Instant::now() < until
                        {
                            std::thread::sleep(Duration::from_micros(100));
                        }
                    }
                    // Its steer just ended: the event's bits may be those of an instant
                    // before.
                    Some(crate::copies::Mark::Settled) => involved = true,
                    None => {}
                }
            }
        }
    }
    if !involved {
        log::trace!("wait: fd {fd} not steered; event stands");
        return Verdict::Keep;
    }
    let v = match sys::ready_now(fd, interest | libc::POLLERR | libc::POLLHUP) {
        0 => Verdict::Hide,
        now => Verdict::Now(now),
    };
    log::trace!("wait: fd {fd} steered: {v:?}");
    v
}

/// The errno the program must be told instead of the kernel's, once, after a steer failed.
pub fn take_report(fd: c_int) -> Option<c_int> {
    FDS.update(fd, |st| {
        if st.steer.is_some() {
            None
        } else {
            st.report.take()
        }
    })
    .flatten()
}

/// The program ends the connect itself (`close`, `dup2` onto the fd, `shutdown`,
/// `connect(AF_UNSPEC)`): its steer stops, and the socket is left as the program leaves it.
/// `forget` also drops the fd's record (the number is about to be something else).
pub fn program_ends(s: &'static State, fd: c_int, forget: bool) {
    let taken = FDS.locked(fd, |slot| {
        let st = slot.as_deref_mut()?;
        if st.steer.is_some() && sys::noted_pid() != sys::getpid() {
            // A vfork child (it shares dnsfo's memory, not its fds): the steer is the
            // parent's, and its copy of the fd is the child's business.
            return None;
        }
        let steer = st.steer.take().map(|mut steer| {
            steer.release();
            steer
        });
        st.report = None;
        if forget {
            *slot = None;
        }
        steer
    });
    if let Some(steer) = taken {
        finish(s, steer);
    }
}

/// The program's fd no longer holds the steered socket (closed without dnsfo seeing it): the
/// steer stops as if the program had closed it.
pub fn orphaned(s: &State, mut steer: Box<Steer>) {
    steer.release();
    finish(s, steer);
}

/// Before `exec`: a steer cannot survive the program image (its thread and memory go), so the
/// inheritable steered sockets are given time to settle first, up to the budget.
pub fn before_exec(s: &'static State) {
    let until = Instant::now() + s.config.failover_budget.min(Duration::from_secs(5));
    for fd in crate::fdtable::special_fds() {
        let inherited = sys::fcntl_get(fd, libc::F_GETFD).is_ok_and(|f| f & libc::FD_CLOEXEC == 0);
        if !inherited {
            continue;
        }
        for _ in 0..10_000 {
            if !matches!(advance(s, fd), Some(Status::Going)) || Instant::now() >= until {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Records what a settled steer found out, logs it, and closes dnsfo's fds of it.
pub fn finish(s: &State, steer: Box<Steer>) {
    match steer.status() {
        // A failover is logged (at info) where it is recorded, whatever path made it.
        Status::Failed { report } => log::debug!(
            "{}: connect on fd {} failed everywhere ({})",
            steer.name,
            steer.fd,
            sys::errno_name(report.unwrap_or(0))
        ),
        Status::Released => log::debug!("{}: fd {} left to the kernel", steer.name, steer.fd),
        _ => {}
    }
    let slow = dead_after(steer.delay());
    record_with(s, &steer.name, &steer.outcomes, steer.recorded, slow);
}

/// The program's `SO_SNDTIMEO`, as it set it through `setsockopt` (either variant).
fn recorded_send_timeout(fdstate: &FdState) -> Option<(c_int, Vec<u8>)> {
    fdstate
        .opts
        .iter()
        .rev()
        .find(|o| {
            o.level == libc::SOL_SOCKET
                && (o.name == libc::SO_SNDTIMEO || o.name == SO_SNDTIMEO_NEW)
        })
        .map(|o| (o.name, o.value.clone()))
}

fn timeval_of(bytes: &[u8]) -> Option<Duration> {
    let bytes: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
    let secs = i64::from_ne_bytes(bytes[..8].try_into().ok()?);
    let usecs = i64::from_ne_bytes(bytes[8..].try_into().ok()?);
    let d = Duration::from_secs(secs.max(0) as u64) + Duration::from_micros(usecs.max(0) as u64);
    (!d.is_zero()).then_some(d)
}

fn timeval_bytes(d: Duration) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(d.as_secs() as i64).to_ne_bytes());
    b[8..].copy_from_slice(&i64::from(d.subsec_micros()).to_ne_bytes());
    b
}

/// The name a connect to `ip` belongs to, and that name's addresses, when that name is certain
/// (never wrong): `ip` belongs to one learned name only, or the program passes a sockaddr dnsfo
/// handed out for the name in a `getaddrinfo` answer it has not freed yet. Otherwise `None`:
/// the connect passes through.
fn lookup(s: &State, ip: IpAddr) -> Option<Arc<Known>> {
    let reg = s.registry.read();
    if !reg.knows(&ip) {
        return None;
    }
    reg.name_for(&ip, crate::learn::connect_addr)
}

/// The plan for this connect: one look at the health memory.
fn plan_for(s: &State, known: &Known, chosen: IpAddr, port: u16) -> Vec<IpAddr> {
    let now = Instant::now();
    let h = s.health.read();
    plan::plan(&Input {
        chosen,
        known: &known.addrs,
        winner: h.winner(&known.name, port),
        dead_until: &|ip| h.dead_until(&SocketAddr::new(ip, port), now),
    })
}

fn is_stream(fd: c_int) -> bool {
    sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE) == Ok(libc::SOCK_STREAM)
}

fn is_fast_open(o: &crate::fdtable::SockOpt) -> bool {
    o.level == libc::IPPROTO_TCP
        && o.name == TCP_FASTOPEN_CONNECT
        && o.value.iter().any(|b| *b != 0)
}

/// What a probe must look like, read from the program's socket.
fn capture(fd: c_int, domain: c_int, status_flags: c_int) -> Option<Template> {
    // The record could outlive its socket if the program closed it behind libc's back. A
    // blocking connect checks once it needs a race (`after_first`): a healthy one never does.
    if status_flags & libc::O_NONBLOCK != 0 && !is_stream(fd) {
        return None;
    }
    let v6only = domain == libc::AF_INET6
        && sys::getsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY).unwrap_or(0) != 0;
    FDS.update(fd, |st| Template {
        domain,
        protocol: st.protocol,
        opts: st.opts.clone(),
        bind: st.bind,
        v6only,
        status_flags,
        cloexec: false,
    })
}

/// The planned addresses the program's socket can reach (`plan::reachable`).
fn reachable(
    tmpl: &Template,
    order: &[IpAddr],
    chosen: IpAddr,
    addr: SocketAddr,
) -> Vec<SocketAddr> {
    plan::reachable(tmpl.reach(), order, chosen, addr)
}

/// Asks DNS again for a steer, in the background: the answer is recorded, and handed to the
/// steer through `cell`.
fn reresolve_later(name: &str, cell: steer::Answer) {
    let Some(s) = lifecycle::get() else {
        *cell.lock() = Some(None);
        return;
    };
    let owned = name.to_string();
    resolver::resolve_later(&s.config, name, move |answer| {
        let addrs = answer.map(|a| {
            if let Some(s) = lifecycle::get() {
                s.registry
                    .write()
                    .learn(&owned, Scope::Both, &a.addrs, Some(a.valid_until));
            }
            a.addrs
        });
        *cell.lock() = Some(addrs);
    });
}

pub(crate) fn record(s: &State, name: &str, outcomes: &[dial::Outcome]) {
    let slow = dead_after(s.config.attempt_delay);
    record_with(s, name, outcomes, 0, slow);
}

/// The attempt delay for a connect to these candidates: fixed, or (adaptive) from the RTTs
/// measured for them (`plan::attempt_delay`).
fn delay_for(s: &State, name: &str, candidates: impl IntoIterator<Item = SocketAddr>) -> Duration {
    if let Some(fixed) = s.config.fixed_delay(name) {
        return fixed;
    }
    delay_with(&s.health.read(), &s.config, name, candidates)
}

/// [`delay_for`] with the health memory already read.
fn delay_with(
    h: &crate::health::Health,
    c: &crate::config::Config,
    name: &str,
    candidates: impl IntoIterator<Item = SocketAddr>,
) -> Duration {
    if let Some(fixed) = c.fixed_delay(name) {
        return fixed;
    }
    plan::attempt_delay(h.rtt_of(candidates), c.min_attempt_delay, c.attempt_delay)
}

/// The kernel's RTT for the connected `fd` when the health memory wants a sample of `addr`
/// (now and then, not on every connect: one `TCP_INFO` read).
fn rtt_if_wanted(s: &State, fd: c_int, addr: SocketAddr) -> Option<plan::Rtt> {
    if !s.config.adaptive || !s.health.read().rtt_wanted(&addr, Instant::now()) {
        return None;
    }
    sys::tcp_state_rtt(fd).and_then(|(_, rtt)| rtt)
}

/// Records a connect's outcomes: the winner (shared with later processes after a failover) and
/// stats from all of them, the health memory from those at `from` on (the ones before were
/// recorded as soon as they were known). An attempt abandoned after `slow` counts as dead.
fn record_with(s: &State, name: &str, outcomes: &[dial::Outcome], from: usize, slow: Duration) {
    let now = Instant::now();
    if let Some((from, to)) = note_stats(outcomes) {
        // Every path ends here (blocking race, steer, attempts settled inside `connect`): the
        // one place that says so at info.
        log::info!("{name}: {from} failed over to {to}");
    }
    share_winner(s, name, outcomes, slow);
    let news = &outcomes[from.min(outcomes.len())..];
    if s.health.read().unchanged_by(name, news, now) {
        return;
    }
    for o in news {
        let ms = o.elapsed.as_secs_f64() * 1000.0;
        match o.result {
            Ok(()) => log::debug!("connect {name} {}: connected in {ms:.1} ms", o.addr),
            Err(_) if o.abandoned => log::debug!(
                "connect {name} {}: no answer after {ms:.1} ms, abandoned",
                o.addr
            ),
            Err(e) => log::debug!(
                "connect {name} {}: {} after {ms:.1} ms",
                o.addr,
                sys::errno_name(e)
            ),
        }
    }
    let measured = s
        .health
        .write()
        .record_outcomes(name, news, slow, s.config.dead_ttl, now);
    for (addr, rtt) in measured {
        share_rtt(s, name, addr, rtt);
    }
}

/// A process shares an address's RTT at most this often.
const RTT_SHARE_EVERY: Duration = Duration::from_secs(60);

/// Tells later processes an address's RTT (their first attempt delay), when the shared cache
/// does not have it yet or has a figure more than twice off.
fn share_rtt(s: &State, name: &str, addr: SocketAddr, rtt: plan::Rtt) {
    let Some(cache) = &s.cache else { return };
    let now = Instant::now();
    {
        // Another thread is at it: skip (a hint, not a must).
        let Some(mut cached) = s.cached.try_lock() else {
            return;
        };
        if cached
            .rtt_shared
            .get(&addr)
            .is_some_and(|t| now.saturating_duration_since(*t) < RTT_SHARE_EVERY)
        {
            return;
        }
        let known = dnsfo_core::cache::rtts_for(&cached.entries, name, &[addr.ip()])
            .into_iter()
            .find(|e| e.port == addr.port())
            .and_then(|e| match e.kind {
                dnsfo_core::cache::Kind::Rtt { srtt_us, .. } => Some(srtt_us),
                _ => None,
            });
        if let Some(k) = known {
            let (a, b) = (u64::from(k).max(1), u64::from(rtt.srtt_us).max(1));
            if a.max(b) <= 2 * a.min(b) {
                return;
            }
        }
        if cached.rtt_shared.len() >= 1024 {
            cached.rtt_shared.clear();
        }
        cached.rtt_shared.insert(addr, now);
    }
    cache.store_rtt(name, addr.port(), addr.ip(), rtt.srtt_us, rtt.var_us);
}

/// After a failover, tells later processes which address won (they still use it only if their
/// own resolver returns it).
fn share_winner(s: &State, name: &str, outcomes: &[dial::Outcome], slow: Duration) {
    let Some(cache) = &s.cache else { return };
    if let Some((win, dead)) = failover_of(outcomes, slow) {
        cache.store_failover(name, win.port(), win.ip(), &dead, s.config.dead_ttl);
    }
}

/// Counts a failover (some address won after another failed) and the kernel timeout it
/// spared (estimated: a plain program would have waited the kernel's SYN timeout on its silent
/// address, less the time this connect took, its longest attempt).
/// Returns the failover (the first address that failed, the winner), if this was one.
fn note_stats(outcomes: &[dial::Outcome]) -> Option<(SocketAddr, SocketAddr)> {
    let win = outcomes.iter().find(|o| o.result.is_ok())?;
    let failed = outcomes
        .iter()
        .find(|o| o.result.is_err() && o.addr != win.addr)
        .map(|o| (o.addr, win.addr));
    if failed.is_some() {
        stats::add(&stats::FAILOVERS, 1);
    }
    let silent = outcomes.iter().filter(|o| o.abandoned).count() as u64;
    let spent = outcomes.iter().map(|o| o.elapsed).max().unwrap_or_default();
    let spent = spent.as_millis() as u64;
    stats::add(&stats::SAVED_MS, stats::saved_by_failover_ms(silent, spent));
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_timeout_roundtrip() {
        let mut st = FdState::default();
        assert_eq!(recorded_send_timeout(&st), None);
        st.record_opt(
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            &timeval_bytes(Duration::from_millis(300)),
        );
        let (name, v) = recorded_send_timeout(&st).unwrap();
        assert_eq!(name, libc::SO_SNDTIMEO);
        assert_eq!(timeval_of(&v), Some(Duration::from_millis(300)));
        st.record_opt(
            libc::SOL_SOCKET,
            SO_SNDTIMEO_NEW,
            &timeval_bytes(Duration::from_millis(700)),
        );
        let (name, v) = recorded_send_timeout(&st).unwrap();
        assert_eq!(
            name, SO_SNDTIMEO_NEW,
            "the variant the program used is kept"
        );
        assert_eq!(timeval_of(&v), Some(Duration::from_millis(700)));
        assert_eq!(timeval_of(&timeval_bytes(Duration::ZERO)), None);
    }
}
