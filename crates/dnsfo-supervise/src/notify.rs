//! One notified `connect`, from the kernel's notification to its answer: whether the
//! supervisor acts on it at all (the core's `route::route`, with the facts read from the
//! program's socket), and if so the plan, the race (`steer`) and what the program is told.
//!
//! Every connect gets exactly one answer: the kernel's own (`CONTINUE`, the common case: an
//! address of no multi-address name costs reading the sockaddr and one look-up), or the race's
//! result. A race runs in a thread of its own while the program's connect is held (a blocking
//! connect waits as it would in the kernel; a non-blocking one is held until the race ends, so
//! the program never sees an intermediate failure or a moved socket).
//!
//! Owns: the notification protocol's rules (validity checks before and after reading the
//! program's memory and taking its socket). Must never: answer twice, leave a connect
//! unanswered, or touch a socket before recording it for the keeper.

use crate::forward::Forwarder;
use crate::keeper::Slots;
use crate::state::State;
use crate::steer::{Program, Race};
use crate::sys::{self, Fd, Notif};
use dnsfo_core::outcome::canonical_ip;
use dnsfo_core::plan::{self, Input, Reach};
use dnsfo_core::registry::Known;
use dnsfo_core::route::{self, Route};
use libc::c_int;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Races at once at most; a connect beyond that is let through (as without dnsfo).
const MAX_RACES: usize = 128;
/// `TCP_FASTOPEN_CONNECT` (linux/tcp.h).
const TCP_FASTOPEN_CONNECT: c_int = 30;
/// `tcpi_state` of a socket that has not connected (`TCP_CLOSE`).
const TCP_CLOSE: u8 = 7;

pub struct Supervisor {
    pub listener: c_int,
    pub state: Arc<State>,
    pub slots: &'static Slots,
    pub forwarder: Option<Arc<Forwarder>>,
    races: AtomicUsize,
}

impl Supervisor {
    pub fn new(
        listener: c_int,
        state: Arc<State>,
        slots: &'static Slots,
        forwarder: Option<Arc<Forwarder>>,
    ) -> Supervisor {
        Supervisor {
            listener,
            state,
            slots,
            forwarder,
            races: AtomicUsize::new(0),
        }
    }

    fn pass(&self, id: u64) {
        let _ = sys::notif_continue(self.listener, id);
    }

    /// Handles one notification (in the receiving thread: quick, or handed to a race thread).
    pub fn handle(self: &Arc<Self>, n: Notif) {
        self.slots.received(n.id);
        if n.data.nr != crate::filter::NR_CONNECT {
            return self.pass(n.id);
        }
        let fd = n.data.args[0] as i32;
        let len = (n.data.args[2] as u32).min(128) as usize;
        let mut bytes = [0u8; 128];
        if sys::read_memory(n.pid, n.data.args[1], &mut bytes[..len]).is_err() {
            return self.pass(n.id);
        }
        // What was read belongs to the connect still waiting (not to a reused thread).
        if !sys::notif_id_valid(self.listener, n.id) {
            return;
        }
        let Some(dest) = sys::sockaddr_of(&bytes[..len]) else {
            return self.pass(n.id);
        };
        if dest.port() == 53 {
            if let Some(f) = &self.forwarder {
                return self.relay_dns(&n, fd, dest, f);
            }
        }
        let Some(known) = self.state.name_for(canonical_ip(dest.ip())) else {
            return self.pass(n.id);
        };
        if known.addrs.len() < 2 || self.state.config.excluded(&known.name) {
            return self.pass(n.id);
        }
        if self.races.fetch_add(1, Ordering::SeqCst) >= MAX_RACES {
            self.races.fetch_sub(1, Ordering::SeqCst);
            return self.pass(n.id);
        }
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("dnsfo-race".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                let mut held = Held::new(&me, n.id);
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    me.race(&mut held, &n, fd, dest, &known)
                }));
                drop(held);
                me.races.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            self.races.fetch_sub(1, Ordering::SeqCst);
            self.pass(n.id);
        }
    }

    /// A UDP socket connected to a nameserver: through the relay, which learns the answers.
    fn relay_dns(&self, n: &Notif, fd: c_int, ns: SocketAddr, f: &Forwarder) {
        let Some(dup) = sys::program_fd(n.pid, fd) else {
            return self.pass(n.id);
        };
        if !sys::notif_id_valid(self.listener, n.id)
            || sys::getsockopt_int(dup.0, libc::SOL_SOCKET, libc::SO_TYPE) != Ok(libc::SOCK_DGRAM)
        {
            return self.pass(n.id);
        }
        let domain = sys::getsockopt_int(dup.0, libc::SOL_SOCKET, libc::SO_DOMAIN).unwrap_or(0);
        match f.take(dup.0, domain, ns) {
            Ok(()) => {
                let _ = sys::notif_answer(self.listener, n.id, Ok(()));
            }
            Err(_) => self.pass(n.id),
        }
    }

    /// The race for one connect (in its own thread); `held` answers it on every path.
    fn race(&self, held: &mut Held, n: &Notif, fd: c_int, dest: SocketAddr, known: &Known) {
        let Some(dup) = sys::program_fd(n.pid, fd) else {
            return;
        };
        let dup = held.dup.insert(dup).0;
        if !sys::notif_id_valid(self.listener, n.id) {
            held.answered = true; // the program is gone from this call: nobody to answer
            return;
        }
        let mut facts = SocketFacts {
            fd: dup,
            flags: None,
        };
        let route = route::route(dest.is_ipv4(), &mut facts);
        let Some(flags) = facts.flags else { return };
        let nonblocking = match route {
            Route::Blocking => false,
            Route::NonBlocking => true,
            Route::PassThrough(_) | Route::Again => return,
        };
        let domain = if dest.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let v6only = domain == libc::AF_INET6
            && sys::getsockopt_int(dup, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY).unwrap_or(0) != 0;
        let bind = sys::local(dup).filter(|a| a.port() != 0 || !a.ip().is_unspecified());
        let chosen = canonical_ip(dest.ip());
        let s = &self.state;
        s.seed_from_cache(&known.name, &known.addrs);
        let now = Instant::now();
        let order = {
            let h = s.health.read();
            plan::plan(&Input {
                chosen,
                known: &known.addrs,
                winner: h.winner(&known.name, dest.port()),
                dead_until: &|ip| h.dead_until(&SocketAddr::new(ip, dest.port()), now),
            })
        };
        let reach = Reach {
            v6: domain == libc::AF_INET6,
            v6only,
            bind: bind.map(|b| b.ip()),
        };
        let candidates = plan::reachable(reach, &order, chosen, dest);
        if candidates.is_empty() {
            return;
        }
        let Some(slot) = self.slots.hold(n.id, n.pid, fd) else {
            return;
        };
        held.slot = Some(slot);
        let delay = s.delay_for(&known.name, &candidates);
        let cap = own_deadline(dup, nonblocking, s.config.connect_timeout, now);
        if !nonblocking {
            self.slots.flags_changed(slot, Some(flags));
            held.restore = Some(flags);
            if sys::set_flags(dup, flags | libc::O_NONBLOCK).is_err() {
                return;
            }
        }
        held.touched = true;
        let program = Program {
            fd: dup,
            domain,
            reach,
            bind,
        };
        log::debug!(
            "connect {} {dest} ({}): trying {candidates:?}, attempt delay {} ms",
            known.name,
            if nonblocking {
                "non-blocking"
            } else {
                "blocking"
            },
            delay.as_millis()
        );
        let wanted =
            |a: SocketAddr| s.config.adaptive && s.health.read().rtt_wanted(&a, Instant::now());
        let ended = Race {
            program: &program,
            chosen: dest,
            candidates,
            delay,
            budget: s.config.failover_budget,
            cap,
            rtt_wanted: &wanted,
        }
        .run();
        held.put_back_flags(self.slots);
        note(&known.name, &ended.outcomes);
        s.record(&known.name, &ended.outcomes, delay);
        let answer = match ended.result {
            Ok(()) if nonblocking => Err(libc::EINPROGRESS),
            r => r,
        };
        held.answer(answer);
    }
}

/// The deadline the program itself set for this connect: `DNSFO_CONNECT_TIMEOUT_MS`
/// (`ETIMEDOUT`), or a blocking socket's `SO_SNDTIMEO` (the kernel then answers
/// `EINPROGRESS`), whichever comes first.
fn own_deadline(
    dup: c_int,
    nonblocking: bool,
    connect_timeout: Option<Duration>,
    now: Instant,
) -> Option<(Instant, c_int)> {
    let mut cap = connect_timeout.map(|t| (now + t, libc::ETIMEDOUT));
    if !nonblocking {
        if let Ok(v) = sys::getsockopt_bytes(dup, libc::SOL_SOCKET, libc::SO_SNDTIMEO) {
            if v.len() >= 16 {
                let sec = i64::from_ne_bytes(v[..8].try_into().unwrap_or([0; 8]));
                let usec = i64::from_ne_bytes(v[8..16].try_into().unwrap_or([0; 8]));
                let t = Duration::from_secs(sec.max(0) as u64)
                    + Duration::from_micros(usec.clamp(0, 999_999) as u64);
                if !t.is_zero() && cap.is_none_or(|(c, _)| now + t < c) {
                    cap = Some((now + t, libc::EINPROGRESS));
                }
            }
        }
    }
    cap
}

/// The one info line of a failover, as the library writes it.
fn note(name: &str, outcomes: &[dnsfo_core::outcome::Outcome]) {
    let Some(win) = outcomes.iter().find(|o| o.result.is_ok()) else {
        return;
    };
    if let Some(failed) = outcomes
        .iter()
        .find(|o| o.result.is_err() && o.addr != win.addr)
    {
        log::info!("{name}: {} failed over to {}", failed.addr, win.addr);
    }
}

/// What `route::route` asks, read from the supervisor's duplicate of the program's socket.
struct SocketFacts {
    fd: c_int,
    flags: Option<c_int>,
}

impl route::Facts for SocketFacts {
    fn learned(&mut self) -> bool {
        true // the caller looked the address up
    }

    fn socket(&mut self) -> route::Socket {
        let stream = sys::getsockopt_int(self.fd, libc::SOL_SOCKET, libc::SO_TYPE)
            == Ok(libc::SOCK_STREAM)
            && matches!(
                sys::getsockopt_int(self.fd, libc::SOL_SOCKET, libc::SO_PROTOCOL),
                Ok(0) | Ok(libc::IPPROTO_TCP)
            );
        if !stream {
            return route::Socket::Untracked;
        }
        let domain = sys::getsockopt_int(self.fd, libc::SOL_SOCKET, libc::SO_DOMAIN).unwrap_or(0);
        match sys::tcp_info(self.fd) {
            Some((TCP_CLOSE, _, _)) => route::Socket::Fresh {
                ipv4: domain == libc::AF_INET,
                fast_open: sys::getsockopt_int(self.fd, libc::IPPROTO_TCP, TCP_FASTOPEN_CONNECT)
                    .unwrap_or(0)
                    != 0,
            },
            Some(_) => route::Socket::Connecting,
            None => route::Socket::Untracked,
        }
    }

    fn nonblocking(&mut self) -> Option<bool> {
        let f = sys::get_flags(self.fd).ok()?;
        self.flags = Some(f);
        Some(f & libc::O_NONBLOCK != 0)
    }
}

/// A held connect: answered exactly once. Dropped unanswered (a path that does not steer, or a
/// panic), it puts the socket back as the program left it and lets the kernel run the
/// program's connect.
struct Held<'a> {
    sv: &'a Supervisor,
    id: u64,
    slot: Option<usize>,
    /// The supervisor's duplicate of the program's socket.
    dup: Option<Fd>,
    /// The program's flags, while the duplicate's are changed.
    restore: Option<c_int>,
    /// The race may have made attempts on the socket.
    touched: bool,
    answered: bool,
}

impl<'a> Held<'a> {
    fn new(sv: &'a Supervisor, id: u64) -> Held<'a> {
        Held {
            sv,
            id,
            slot: None,
            dup: None,
            restore: None,
            touched: false,
            answered: false,
        }
    }

    fn put_back_flags(&mut self, slots: &Slots) {
        if let (Some(flags), Some(fd)) = (self.restore, &self.dup) {
            self.restore = None;
            let _ = sys::set_flags(fd.0, flags);
            if let Some(s) = self.slot {
                slots.flags_changed(s, None);
            }
        }
    }

    fn answer(&mut self, result: Result<(), c_int>) {
        let _ = sys::notif_answer(self.sv.listener, self.id, result);
        self.answered = true;
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if !self.answered {
            if let (true, Some(fd)) = (self.touched, &self.dup) {
                sys::disconnect(fd.0);
                let _ = sys::so_error(fd.0);
            }
            self.put_back_flags(self.sv.slots);
            let _ = sys::notif_continue(self.sv.listener, self.id);
        }
        if let Some(s) = self.slot {
            self.sv.slots.release(s);
        }
    }
}
