//! What keeps the program working when the supervisor is gone. The kernel fails every connect
//! the filter sends to a listener nobody holds (`ENOSYS`), so a second small process, the
//! keeper, holds a copy of the listener from the start and does nothing while the supervisor
//! lives. When the supervisor dies (killed, crashed, or ended with the program while children of
//! it still run), the keeper puts back every socket the supervisor held in the middle of a race
//! (its flags; an attempt under way ended) and lets the kernel run those connects, then lets
//! every later connect through unchanged, until no supervised process is left.
//!
//! The supervisor records each held connect in a page shared with the keeper ([`Slots`]) before
//! it touches the program's socket. Owns: that page and the keeper process. Must never: answer
//! a connect the supervisor may still answer (it starts only once the supervisor is gone), or
//! touch a socket whose connect is no longer held (`SECCOMP_IOCTL_NOTIF_ID_VALID` first).

use crate::sys;
use std::sync::atomic::{AtomicU64, Ordering};

/// Held connects recorded at most (more at once are let through, see `notify`).
pub const SLOTS: usize = 256;

#[derive(Default)]
struct Slot {
    /// Notification id; 0 = free.
    id: AtomicU64,
    /// Thread id << 32 | the program's fd.
    who: AtomicU64,
    /// The socket's file status flags + 1 while the supervisor changed them; 0 = untouched.
    flags: AtomicU64,
}

/// The shared page.
pub struct Slots {
    /// The highest notification id the supervisor received.
    max_id: AtomicU64,
    slots: [Slot; SLOTS],
}

impl Slots {
    pub fn new() -> Slots {
        Slots {
            max_id: AtomicU64::new(0),
            slots: std::array::from_fn(|_| Slot::default()),
        }
    }

    /// The supervisor received notification `id`.
    pub fn received(&self, id: u64) {
        self.max_id.fetch_max(id, Ordering::SeqCst);
    }

    /// Records a held connect (before its socket is touched); `None` when every slot is taken.
    pub fn hold(&self, id: u64, tid: u32, fd: i32) -> Option<usize> {
        for (i, s) in self.slots.iter().enumerate() {
            if s.id
                .compare_exchange(0, id, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                s.who.store(
                    (u64::from(tid) << 32) | u64::from(fd as u32),
                    Ordering::SeqCst,
                );
                s.flags.store(0, Ordering::SeqCst);
                return Some(i);
            }
        }
        None
    }

    /// The socket's flags are about to change from `flags` (`None`: they are the program's
    /// again).
    pub fn flags_changed(&self, slot: usize, flags: Option<i32>) {
        let v = flags.map_or(0, |f| u64::from(f as u32) + 1);
        self.slots[slot].flags.store(v, Ordering::SeqCst);
    }

    /// The held connect was answered.
    pub fn release(&self, slot: usize) {
        self.slots[slot].id.store(0, Ordering::SeqCst);
    }
}

/// The keeper's life (in its own process, forked by the supervisor before the program runs):
/// waits for the supervisor's end (`supervisor`: its pidfd), takes over, and ends when the
/// supervised tree has (the listener hangs up).
pub fn run(listener: i32, supervisor: i32, slots: &Slots) -> i32 {
    sys::set_name(c"dnsfo-keeper");
    sys::ignore_signals(&[
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGPIPE,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ]);
    // Nothing of the program's but stderr (for one line if it has to take over).
    let null = sys::open_devnull();
    if null >= 0 {
        sys::dup2(null, 0);
        sys::dup2(null, 1);
    }
    sys::close_from(3, &[listener, supervisor]);
    loop {
        let mut fds = [
            libc::pollfd {
                fd: supervisor,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: listener,
                events: 0,
                revents: 0,
            },
        ];
        if sys::poll(&mut fds, None) < 0 {
            continue;
        }
        if fds[1].revents & libc::POLLHUP != 0 {
            return 0; // the supervised programs are all gone
        }
        if fds[0].revents != 0 {
            break; // the supervisor is gone
        }
    }
    let taken = take_over(listener, slots);
    if taken > 0 {
        eprintln!(
            "dnsfo: the supervisor ended; {taken} connect(s) it held go on without failover, as do all from now on"
        );
    }
    loop {
        let mut fds = [libc::pollfd {
            fd: listener,
            events: libc::POLLIN,
            revents: 0,
        }];
        if sys::poll(&mut fds, None) < 0 {
            continue;
        }
        if fds[0].revents & libc::POLLIN != 0 {
            if let Ok(n) = sys::notif_recv(listener) {
                let _ = sys::notif_continue(listener, n.id);
                continue;
            }
        }
        if fds[0].revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            return 0;
        }
    }
}

/// Answers what the dead supervisor held; the count answered.
fn take_over(listener: i32, slots: &Slots) -> usize {
    let mut taken = 0;
    let mut recorded = Vec::new();
    for s in &slots.slots {
        let id = s.id.load(Ordering::SeqCst);
        if id == 0 || !sys::notif_id_valid(listener, id) {
            continue;
        }
        recorded.push(id);
        let who = s.who.load(Ordering::SeqCst);
        let (tid, fd) = ((who >> 32) as u32, who as u32 as i32);
        let flags = s.flags.load(Ordering::SeqCst);
        let mut answer = None;
        if let Some(dup) = sys::program_fd(tid, fd) {
            if flags != 0 {
                let _ = sys::set_flags(dup.0, (flags - 1) as i32);
            }
            let nonblocking = sys::get_flags(dup.0).is_ok_and(|f| f & libc::O_NONBLOCK != 0);
            if sys::peer(dup.0).is_some() {
                // The race had already connected it: that is the program's connect done.
                answer = Some(if nonblocking {
                    Err(libc::EINPROGRESS)
                } else {
                    Ok(())
                });
            } else {
                sys::disconnect(dup.0);
                let _ = sys::so_error(dup.0);
            }
        }
        let sent = match answer {
            Some(r) => sys::notif_answer(listener, id, r),
            None => sys::notif_continue(listener, id),
        };
        taken += usize::from(sent.is_ok());
    }
    // Connects the supervisor received but had not recorded as held when it died (or was still
    // deciding about): they are still as the program made them.
    let max = slots.max_id.load(Ordering::SeqCst);
    for id in max.saturating_sub(SLOTS as u64)..=max + 64 {
        if id != 0 && !recorded.contains(&id) && sys::notif_continue(listener, id).is_ok() {
            taken += 1;
        }
    }
    taken
}
