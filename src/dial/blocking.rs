//! The blocking driver: the program's thread waits in `connect` anyway, so its steer is run right
//! there. The program's socket is made non-blocking for the race (and given its flags back on
//! every path); the wait between steps is the hook's, outside every panic boundary, so that a
//! thread cancelled there unwinds cleanly (DESIGN.md fact 13).
//!
//! Owns: nothing beyond one call. Must never: return `EINTR` where the kernel would have
//! restarted the connect (`SA_RESTART`), or leave the program's socket non-blocking.

use super::steer::{Status, Steer};
use crate::sys;
use libc::c_int;
use std::time::Instant;

/// What the hook does next for a blocking connect.
pub enum Step {
    /// Wait (`poll`) on these for at most this many ms, then step again.
    Wait(Vec<libc::pollfd>, c_int),
    /// The connect is over: return -1 with this errno, or 0.
    Done(Result<(), c_int>),
    /// Stopped early (the program's `SO_SNDTIMEO` ran out: `EINPROGRESS`; a signal without
    /// `SA_RESTART`: `EINTR`). The steer goes on in the background, as the kernel's connect
    /// would.
    Stopped(Box<Steer>, c_int),
    /// Nothing left to race: finish with a plain (blocking) connect to the program's own
    /// address, which waits for its attempt under way as the kernel always does.
    Plain,
}

pub struct Blocking {
    steer: Option<Box<Steer>>,
    /// The program's file status flags, given back on every path.
    flags: c_int,
    /// The program's `SO_SNDTIMEO`, counted from the start of its connect.
    own_deadline: Option<Instant>,
    interrupted: bool,
}

impl Blocking {
    pub fn new(mut steer: Box<Steer>, flags: c_int, own_deadline: Option<Instant>) -> Blocking {
        let _ = sys::fcntl_set(steer.handle(), libc::F_SETFL, flags | libc::O_NONBLOCK);
        steer.begin(Instant::now());
        Blocking {
            steer: Some(steer),
            flags,
            own_deadline,
            interrupted: false,
        }
    }

    /// dnsfo's duplicate of the program's socket (`-1` once handed over).
    pub fn handle(&self) -> c_int {
        self.steer.as_ref().map_or(-1, |s| s.handle())
    }

    /// Hands the steer over once the connect is done, for its outcomes to be recorded.
    pub fn take_steer(&mut self) -> Option<Box<Steer>> {
        self.steer.take()
    }

    /// The wait was interrupted by a signal.
    pub fn interrupted(&mut self) {
        self.interrupted = true;
    }

    /// One step: look at what the last wait reported, advance, and say what comes next.
    pub fn step(&mut self, polled: &[libc::pollfd]) -> Step {
        let flags = self.flags;
        let Some(steer) = self.steer.as_deref_mut() else {
            return Step::Done(Err(libc::EBADF));
        };
        let now = Instant::now();
        for p in polled {
            if p.revents != 0 && p.fd != steer.handle() {
                steer.probe_ready(p.fd, now);
            }
        }
        steer.advance(now);
        steer.start_due(now);
        match steer.advance(now) {
            Status::Going => {}
            Status::Won(_) => {
                restore(steer, flags);
                // Blocking semantics: the socket is connected (a later connect says EISCONN).
                let raw = steer.own_raw();
                if let Some(raw) = raw {
                    let _ = sys::connect_to(steer.handle(), &raw);
                }
                return Step::Done(Ok(()));
            }
            Status::Failed { report } => {
                restore(steer, flags);
                let kernel = steer.read_failure();
                return Step::Done(Err(report.or(kernel).unwrap_or(libc::ECONNREFUSED)));
            }
            Status::Released => {
                restore(steer, flags);
                return Step::Plain;
            }
        }
        let signal = std::mem::take(&mut self.interrupted);
        let stop = if signal && sys::any_handler_without_restart() {
            Some(libc::EINTR)
        } else if self.own_deadline.is_some_and(|d| now >= d) {
            Some(libc::EINPROGRESS)
        } else {
            None
        };
        if let Some(e) = stop {
            restore(steer, flags);
            if let Some(steer) = self.steer.take() {
                return Step::Stopped(steer, e);
            }
            return Step::Done(Err(e));
        }
        // The program's socket is waited on only while its attempt is under way (see
        // `own_attempt_live`); the probes always.
        let mut fds = Vec::with_capacity(1 + steer.probes.len());
        if steer.own_attempt_live() {
            fds.push(libc::pollfd {
                fd: steer.handle(),
                events: libc::POLLOUT,
                revents: 0,
            });
        }
        fds.extend(steer.probes.iter().map(|p| libc::pollfd {
            fd: p.fd,
            events: libc::POLLOUT,
            revents: 0,
        }));
        let wake = [steer.wake_at(), self.own_deadline]
            .into_iter()
            .flatten()
            .min();
        let timeout = wake.map_or(-1, |w| {
            let d = w.saturating_duration_since(now);
            // Round up so that a wake-up never comes early and spins.
            d.as_millis()
                .saturating_add(u128::from(d.subsec_nanos() % 1_000_000 != 0))
                .min(c_int::MAX as u128) as c_int
        });
        Step::Wait(fds, timeout)
    }
}

fn restore(steer: &Steer, flags: c_int) {
    let _ = sys::fcntl_set(steer.handle(), libc::F_SETFL, flags);
}

impl Drop for Blocking {
    fn drop(&mut self) {
        // Also on a forced unwind (thread cancelled in the wait): the program's flags come back.
        if let Some(steer) = &self.steer {
            restore(steer, self.flags);
        }
    }
}
