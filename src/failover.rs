//! The connect operation: from a program's `connect(fd, addr)` to an outcome. Looks the address
//! up; goes straight to a known winner; otherwise asks the planner for the order and hands the
//! race to the dialer (blocking: in this thread; non-blocking: in the background), re-resolving
//! when every known address failed; records what happened in the health memory.
//!
//! Owns: the decision to pass through (the fast path) and the errno the program sees. Must
//! never: hold a lock while the dialer waits, or try an address that the registry did not list
//! for the name the program resolved.

use crate::dial::{self, background, Budget, Ended, Template};
use crate::plan::{self, Input};
use crate::registry::Scope;
use crate::resolver;
use crate::state::{self, State, FDS};
use crate::stats;
use crate::sys::{self, RawAddr};
use libc::c_int;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// What the hook does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Not dnsfo's business: call libc's `connect` unchanged.
    PassThrough,
    /// dnsfo handled the call: return this value with this errno (ignored on success).
    Return(c_int, c_int),
    /// Call libc's `connect`; if it fails because the address is dead, call [`after_failure`].
    Watch,
}

/// An attempt abandoned while still pending counts as a failure only when it had at least this
/// long (or the attempt delay, if longer) to answer.
const SLOW_IS_DEAD_MIN: Duration = Duration::from_millis(10);

/// `TCP_FASTOPEN_CONNECT` (linux/tcp.h): `connect` returns at once and the SYN leaves with the
/// first write, so a connect "success" proves nothing about the address. Such sockets are left
/// alone, so a dead address can never be remembered as a winner because of it.
const TCP_FASTOPEN_CONNECT: c_int = 30;

pub fn connect(s: &'static State, fd: c_int, addr: SocketAddr) -> Decision {
    if crate::fdtable::any_special() && FDS.update(fd, |st| st.race.is_some()) == Some(true) {
        // A connect is already under way on this fd (in the background).
        return Decision::Return(-1, libc::EALREADY);
    }
    let chosen = sys::canonical_ip(addr.ip());
    let Some((name, mut known)) = lookup(s, chosen) else {
        return Decision::PassThrough;
    };
    if known.len() < 2 && !s.registry.read().stale(&name, Instant::now()) {
        // A one-address name: nothing to race. libc connects; dnsfo looks again only if the
        // address turns out dead (re-resolution).
        return Decision::Watch;
    }
    // What the fast path needs of the socket, read in place (no copy of its record).
    let Some((domain, fast_open, own_timeout)) = FDS.update(fd, |st| {
        (
            st.domain,
            st.opts.iter().any(is_fast_open),
            recorded_send_timeout(st),
        )
    }) else {
        return Decision::PassThrough;
    };
    // An IPv4 address on an AF_INET6 socket (EINVAL) or an IPv6 one on an AF_INET socket
    // (EAFNOSUPPORT) is the program's mistake: libc must answer it, not a replacement socket.
    if addr.is_ipv4() != (domain == libc::AF_INET) || fast_open {
        return Decision::PassThrough;
    }
    let port = addr.port();
    // The planner would put a live known winner first: that case needs no plan at all.
    let winner = {
        let h = s.health.read();
        h.winner(&name, port).filter(|w| {
            known.contains(w)
                && h.dead_until(&SocketAddr::new(*w, port), Instant::now())
                    .is_none()
        })
    };
    if let Some(w) = winner {
        match to_known_winner(s, fd, domain, own_timeout, SocketAddr::new(w, port)) {
            Winner::Done(d) => return d,
            Winner::Race => {}
        }
    }
    let (mut order, winner) = plan_for(s, &name, chosen, &known, port);
    let Some(tmpl) = FDS.get(fd).and_then(|st| capture(fd, &st)) else {
        return Decision::PassThrough;
    };
    let blocking = tmpl.status_flags & libc::O_NONBLOCK == 0;
    if blocking && s.registry.read().stale(&name, Instant::now()) {
        // The answer dnsfo fetched earlier is past its TTL: refresh it first.
        if let Some(fresh) = reresolve(s, &name, resolver::MAX_WAIT) {
            known = fresh;
            order = plan_for(s, &name, chosen, &known, port).0;
        }
    }
    if order.len() < 2 && !blocking {
        return Decision::PassThrough;
    }
    stats::add(&stats::CONNECTS, 1);
    let candidates = reachable(&tmpl, &order, chosen, addr);
    if !blocking {
        return nonblocking(s, fd, tmpl, name, addr, candidates, winner);
    }
    blocking_connect(s, fd, &tmpl, &name, addr, &candidates)
}

/// How a connect straight to the known winner went.
enum Winner {
    /// Finished: this is the program's answer.
    Done(Decision),
    /// Not settled: the winner is still connecting on the program's socket (it becomes the
    /// race's first attempt), failed at once (now recorded dead, so the plan puts it last), or
    /// was not tried (non-blocking socket, other family). Race.
    Race,
}

/// The common case after a failover: the winner is known, so the connect goes straight to it
/// with no race at all, on the program's socket, costing two system calls more than libc
/// (`SO_SNDTIMEO` set to the attempt delay and back). Should the winner have gone silent since,
/// a blocking connect stops after the attempt delay and the race takes over; the program's own
/// `SO_SNDTIMEO` (as recorded) still ends it as the kernel would. A non-blocking connect answers
/// `EINPROGRESS` at once either way: with a known winner there is nothing to race.
fn to_known_winner(
    s: &State,
    fd: c_int,
    domain: c_int,
    own: Option<Duration>,
    to: SocketAddr,
) -> Winner {
    let same_family = match (domain, to.ip()) {
        (libc::AF_INET, IpAddr::V4(_)) | (libc::AF_INET6, IpAddr::V6(_)) => true,
        (libc::AF_INET6, IpAddr::V4(_)) => {
            sys::getsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY).unwrap_or(1) == 0
        }
        _ => false,
    };
    let delay = s.config.attempt_delay.max(Duration::from_millis(1));
    if !same_family || s.config.connect_timeout.is_some_and(|c| c < delay) {
        return Winner::Race;
    }
    let Some(raw) = RawAddr::for_domain(to, domain) else {
        return Winner::Race;
    };
    let limit = own.map_or(delay, |o| o.min(delay));
    let _ = sys::setsockopt_raw(
        fd,
        libc::SOL_SOCKET,
        libc::SO_SNDTIMEO,
        &timeval_bytes(limit),
    );
    let result = sys::connect_to(fd, &raw);
    let _ = sys::setsockopt_raw(
        fd,
        libc::SOL_SOCKET,
        libc::SO_SNDTIMEO,
        &timeval_bytes(own.unwrap_or_default()),
    );
    match result {
        Ok(()) => Winner::Done(Decision::Return(0, 0)),
        // The program's own timeout ran out: exactly what the kernel says then.
        // Either a non-blocking socket (whose connect never waits: that is its answer) or a
        // blocking one whose time ran out; only then is the socket's mode worth a system call.
        Err(libc::EINPROGRESS) => {
            let nonblocking =
                sys::fcntl_get(fd, libc::F_GETFL).is_ok_and(|f| f & libc::O_NONBLOCK != 0);
            if nonblocking || own.is_some_and(|o| o <= delay) {
                Winner::Done(Decision::Return(-1, libc::EINPROGRESS))
            } else {
                Winner::Race
            }
        }
        // A signal: the kernel restarts a connect without a timeout for SA_RESTART handlers.
        Err(libc::EINTR) if own.is_some() || sys::any_handler_without_restart() => {
            Winner::Done(Decision::Return(-1, libc::EINTR))
        }
        Err(libc::EINTR) => Winner::Race,
        Err(e) if is_dead_address_error(e) => {
            log::debug!("known winner {to} failed: {}", sys::errno_name(e));
            s.health
                .write()
                .record_failure_of_winner(to, s.config.dead_ttl, Instant::now());
            Winner::Race
        }
        Err(e) => Winner::Done(Decision::Return(-1, e)),
    }
}

/// The program's `SO_SNDTIMEO`, as it set it through `setsockopt`.
fn recorded_send_timeout(fdstate: &crate::fdtable::FdState) -> Option<Duration> {
    let o = fdstate
        .opts
        .iter()
        .find(|o| o.level == libc::SOL_SOCKET && o.name == libc::SO_SNDTIMEO)?;
    let bytes: [u8; 16] = o.value.get(..16)?.try_into().ok()?;
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

/// The name a connect to `ip` belongs to, and that name's addresses.
fn lookup(s: &State, ip: IpAddr) -> Option<(String, Vec<IpAddr>)> {
    let reg = s.registry.read();
    if !reg.knows(&ip) {
        return None;
    }
    state::with_recent_lookups(|recent| reg.name_for(&ip, recent))
}

/// The plan, and the known winner (if any) for (name, port): one look at the health memory.
fn plan_for(
    s: &State,
    name: &str,
    chosen: IpAddr,
    known: &[IpAddr],
    port: u16,
) -> (Vec<IpAddr>, Option<IpAddr>) {
    let now = Instant::now();
    let h = s.health.read();
    let winner = h.winner(name, port);
    let order = plan::plan(&Input {
        chosen,
        known,
        winner,
        dead_until: &|ip| h.dead_until(&SocketAddr::new(ip, port), now),
    });
    (order, winner)
}

fn is_fast_open(o: &crate::fdtable::SockOpt) -> bool {
    o.level == libc::IPPROTO_TCP
        && o.name == TCP_FASTOPEN_CONNECT
        && o.value.iter().any(|b| *b != 0)
}

/// What a replacement socket must look like, read from the program's socket.
fn capture(fd: c_int, fdstate: &crate::fdtable::FdState) -> Option<Template> {
    // The slot could outlive its socket if the program closed it behind libc's back.
    if sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE) != Ok(libc::SOCK_STREAM) {
        return None;
    }
    let status_flags = sys::fcntl_get(fd, libc::F_GETFL).ok()?;
    let fd_flags = sys::fcntl_get(fd, libc::F_GETFD).ok()?;
    let v6only = fdstate.domain == libc::AF_INET6
        && sys::getsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY).unwrap_or(0) != 0;
    Some(Template {
        domain: fdstate.domain,
        protocol: fdstate.protocol,
        opts: fdstate.opts.clone(),
        bind: fdstate.bind,
        v6only,
        status_flags,
        cloexec: fd_flags & libc::FD_CLOEXEC != 0,
    })
}

/// The planned addresses a socket like the program's can reach, with the program's port (and,
/// on its own address, its IPv6 flow label and scope).
fn reachable(
    tmpl: &Template,
    order: &[IpAddr],
    chosen: IpAddr,
    addr: SocketAddr,
) -> Vec<SocketAddr> {
    order
        .iter()
        .filter(|ip| **ip == chosen || tmpl.can_reach(**ip))
        .map(|&ip| {
            if ip == chosen {
                SocketAddr::new(ip, addr.port()).with_scope_of(addr)
            } else {
                SocketAddr::new(ip, addr.port())
            }
        })
        .collect()
}

/// Asks DNS afresh and records the answer; returns the name's addresses now.
fn reresolve(s: &State, name: &str, budget: Duration) -> Option<Vec<IpAddr>> {
    let answer = resolver::resolve_now(&s.config, name, budget)?;
    s.registry
        .write()
        .learn(name, Scope::Both, &answer.addrs, Some(answer.valid_until));
    Some(answer.addrs)
}

/// The budget of a blocking connect: the program's `SO_SNDTIMEO` (which ends it with
/// `EINPROGRESS`, as the kernel does) and `DNSFO_CONNECT_TIMEOUT_MS` (`ETIMEDOUT`).
fn budget(s: &State, fd: c_int) -> Budget {
    let now = Instant::now();
    let mut deadline: Option<(Instant, c_int)> =
        sys::send_timeout(fd).map(|t| (now + t, libc::EINPROGRESS));
    if let Some(cap) = s.config.connect_timeout {
        if deadline.is_none_or(|(d, _)| now + cap < d) {
            deadline = Some((now + cap, libc::ETIMEDOUT));
        }
    }
    Budget {
        delay: s.config.attempt_delay,
        deadline,
    }
}

/// A blocking connect raced in the program's thread. When every known address has failed (or
/// none answered within the attempt delay), DNS is asked once more and new addresses join the
/// race.
fn blocking_connect(
    s: &State,
    fd: c_int,
    tmpl: &Template,
    name: &str,
    addr: SocketAddr,
    candidates: &[SocketAddr],
) -> Decision {
    let budget = budget(s, fd);
    let tried: Vec<IpAddr> = candidates.iter().map(|c| c.ip()).collect();
    let mut refill = || -> Vec<SocketAddr> {
        let left = budget.deadline.map_or(resolver::MAX_WAIT, |(d, _)| {
            d.saturating_duration_since(Instant::now())
        });
        let Some(fresh) = reresolve(s, name, left) else {
            return Vec::new();
        };
        let new: Vec<SocketAddr> = fresh
            .into_iter()
            .filter(|ip| !tried.contains(ip) && tmpl.can_reach(*ip))
            .map(|ip| SocketAddr::new(ip, addr.port()))
            .collect();
        if !new.is_empty() {
            log::info!("{name}: DNS now also lists {new:?}");
        }
        new
    };
    let dialed = crate::guard::contain(|| {
        dial::blocking::dial_blocking(fd, tmpl, candidates, &budget, &mut refill)
    });
    let Some(report) = dialed else {
        // The dialer failed midway; its flag guard restored the fd. Let the kernel finish the
        // program's own connect: it waits for an attempt already under way, or makes the plain one.
        log::error!("dialer failed for {name}; completing the connect plainly");
        return match RawAddr::for_domain(addr, tmpl.domain).map(|r| sys::connect_to(fd, &r)) {
            Some(Ok(())) | Some(Err(libc::EISCONN)) => Decision::Return(0, 0),
            Some(Err(e)) => Decision::Return(-1, e),
            None => Decision::PassThrough,
        };
    };
    // Bookkeeping after the fact: a failure here must not turn into a second connect.
    let _ = crate::guard::contain(|| record(s, name, &report.outcomes));
    match report.ended {
        Ended::Connected(a) => {
            if a.ip() != sys::canonical_ip(addr.ip()) {
                log::info!("{name}: {addr} failed over to {a}");
            }
            Decision::Return(0, 0)
        }
        Ended::Stopped(e) => Decision::Return(-1, e),
        Ended::AllFailed => Decision::Return(-1, errno_to_report(addr, &report.outcomes)),
    }
}

/// Errors after which the address is dead and DNS may know better.
pub fn is_dead_address_error(e: c_int) -> bool {
    matches!(
        e,
        libc::ECONNREFUSED
            | libc::ETIMEDOUT
            | libc::EHOSTUNREACH
            | libc::ENETUNREACH
            | libc::EHOSTDOWN
            | libc::ENETDOWN
    )
}

/// libc's blocking connect to the only known address of a name failed with `errno`: remember
/// the address as dead and, if DNS now names other addresses, connect the same fd to one of them.
pub fn after_failure(s: &'static State, fd: c_int, addr: SocketAddr, errno: c_int) -> Decision {
    let fail = Decision::Return(-1, errno);
    let chosen = sys::canonical_ip(addr.ip());
    let Some((name, _)) = lookup(s, chosen) else {
        return fail;
    };
    s.health.write().record_failure(
        &name,
        SocketAddr::new(chosen, addr.port()),
        s.config.dead_ttl,
        Instant::now(),
    );
    let Some(fdstate) = FDS.get(fd) else {
        return fail;
    };
    let Some(tmpl) = capture(fd, &fdstate) else {
        return fail;
    };
    if tmpl.status_flags & libc::O_NONBLOCK != 0 {
        return fail;
    }
    let Some(fresh) = reresolve(s, &name, resolver::MAX_WAIT) else {
        return fail;
    };
    let (order, _) = plan_for(
        s,
        &name,
        fresh.first().copied().unwrap_or(chosen),
        &fresh,
        addr.port(),
    );
    let candidates: Vec<SocketAddr> = reachable(&tmpl, &order, chosen, addr)
        .into_iter()
        .filter(|c| c.ip() != chosen)
        .collect();
    if candidates.is_empty() {
        return fail;
    }
    log::info!("{name}: {addr} is dead; DNS now lists {candidates:?}");
    stats::add(&stats::CONNECTS, 1);
    match blocking_connect(s, fd, &tmpl, &name, addr, &candidates) {
        Decision::Return(0, _) => Decision::Return(0, 0),
        _ => fail,
    }
}

/// A non-blocking connect. Attempts that settle at once (a refusal on the local host, say) are
/// made right here on the program's socket, which the program cannot observe before `connect`
/// returns; the first one still pending moves the race to the background dialer, and the
/// program gets `EINPROGRESS` as libc would have given it. A known winner means no race at all.
fn nonblocking(
    s: &'static State,
    fd: c_int,
    tmpl: Template,
    name: String,
    addr: SocketAddr,
    candidates: Vec<SocketAddr>,
    winner: Option<IpAddr>,
) -> Decision {
    let mut queue: VecDeque<SocketAddr> = candidates.into();
    let mut outcomes = Vec::new();
    let mut program_attempt = None;
    while let Some(&c) = queue.front() {
        if tmpl.domain_for(c.ip()) != tmpl.domain {
            break;
        }
        queue.pop_front();
        let t = Instant::now();
        // A plain connect: after the program's own failed attempt the kernel answers
        // ECONNABORTED once, and so must dnsfo.
        let raw = RawAddr::for_domain(c, tmpl.domain);
        match raw.map_or(Err(libc::EAFNOSUPPORT), |r| sys::connect_to(fd, &r)) {
            Ok(()) => {
                outcomes.push(dial::Outcome::settled(c, Ok(()), t.elapsed()));
                record(s, &name, &outcomes);
                return Decision::Return(0, 0);
            }
            Err(libc::EINPROGRESS) => {
                program_attempt = Some(c);
                break;
            }
            Err(e) if dial::is_socket_error(e) || e == libc::ECONNABORTED => {
                record(s, &name, &outcomes);
                return Decision::Return(-1, e);
            }
            Err(e) => outcomes.push(dial::Outcome::settled(c, Err(e), t.elapsed())),
        }
    }
    let Some(first) = program_attempt.or_else(|| queue.front().copied()) else {
        // Every address failed before connect returned: libc would have said so at once, too.
        record(s, &name, &outcomes);
        return Decision::Return(-1, errno_to_report(addr, &outcomes));
    };
    if queue.is_empty() || (program_attempt.is_some() && Some(first.ip()) == winner) {
        // The last address, or the known winner, is connecting on the program's own socket:
        // nothing to race.
        record(s, &name, &outcomes);
        return Decision::Return(-1, libc::EINPROGRESS);
    }
    let start = background::Start {
        fd,
        tmpl,
        name: name.clone(),
        chosen: addr,
        queue,
        program_attempt,
        outcomes,
        delay: s.config.attempt_delay,
        deadline: s.config.connect_timeout.map(|t| Instant::now() + t),
    };
    // A panic in there may come after the placeholder went in: never connect a second time.
    let started = crate::guard::contain(|| background::start(s, start)).unwrap_or(true);
    if started || program_attempt.is_some() {
        // Started; or not (no reactor), and the program's own attempt simply goes on.
        Decision::Return(-1, libc::EINPROGRESS)
    } else {
        Decision::Return(-1, libc::ECONNREFUSED)
    }
}

/// The errno the program would have seen: that of its own choice when it was tried to the end,
/// else the first real failure.
pub(crate) fn errno_to_report(addr: SocketAddr, outcomes: &[dial::Outcome]) -> c_int {
    let chosen = sys::canonical_ip(addr.ip());
    let real = |o: &&dial::Outcome| {
        !o.abandoned && o.result.is_err() && o.result != Err(dial::ERROR_LEFT_UNREAD)
    };
    outcomes
        .iter()
        .filter(real)
        .find(|o| o.addr.ip() == chosen)
        .or_else(|| outcomes.iter().find(real))
        .and_then(|o| o.result.err())
        .unwrap_or(libc::ECONNREFUSED)
}

pub(crate) fn record(s: &State, name: &str, outcomes: &[dial::Outcome]) {
    let now = Instant::now();
    note_stats(outcomes);
    share_winner(s, name, outcomes);
    let slow = s.config.attempt_delay.max(SLOW_IS_DEAD_MIN);
    let mut h = s.health.write();
    for o in outcomes {
        let ms = o.elapsed.as_secs_f64() * 1000.0;
        match o.result {
            Ok(()) => {
                log::debug!("connect {name} {}: connected in {ms:.1} ms", o.addr);
                h.record_success(name, o.addr);
            }
            Err(e) if o.abandoned => {
                log::debug!(
                    "connect {name} {}: no answer after {ms:.1} ms, abandoned",
                    o.addr
                );
                if o.elapsed >= slow {
                    h.record_failure(name, o.addr, s.config.dead_ttl, now);
                }
                let _ = e;
            }
            Err(e) => {
                log::debug!(
                    "connect {name} {}: {} after {ms:.1} ms",
                    o.addr,
                    sys::errno_name(e)
                );
                h.record_failure(name, o.addr, s.config.dead_ttl, now);
            }
        }
    }
}

/// After a failover, tells later processes which address won (they still use it only if their
/// own resolver returns it).
fn share_winner(s: &State, name: &str, outcomes: &[dial::Outcome]) {
    let Some(cache) = &s.cache else { return };
    let Some(win) = outcomes.iter().find(|o| o.result.is_ok()) else {
        return;
    };
    if outcomes.iter().any(|o| o.result.is_err()) {
        cache.store(name, win.addr.port(), win.addr.ip(), s.config.dead_ttl);
    }
}

/// Counts a failover (some address won, but not the first one tried) and the kernel timeouts it
/// spared: every silent address that was abandoned would have cost a plain program ~127 s.
fn note_stats(outcomes: &[dial::Outcome]) {
    let Some(win) = outcomes.iter().find(|o| o.result.is_ok()) else {
        return;
    };
    let failed_first = outcomes
        .iter()
        .any(|o| o.result.is_err() && o.addr != win.addr);
    if failed_first {
        stats::add(&stats::FAILOVERS, 1);
    }
    let silent = outcomes.iter().filter(|o| o.abandoned).count() as u64;
    let spent = win.elapsed.as_millis() as u64;
    stats::add(
        &stats::SAVED_MS,
        silent.min(1) * stats::KERNEL_SYN_TIMEOUT_MS.saturating_sub(spent),
    );
}

trait WithScope {
    fn with_scope_of(self, other: SocketAddr) -> SocketAddr;
}

impl WithScope for SocketAddr {
    /// Keeps the program's IPv6 flow label and scope id on its own address.
    fn with_scope_of(self, other: SocketAddr) -> SocketAddr {
        match (self, other) {
            (SocketAddr::V6(mut a), SocketAddr::V6(o)) if IpAddr::V6(*o.ip()) == self.ip() => {
                a.set_flowinfo(o.flowinfo());
                a.set_scope_id(o.scope_id());
                SocketAddr::V6(a)
            }
            _ => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(a: &str, r: Result<(), c_int>, abandoned: bool) -> dial::Outcome {
        dial::Outcome {
            addr: a.parse().unwrap(),
            result: r,
            elapsed: Duration::ZERO,
            abandoned,
        }
    }

    #[test]
    fn send_timeout_roundtrip() {
        let mut st = crate::fdtable::FdState::default();
        assert_eq!(recorded_send_timeout(&st), None);
        st.record_opt(
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            &timeval_bytes(Duration::from_millis(300)),
        );
        assert_eq!(recorded_send_timeout(&st), Some(Duration::from_millis(300)));
        st.record_opt(
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            &timeval_bytes(Duration::ZERO),
        );
        assert_eq!(recorded_send_timeout(&st), None);
    }

    #[test]
    fn reports_the_programs_own_error() {
        let outs = [
            o("127.0.0.3:80", Err(libc::EHOSTUNREACH), false),
            o("127.0.0.2:80", Err(libc::ECONNREFUSED), false),
        ];
        assert_eq!(
            errno_to_report("127.0.0.2:80".parse().unwrap(), &outs),
            libc::ECONNREFUSED
        );
        assert_eq!(
            errno_to_report("127.0.0.9:80".parse().unwrap(), &outs),
            libc::EHOSTUNREACH
        );
        let outs = [
            o("127.0.0.2:80", Err(libc::ETIMEDOUT), true),
            o("127.0.0.3:80", Err(libc::ENETUNREACH), false),
        ];
        assert_eq!(
            errno_to_report("127.0.0.2:80".parse().unwrap(), &outs),
            libc::ENETUNREACH
        );
    }
}
