//! The blocking driver: the program's thread waits in `connect` anyway, so the race runs right
//! there with `poll`, the first attempt on the program's own socket (no replacement at all when
//! it wins), the others on fresh sockets set up like it.
//!
//! Owns: nothing beyond one call; every attempt socket is closed before it returns. Must never:
//! return `EINTR` where the kernel would have restarted the connect (`SA_RESTART`), or leave the
//! program's fd non-blocking.

use super::{
    connect_program_fd, is_socket_error, Budget, Ended, Outcome, Report, Template,
    SEQUENTIAL_SLOT_MIN,
};
use crate::sys::{self, RawAddr};
use libc::c_int;
use std::net::SocketAddr;
use std::time::Instant;

struct Attempt {
    fd: c_int,
    own: bool,
    addr: SocketAddr,
    started: Instant,
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
///
/// `refill` is asked once for more addresses when the list runs dry with nothing connected:
/// every attempt failed, or none answered within the attempt delay (re-resolution).
pub fn dial_blocking(
    fd: c_int,
    tmpl: &Template,
    candidates: &[SocketAddr],
    budget: &Budget,
    refill: &mut dyn FnMut() -> Vec<SocketAddr>,
) -> Report {
    let mut refill = Some(refill);
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
        if queue.is_empty() && pending.iter().all(|a| now >= a.started + budget.delay) {
            if let Some(more) = refill.take() {
                queue.extend(more());
                next_start = Instant::now();
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
                        outcomes.push(Outcome::settled(addr, Err(e), start.elapsed()));
                        continue;
                    }
                }
            };
            let own = afd != fd;
            match res {
                Ok(()) => {
                    outcomes.push(Outcome::settled(addr, Ok(()), start.elapsed()));
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
                    outcomes.push(Outcome::settled(addr, Err(e), start.elapsed()));
                    if own {
                        sys::close_fd(afd);
                    } else {
                        program_fd_free = true;
                    }
                }
            }
        }
        if pending.is_empty() {
            if refill.is_some() {
                continue;
            }
            break 'race Ended::AllFailed;
        }

        // Wait for the next event: an attempt finishing, the next start, the deadline.
        let now = Instant::now();
        let mut wake: Option<Instant> = budget.deadline.map(|d| d.0);
        if queue.is_empty() && refill.is_some() {
            // Time to ask DNS again if nothing has answered by then.
            let t = pending
                .iter()
                .map(|a| a.started + budget.delay)
                .max()
                .unwrap_or(now);
            wake = Some(wake.map_or(t, |w| w.min(t)));
        }
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
                outcomes.push(Outcome::settled(a.addr, Ok(()), a.started.elapsed()));
                winner = Some(i);
                break;
            }
            outcomes.push(Outcome::settled(a.addr, Err(err), a.started.elapsed()));
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
    outcomes.push(Outcome::abandoned(a.addr, a.started.elapsed()));
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
        abandon(&a, outcomes);
        // The program's own socket is about to be replaced: its attempt ends with it.
        if a.own {
            sys::close_fd(a.fd);
        }
    }
    // A socket connected in non-blocking mode stays "connecting" for the socket layer until
    // connect is called once more (it answers 0). A blocking connect leaves it connected, so that
    // the program's next connect gets EISCONN: settle it the same way.
    if let Some(raw) = RawAddr::for_domain(w.addr, tmpl.domain_for(w.addr.ip())) {
        let _ = sys::connect_to(w.fd, &raw);
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
