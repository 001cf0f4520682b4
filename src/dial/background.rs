//! The background driver: non-blocking connects raced on one reactor thread.
//!
//! A non-blocking connect must return at once and must never show the program a failed
//! intermediate attempt (DESIGN.md, S4). So when the program's first attempt does not settle
//! inside `connect`, its socket moves to a "shadow" fd owned by dnsfo, the program's fd number
//! gets a placeholder (a pipe's read end, never ready while the race runs), and the reactor
//! races the remaining addresses. The winner (or, when every address failed, a fresh socket
//! whose `SO_ERROR` reports the error the program would have seen) is `dup3`'d onto the fd
//! under the fd's lock, the program's epoll registrations are added again, and `poll`/`select`
//! sleepers are woken by closing the pipe's write end.
//!
//! Owns: the reactor thread (started on first use, one per process, rebuilt after `fork`), the
//! attempt sockets, shadows and placeholders of every race. Must never: swap onto an fd that
//! was closed or reused since the race began (race id and placeholder inode are checked under
//! the fd lock), hold the fd lock across anything that blocks, or run the program's signal
//! handlers (it blocks every signal).

use super::{Outcome, Template};
use crate::fdtable::{EpollReg, RaceLink};
use crate::forksafe::SpinLock;
use crate::state::{State, FDS};
use crate::sys::{self, RawAddr};
use libc::c_int;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

/// A background race holds a few fds for a while (the program's socket, the placeholder's
/// other end, attempt sockets); it starts only while at least this many fds remain below the
/// program's `RLIMIT_NOFILE`.
const FD_HEADROOM: c_int = 16;

/// Races in flight at most; beyond this a non-blocking connect passes straight to libc.
pub const MAX_RACES: usize = 1024;
const WAKE_TOKEN: u64 = u64::MAX;

/// What the connect hook hands over when a non-blocking connect needs a race.
pub struct Start {
    pub fd: c_int,
    pub tmpl: Template,
    pub name: String,
    pub chosen: SocketAddr,
    /// Addresses still to try, in order.
    pub queue: VecDeque<SocketAddr>,
    /// The address the program's own socket is connecting to (EINPROGRESS), if any.
    pub program_attempt: Option<SocketAddr>,
    /// Attempts that already settled inside `connect`.
    pub outcomes: Vec<Outcome>,
    pub delay: Duration,
    pub deadline: Option<Instant>,
}

enum Cmd {
    Race(Box<Race>),
    Cancel(u64),
    /// A re-resolution for a race came back.
    Refill(u64, Option<crate::resolver::Answer>),
}

/// Re-resolution of a race's name: asked at most once, when the list runs dry with nothing
/// connected.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refill {
    Unasked,
    Asked,
    Done,
}

struct Handle {
    tx: Sender<Cmd>,
    wake: c_int,
    epfd: c_int,
    pid: u32,
}

static REACTOR: SpinLock<Option<Handle>> = SpinLock::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

struct Attempt {
    fd: c_int,
    addr: SocketAddr,
    started: Instant,
}

struct Race {
    id: u64,
    fd: c_int,
    placeholder: (u64, u64),
    pipe_wr: c_int,
    shadow: c_int,
    tmpl: Template,
    name: String,
    chosen: SocketAddr,
    queue: VecDeque<SocketAddr>,
    pending: Vec<Attempt>,
    outcomes: Vec<Outcome>,
    next_start: Instant,
    delay: Duration,
    deadline: Option<Instant>,
    refill: Refill,
    /// The program's own socket failed and still holds its unread error.
    shadow_failed: bool,
    /// Every address tried or planned: re-resolution only adds others.
    tried: Vec<std::net::IpAddr>,
}

/// Sends a command to the reactor, starting it first when needed (or anew in a forked child,
/// which inherits the handle but not the thread).
fn send(state: &'static State, cmd: Cmd) -> Result<(), Cmd> {
    let mut r = REACTOR.lock();
    if r.as_ref().is_some_and(|h| h.pid != std::process::id()) {
        // A child forked without dnsfo's fork handler (raw clone): the numbers may be the
        // child's own by now, so they are left alone.
        std::mem::forget(r.take());
    }
    if r.is_none() {
        *r = spawn(state);
    }
    let Some(h) = r.as_ref() else { return Err(cmd) };
    match h.tx.send(cmd) {
        Ok(()) => {
            sys::eventfd_kick(h.wake);
            Ok(())
        }
        Err(e) => Err(e.0),
    }
}

fn spawn(state: &'static State) -> Option<Handle> {
    let epfd = sys::epoll_new().ok()?;
    let wake = match sys::eventfd_new() {
        Ok(w) => w,
        Err(_) => {
            sys::close_fd(epfd);
            return None;
        }
    };
    if sys::epoll_op(
        epfd,
        libc::EPOLL_CTL_ADD,
        wake,
        libc::EPOLLIN as u32,
        WAKE_TOKEN,
    )
    .is_err()
    {
        sys::close_fd(epfd);
        sys::close_fd(wake);
        return None;
    }
    let (tx, rx) = channel();
    let spawned = std::thread::Builder::new()
        .name("dnsfo-reactor".into())
        .stack_size(256 * 1024)
        .spawn(move || run(state, rx, epfd, wake));
    match spawned {
        Ok(_) => Some(Handle {
            tx,
            wake,
            epfd,
            pid: std::process::id(),
        }),
        Err(e) => {
            log::warn!("cannot start the reactor thread: {e}");
            sys::close_fd(epfd);
            sys::close_fd(wake);
            None
        }
    }
}

/// Called from the `fork()` handlers: the child has no reactor thread; the next race there
/// starts a new one (the pid check in `send`). Here only the lock is made safe to take.
pub fn prepare_fork() {
    REACTOR.lock_for_fork();
}

pub fn after_fork() {
    // SAFETY: `prepare_fork` took this lock in this thread (and in the child, that thread is
    // the only one).
    unsafe { REACTOR.force_unlock() };
}

/// In the child, right after `fork()`: the reactor's fds are still dnsfo's copies there, and the
/// child has no reactor thread. Close them now, before the child can reuse the numbers, so that
/// no dnsfo fd stays in the child and a later race there starts a fresh reactor.
pub fn after_fork_child() {
    after_fork();
    if let Some(h) = REACTOR.lock().take() {
        sys::close_fd(h.wake);
        sys::close_fd(h.epfd);
        std::mem::forget(h.tx);
    }
}

/// Moves a non-blocking connect into the background. When it returns `true` the program's fd
/// holds the placeholder and the connect must answer `EINPROGRESS`; on `false` nothing changed.
pub fn start(state: &'static State, st: Start) -> bool {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let Ok((rd, wr)) = sys::pipe_nb() else {
        return false;
    };
    let fd = st.fd;
    let set_up = FDS.locked(fd, |slot| -> Result<(c_int, (u64, u64)), ()> {
        let slot = slot.as_deref_mut().ok_or(())?;
        if slot.race.is_some() {
            return Err(());
        }
        let cloexec = sys::fcntl_get(fd, libc::F_GETFD).map_err(drop)? & libc::FD_CLOEXEC != 0;
        let shadow = sys::dup_cloexec(fd).map_err(drop)?;
        if !sys::fd_headroom(shadow, FD_HEADROOM) {
            // The program is near its fd limit: a race would hold fds it may need next (its
            // own lookups, accepts). Let its connect go on plainly instead.
            sys::close_fd(shadow);
            log::debug!("fd {fd}: too close to RLIMIT_NOFILE for a background race");
            return Err(());
        }
        // The program's registrations live on its socket's description, which the shadow keeps
        // alive: move them to the placeholder, so that nothing the attempt does reaches the
        // program, and its own EPOLL_CTL_MOD/DEL keep working during the race.
        for r in &slot.epoll {
            let _ = sys::epoll_op(r.epfd, libc::EPOLL_CTL_DEL, fd, 0, 0);
        }
        let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
        if let Err(e) = sys::dup3_fd(rd, fd, flags) {
            log::debug!("placeholder for fd {fd}: {}", sys::errno_name(e));
            for r in &slot.epoll {
                let _ = sys::epoll_op(r.epfd, libc::EPOLL_CTL_ADD, fd, r.events, r.data);
            }
            sys::close_fd(shadow);
            return Err(());
        }
        for r in &slot.epoll {
            let _ = sys::epoll_op(r.epfd, libc::EPOLL_CTL_ADD, fd, r.events, r.data);
        }
        let placeholder = sys::inode(fd).unwrap_or_default();
        slot.race = Some(RaceLink {
            id,
            shadow,
            placeholder,
        });
        Ok((shadow, placeholder))
    });
    sys::close_fd(rd);
    let Ok((shadow, placeholder)) = set_up else {
        sys::close_fd(wr);
        return false;
    };
    let now = Instant::now();
    let mut pending = Vec::new();
    if let Some(addr) = st.program_attempt {
        pending.push(Attempt {
            fd: shadow,
            addr,
            started: now,
        });
    }
    let tried: Vec<std::net::IpAddr> = st
        .queue
        .iter()
        .map(|a| a.ip())
        .chain(st.outcomes.iter().map(|o| o.addr.ip()))
        .chain(st.program_attempt.map(|a| a.ip()))
        .collect();
    let race = Box::new(Race {
        id,
        fd,
        placeholder,
        pipe_wr: wr,
        shadow,
        tmpl: st.tmpl,
        name: st.name,
        chosen: st.chosen,
        queue: st.queue,
        next_start: if pending.is_empty() {
            now
        } else {
            now + st.delay
        },
        tried,
        pending,
        outcomes: st.outcomes,
        delay: st.delay,
        deadline: st.deadline,
        refill: Refill::Unasked,
        shadow_failed: false,
    });
    if let Err(cmd) = send(state, Cmd::Race(race)) {
        // No reactor: put the program's socket back as if nothing happened.
        if let Cmd::Race(race) = cmd {
            let race = *race;
            FDS.locked(fd, |slot| {
                if let Some(slot) = slot.as_deref_mut() {
                    if slot.race.map(|l| l.id) == Some(id) {
                        swap_in(fd, shadow, &slot.epoll.clone());
                        slot.race = None;
                    }
                }
            });
            sys::close_fd(shadow);
            sys::close_fd(race.pipe_wr);
        }
        return false;
    }
    true
}

/// The program closed or replaced an fd that was being raced: stop the race.
pub fn cancel(state: &'static State, id: u64) {
    let _ = send(state, Cmd::Cancel(id));
}

/// Puts `sock` on `fd` (flags as the program's socket had them) and re-adds the program's epoll
/// registrations. Must run under the fd lock.
fn swap_in(fd: c_int, sock: c_int, regs: &[EpollReg]) -> bool {
    for r in regs {
        let _ = sys::epoll_op(r.epfd, libc::EPOLL_CTL_DEL, fd, 0, 0);
    }
    let cloexec = sys::fcntl_get(fd, libc::F_GETFD).map_or(true, |f| f & libc::FD_CLOEXEC != 0);
    let placed = sys::dup3_fd(sock, fd, if cloexec { libc::O_CLOEXEC } else { 0 }).is_ok();
    for r in regs {
        match sys::epoll_op(r.epfd, libc::EPOLL_CTL_ADD, fd, r.events, r.data) {
            Err(libc::EEXIST) => {
                let _ = sys::epoll_op(r.epfd, libc::EPOLL_CTL_MOD, fd, r.events, r.data);
            }
            Err(e) => log::debug!(
                "re-adding fd {fd} to epoll {}: {}",
                r.epfd,
                sys::errno_name(e)
            ),
            Ok(()) => {}
        }
    }
    placed
}

fn run(state: &'static State, rx: Receiver<Cmd>, epfd: c_int, wake: c_int) {
    // This thread is dnsfo's own for its whole life: every hook it reaches passes through.
    std::mem::forget(crate::guard::enter());
    sys::block_all_signals();
    let mut races: HashMap<u64, Race> = HashMap::new();
    let mut owner: HashMap<c_int, u64> = HashMap::new();
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
    loop {
        // A bug in one turn must not take every other connect in flight down with the thread.
        let turned = crate::guard::contain(|| {
            turn(state, &rx, epfd, wake, &mut races, &mut owner, &mut events)
        });
        if turned.is_none() {
            log::error!("reactor: internal error in one turn; carrying on");
        }
    }
}

/// One turn of the reactor: wait for sockets or the next deadline, take new commands, advance
/// every race.
fn turn(
    state: &'static State,
    rx: &Receiver<Cmd>,
    epfd: c_int,
    wake: c_int,
    races: &mut HashMap<u64, Race>,
    owner: &mut HashMap<c_int, u64>,
    events: &mut [libc::epoll_event; 64],
) {
    let now = Instant::now();
    let wake_at = races.values().filter_map(|r| r.wake_at()).min();
    let timeout = wake_at.map_or(-1, |w| {
        let d = w.saturating_duration_since(now);
        (d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0)).min(60_000) as c_int
    });
    let n = match sys::epoll_wait(epfd, events, timeout) {
        Ok(n) => n,
        Err(libc::EINTR) => 0,
        Err(e) => {
            log::error!("reactor epoll_wait: {}", sys::errno_name(e));
            std::thread::sleep(Duration::from_millis(10));
            0
        }
    };
    for ev in &events[..n] {
        let (token, bits) = (ev.u64, ev.events);
        if token == WAKE_TOKEN {
            sys::eventfd_drain(wake);
            continue;
        }
        let sock = token as c_int;
        let Some(&id) = owner.get(&sock) else {
            continue;
        };
        if let Some(race) = races.get_mut(&id) {
            race.on_ready(epfd, sock, bits, owner);
        }
    }
    while let Ok(cmd) = rx.try_recv() {
        match cmd {
            Cmd::Race(race) => {
                let race = *race;
                for a in &race.pending {
                    if sys::epoll_op(
                        epfd,
                        libc::EPOLL_CTL_ADD,
                        a.fd,
                        libc::EPOLLOUT as u32,
                        a.fd as u64,
                    )
                    .is_ok()
                    {
                        owner.insert(a.fd, race.id);
                    }
                }
                races.insert(race.id, race);
            }
            Cmd::Refill(id, answer) => {
                if let Some(race) = races.get_mut(&id) {
                    race.refilled(state, answer);
                }
            }
            Cmd::Cancel(id) => {
                if let Some(race) = races.remove(&id) {
                    log::debug!(
                        "{}: connect on fd {} abandoned by the program",
                        race.name,
                        race.fd
                    );
                    race.discard(epfd, owner);
                }
            }
        }
    }
    // Start due attempts; finish decided races.
    let ids: Vec<u64> = races.keys().copied().collect();
    for id in ids {
        let Some(race) = races.get_mut(&id) else {
            continue;
        };
        race.start_due(epfd, id, owner);
        race.maybe_refill(state);
        if let Some(done) = race.decided() {
            if let Some(race) = races.remove(&id) {
                race.finish(state, epfd, done, owner);
            }
        }
    }
}

enum Done {
    Won(usize),
    Failed,
    TimedOut,
}

impl Race {
    fn wake_at(&self) -> Option<Instant> {
        let start = if !self.queue.is_empty() {
            Some(self.next_start)
        } else if self.refill == Refill::Unasked {
            // When to ask DNS again if nothing has answered by then.
            self.pending.iter().map(|a| a.started + self.delay).max()
        } else {
            None
        };
        match (start, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_ready(&mut self, epfd: c_int, sock: c_int, bits: u32, owner: &mut HashMap<c_int, u64>) {
        let Some(i) = self.pending.iter().position(|a| a.fd == sock) else {
            return;
        };
        let failed_bits = bits & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0;
        if sock == self.shadow && failed_bits {
            // The program's own socket failed: leave its error unread, so that if every other
            // address fails too, the program gets this very socket back with the kernel's
            // POLLERR and SO_ERROR, exactly as without dnsfo.
            let a = self.pending.remove(i);
            self.outcomes.push(Outcome::settled(
                a.addr,
                Err(super::ERROR_LEFT_UNREAD),
                a.started.elapsed(),
            ));
            self.shadow_failed = true;
            self.drop_attempt(epfd, a.fd, owner);
            self.next_start = Instant::now();
            return;
        }
        let err = sys::getsockopt_int(sock, libc::SOL_SOCKET, libc::SO_ERROR).unwrap_or(libc::EIO);
        let a = &self.pending[i];
        if err == 0
            && bits & libc::EPOLLOUT as u32 != 0
            && bits & (libc::EPOLLERR | libc::EPOLLHUP) as u32 == 0
        {
            self.outcomes
                .push(Outcome::settled(a.addr, Ok(()), a.started.elapsed()));
            // Mark the winner by moving it first; `decided` sees the Ok outcome.
            let w = self.pending.remove(i);
            self.pending.insert(0, w);
            return;
        }
        let err = if err == 0 { libc::ECONNREFUSED } else { err };
        self.outcomes
            .push(Outcome::settled(a.addr, Err(err), a.started.elapsed()));
        let a = self.pending.remove(i);
        self.drop_attempt(epfd, a.fd, owner);
        self.next_start = Instant::now();
    }

    fn drop_attempt(&self, epfd: c_int, sock: c_int, owner: &mut HashMap<c_int, u64>) {
        let _ = sys::epoll_op(epfd, libc::EPOLL_CTL_DEL, sock, 0, 0);
        owner.remove(&sock);
        if sock != self.shadow {
            sys::close_fd(sock);
        }
    }

    fn start_due(&mut self, epfd: c_int, id: u64, owner: &mut HashMap<c_int, u64>) {
        if self.decided().is_some() {
            return;
        }
        let bound_port = self.tmpl.bind.is_some_and(|b| b.port() != 0);
        while let Some(&addr) = self.queue.front() {
            let now = Instant::now();
            let due = self.pending.is_empty() || (!bound_port && now >= self.next_start);
            if !due {
                return;
            }
            self.queue.pop_front();
            let sock = match self.tmpl.open(addr.ip()) {
                Ok(s) => s,
                Err(e) => {
                    self.outcomes
                        .push(Outcome::settled(addr, Err(e), Duration::ZERO));
                    continue;
                }
            };
            let raw = RawAddr::for_domain(addr, self.tmpl.domain_for(addr.ip()));
            let res = raw.map_or(Err(libc::EAFNOSUPPORT), |r| sys::connect_to(sock, &r));
            match res {
                Ok(()) => {
                    self.outcomes
                        .push(Outcome::settled(addr, Ok(()), now.elapsed()));
                    self.pending.insert(
                        0,
                        Attempt {
                            fd: sock,
                            addr,
                            started: now,
                        },
                    );
                    return;
                }
                Err(libc::EINPROGRESS) => {
                    if sys::epoll_op(
                        epfd,
                        libc::EPOLL_CTL_ADD,
                        sock,
                        libc::EPOLLOUT as u32,
                        sock as u64,
                    )
                    .is_err()
                    {
                        sys::close_fd(sock);
                        continue;
                    }
                    owner.insert(sock, id);
                    self.pending.push(Attempt {
                        fd: sock,
                        addr,
                        started: now,
                    });
                    self.next_start = now + self.delay;
                }
                Err(e) => {
                    self.outcomes
                        .push(Outcome::settled(addr, Err(e), now.elapsed()));
                    sys::close_fd(sock);
                }
            }
        }
    }

    /// Asks DNS once more when the list ran dry and nothing answered within the attempt delay.
    fn maybe_refill(&mut self, state: &'static State) {
        let now = Instant::now();
        if self.refill != Refill::Unasked
            || !self.queue.is_empty()
            || self.decided().is_some()
            || !self.pending.iter().all(|a| now >= a.started + self.delay)
        {
            return;
        }
        self.refill = Refill::Asked;
        let id = self.id;
        crate::resolver::resolve_later(&state.config, &self.name, move |answer| {
            let _ = send(state, Cmd::Refill(id, answer));
        });
    }

    fn refilled(&mut self, state: &'static State, answer: Option<crate::resolver::Answer>) {
        self.refill = Refill::Done;
        let Some(answer) = answer else { return };
        state.registry.write().learn(
            &self.name,
            crate::registry::Scope::Both,
            &answer.addrs,
            Some(answer.valid_until),
        );
        let port = self.chosen.port();
        for ip in answer.addrs {
            if !self.tried.contains(&ip) && self.tmpl.can_reach(ip) {
                log::info!("{}: DNS now also lists {ip}", self.name);
                self.tried.push(ip);
                self.queue.push_back(SocketAddr::new(ip, port));
            }
        }
        self.next_start = Instant::now();
    }

    fn decided(&self) -> Option<Done> {
        if self.outcomes.iter().any(|o| o.result.is_ok()) {
            return Some(Done::Won(0));
        }
        if self.pending.is_empty() && self.queue.is_empty() {
            return match self.refill {
                Refill::Done => Some(Done::Failed),
                _ => None,
            };
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Some(Done::TimedOut);
        }
        None
    }

    /// Closes everything of a race the program no longer wants.
    fn discard(self, epfd: c_int, owner: &mut HashMap<c_int, u64>) {
        for a in &self.pending {
            self.drop_attempt(epfd, a.fd, owner);
        }
        sys::close_fd(self.shadow);
        sys::close_fd(self.pipe_wr);
    }

    fn finish(
        mut self,
        state: &'static State,
        epfd: c_int,
        done: Done,
        owner: &mut HashMap<c_int, u64>,
    ) {
        let winner = match done {
            Done::Won(i) => Some(self.pending.remove(i)),
            _ => None,
        };
        if let Some(w) = &winner {
            let _ = sys::epoll_op(epfd, libc::EPOLL_CTL_DEL, w.fd, 0, 0);
            owner.remove(&w.fd);
        }
        for a in std::mem::take(&mut self.pending) {
            self.outcomes
                .push(Outcome::abandoned(a.addr, a.started.elapsed()));
            self.drop_attempt(epfd, a.fd, owner);
        }
        let errno = match done {
            Done::TimedOut => libc::ETIMEDOUT,
            _ => crate::failover::errno_to_report(self.chosen, &self.outcomes),
        };
        // What goes on the program's fd: the winner; else the program's own failed socket with
        // its error unread; else a fresh unconnected socket whose SO_ERROR (answered by the
        // getsockopt hook) is the error the program would have seen.
        let sock = match &winner {
            Some(w) => Some(w.fd),
            None if self.shadow_failed && !matches!(done, Done::TimedOut) => Some(self.shadow),
            None => self.tmpl.open_unconnected().ok(),
        };
        let (fd, id) = (self.fd, self.id);
        let landed = FDS.locked(fd, |slot| {
            let Some(slot) = slot.as_deref_mut() else {
                return false;
            };
            if slot.race.map(|l| l.id) != Some(id) {
                return false;
            }
            if sys::inode(fd).unwrap_or_default() != self.placeholder {
                // Closed behind libc's back and the number reused: the race is not this fd's.
                slot.race = None;
                return false;
            }
            let Some(sock) = sock else { return false };
            // The program's view of its socket's status flags lives on the shadow (the fcntl
            // hook forwards there during the race); options set meanwhile were recorded.
            let flags =
                sys::fcntl_get(self.shadow, libc::F_GETFL).unwrap_or(self.tmpl.status_flags);
            if sock != self.shadow {
                for o in &slot.opts {
                    let _ = sys::setsockopt_raw(sock, o.level, o.name, &o.value);
                }
            }
            let regs = slot.epoll.clone();
            let placed = swap_in(fd, sock, &regs);
            let _ = sys::fcntl_set(fd, libc::F_SETFL, flags);
            slot.race = None;
            if winner.is_none() && sock != self.shadow {
                slot.pending_error = Some((errno, sys::inode(fd).unwrap_or_default()));
            }
            placed
        });
        if let Some(s) = sock {
            if s != self.shadow {
                sys::close_fd(s);
            }
        }
        sys::close_fd(self.shadow);
        // Wakes poll()/select() sleepers still watching the placeholder.
        sys::close_fd(self.pipe_wr);
        let name = self.name.clone();
        match (&winner, landed) {
            (Some(w), true) => {
                log::debug!("{name}: background connect on fd {fd} won by {}", w.addr)
            }
            (Some(_), false) => log::debug!("{name}: fd {fd} was closed or reused; winner dropped"),
            (None, _) => log::debug!(
                "{name}: background connect on fd {fd} failed: {}",
                sys::errno_name(errno)
            ),
        }
        crate::failover::record(state, &name, &self.outcomes);
    }
}
