//! The background driver: one reactor thread per process that advances the steers of
//! non-blocking connects when nobody else does: when the attempt delay runs out (start a probe),
//! when a probe answers, when the program's socket changes state while the program waits where
//! dnsfo cannot see (io_uring, raw system calls), and when a budget ends.
//!
//! A healthy connect costs the reactor nothing but a timer entry: the program's own attempt
//! answers within the attempt delay, a hook the program calls (a wait, `getsockopt`) settles the
//! steer, and the timer finds nothing to do. The reactor watches the program's socket (through
//! the steer's duplicate) only once the race has begun.
//!
//! Owns: the reactor thread (started on first use, again in a forked child), its epoll instance
//! and wake-up eventfd, the timer heap. Must never: hold an fd's lock across its own wait, touch
//! a steer other than through that fd's lock (checking the steer's id), or run the program's
//! signal handlers (it blocks every signal).

use crate::dial::steer::Steer;
use crate::dial::watch::{self, watch};
use crate::forksafe::SpinLock;
use crate::state::{State, FDS};
use crate::sys;
use libc::c_int;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const WAKE_TOKEN: u64 = u64::MAX;

/// What becomes of a steer the reactor settled: recording, logging, closing its fds. The
/// decision layer's business, so it is handed in (with the first `schedule`) rather than named
/// here.
pub type Finish = fn(&State, Box<Steer>);
static FINISH: OnceLock<Finish> = OnceLock::new();
/// Steers the reactor has taken off their fd (the program can see the outcome already) and not
/// yet recorded and logged.
static FINISHING: AtomicUsize = AtomicUsize::new(0);
/// An exiting process waits this long at most for those (see [`wait_for_finishing`]).
const EXIT_WAIT: Duration = Duration::from_millis(100);
/// Steers in flight at most; beyond this a non-blocking connect is left to the kernel.
pub const MAX_STEERS: usize = 1024;

struct Handle {
    wake: c_int,
    epfd: c_int,
    pid: u32,
}

static REACTOR: SpinLock<Option<Handle>> = SpinLock::new(None);
/// Timers handed over by other threads: (when, fd, steer id).
static DUE: SpinLock<Vec<(Instant, c_int, u64)>> = SpinLock::new(Vec::new());
/// When the reactor will next look at its timers, in ns after `base()`; 0 = it is awake and
/// will look before it sleeps; `u64::MAX` = asleep with no timer.
static PLANNED: AtomicU64 = AtomicU64::new(u64::MAX);

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn ns(t: Instant) -> u64 {
    t.saturating_duration_since(base()).as_nanos() as u64
}

/// Asks the reactor to look at the steer `id` on `fd` at `at`. `false` when no reactor can run
/// (the steer must then be dropped: nobody would advance it).
pub fn schedule(state: &'static State, fd: c_int, id: u64, at: Instant, finish: Finish) -> bool {
    let _ = FINISH.set(finish);
    {
        let mut due = DUE.lock();
        if due.len() >= MAX_STEERS * 4 {
            return false;
        }
        due.push((at, fd, id));
    }
    let planned = PLANNED.load(Ordering::SeqCst);
    if planned != 0 && ns(at) < planned {
        return kick(state);
    }
    // It is awake or will wake before `at`; it must exist, though.
    running(state)
}

fn running(state: &'static State) -> bool {
    let mut r = REACTOR.lock();
    if r.as_ref().is_some_and(|h| h.pid != std::process::id()) {
        // A child forked without dnsfo's fork handler (raw clone): the numbers may be the
        // child's own by now, so they are left alone.
        *r = None;
    }
    if r.is_none() {
        *r = spawn(state);
    }
    r.is_some()
}

fn kick(state: &'static State) -> bool {
    if !running(state) {
        return false;
    }
    if let Some(h) = REACTOR.lock().as_ref() {
        sys::eventfd_kick(h.wake);
    }
    true
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
    watch::set_epfd(epfd);
    static AT_EXIT: AtomicBool = AtomicBool::new(false);
    if !AT_EXIT.swap(true, Ordering::SeqCst) {
        sys::at_exit(wait_for_finishing);
    }
    let spawned = std::thread::Builder::new()
        .name("dnsfo-reactor".into())
        .stack_size(256 * 1024)
        .spawn(move || run(state, epfd, wake));
    match spawned {
        Ok(_) => Some(Handle {
            wake,
            epfd,
            pid: std::process::id(),
        }),
        Err(e) => {
            log::warn!("cannot start the reactor thread: {e}");
            watch::set_epfd(-1);
            sys::close_fd(epfd);
            sys::close_fd(wake);
            None
        }
    }
}

/// `fork()` prepare handler: only the locks are made safe to take in the child.
pub fn prepare_fork() {
    REACTOR.lock_for_fork();
    DUE.lock_for_fork();
}

pub fn after_fork() {
    // SAFETY: `prepare_fork` took these locks in this thread (and in the child, that thread is
    // the only one).
    unsafe {
        DUE.force_unlock();
        REACTOR.force_unlock();
    }
}

/// In the child, right after `fork()`: it has no reactor thread, and the epoll instance behind
/// its copy of the reactor's fd is the parent's, still in use there. Close the copies (never
/// touch the instance) so that no dnsfo fd stays in the child; a steer there starts afresh.
pub fn after_fork_child() {
    after_fork();
    DUE.lock().clear();
    // The parent's reactor thread is not here: nothing it was finishing will end here.
    FINISHING.store(0, Ordering::SeqCst);
    watch::set_epfd(-1);
    PLANNED.store(u64::MAX, Ordering::SeqCst);
    if let Some(h) = REACTOR.lock().take() {
        sys::close_fd(h.wake);
        sys::close_fd(h.epfd);
    }
}

fn run(state: &'static State, epfd: c_int, wake: c_int) {
    // This thread is dnsfo's own for its whole life: every hook it reaches passes through.
    std::mem::forget(crate::guard::enter());
    sys::block_all_signals();
    let mut timers: BinaryHeap<Reverse<(Instant, c_int, u64)>> = BinaryHeap::new();
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
    loop {
        // A bug in one turn must not take every other connect in flight down with the thread.
        let turned = crate::guard::contain(|| turn(state, epfd, wake, &mut timers, &mut events));
        if turned.is_none() {
            log::error!("reactor: internal error in one turn; carrying on");
        }
    }
}

fn turn(
    state: &'static State,
    epfd: c_int,
    wake: c_int,
    timers: &mut BinaryHeap<Reverse<(Instant, c_int, u64)>>,
    events: &mut [libc::epoll_event; 64],
) {
    PLANNED.store(0, Ordering::SeqCst);
    timers.extend(DUE.lock().drain(..).map(Reverse));
    let next = timers.peek().map(|Reverse((t, _, _))| *t);
    PLANNED.store(next.map_or(u64::MAX, ns).max(1), Ordering::SeqCst);
    if !DUE.lock().is_empty() {
        // Handed over while the plan was being made (without a kick): look again.
        return;
    }
    let timeout = next.map_or(-1, |t| {
        let d = t.saturating_duration_since(Instant::now());
        // Round up so that a wake-up never comes early and spins.
        (d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0)).min(60_000) as c_int
    });
    let n = match sys::epoll_wait_into(epfd, events, timeout) {
        Ok(n) => n,
        Err(libc::EINTR) => 0,
        Err(e) => {
            log::error!("reactor epoll_wait: {}", sys::errno_name(e));
            std::thread::sleep(Duration::from_millis(10));
            0
        }
    };
    PLANNED.store(0, Ordering::SeqCst);
    for ev in &events[..n] {
        if ev.u64 == WAKE_TOKEN {
            sys::eventfd_drain(wake);
            continue;
        }
        let (fd, sock) = watch::parts(ev.u64);
        visit(state, fd, None, Some(sock), timers);
    }
    let now = Instant::now();
    while let Some(Reverse((t, fd, id))) = timers.peek().copied() {
        if t > now {
            break;
        }
        timers.pop();
        visit(state, fd, Some(id), None, timers);
    }
}

/// Advances the steer on `fd` (if it is still the one the timer or socket belongs to), starts
/// what is due, and finishes it when it settled.
fn visit(
    state: &'static State,
    fd: c_int,
    id: Option<u64>,
    sock: Option<c_int>,
    timers: &mut BinaryHeap<Reverse<(Instant, c_int, u64)>>,
) {
    let now = Instant::now();
    let done = FDS.locked(fd, |slot| {
        let slot = slot.as_deref_mut()?;
        let steer = slot.steer.as_deref_mut()?;
        if id.is_some_and(|id| id != steer.id) {
            return None;
        }
        if !sys::same_file(fd, steer.handle()) {
            // Closed behind dnsfo's back and maybe reused: the steer is over.
            steer.release();
            FINISHING.fetch_add(1, Ordering::SeqCst);
            return slot.steer.take();
        }
        if let Some(sock) = sock {
            if sock != steer.handle() && !steer.probes.iter().any(|p| p.fd == sock) {
                return None;
            }
            if sock != steer.handle() {
                steer.probe_ready(sock, now);
            }
        }
        steer.advance(now);
        steer.start_due(now);
        let status = steer.advance(now);
        if !status.settled() {
            for p in steer.probes.iter_mut().filter(|p| !p.watched) {
                p.watched = watch(fd, p.fd);
            }
            if steer.racing() && !steer.watched {
                steer.watched = watch(fd, steer.handle());
            }
            if let Some(at) = steer.wake_at() {
                timers.push(Reverse((at, fd, steer.id)));
            }
            return None;
        }
        let done = slot.take_settled();
        if done.is_some() {
            // Counted while the fd's lock is held (the program cannot see its connect done
            // yet, then read and exit): the exit waits for this record (`wait_for_finishing`).
            FINISHING.fetch_add(1, Ordering::SeqCst);
        }
        done
    });
    if let Some(steer) = done {
        match FINISH.get() {
            Some(finish) => finish(state, steer),
            None => drop(steer),
        }
        FINISHING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// At `exit`: a program that exits as soon as its connect is done (a one-shot client) could
/// otherwise end while the reactor records that connect, and lose its log line, its stats and
/// its shared winner. Waits for that record, briefly.
extern "C" fn wait_for_finishing() {
    let until = Instant::now() + EXIT_WAIT;
    while FINISHING.load(Ordering::SeqCst) != 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
}
