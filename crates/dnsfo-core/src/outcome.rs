//! What came of a connect's attempts, and what the program is told: one attempt's
//! [`Outcome`], the errno the program sees when every address failed ([`errno_to_report`]),
//! which errors are the address's fault ([`is_dead_address_error`]) and which the call's
//! ([`is_socket_error`]), when an abandoned attempt counts as dead ([`dead_after`]), and what a
//! failover tells later processes ([`failover_of`]).
//!
//! Shared by the library's dialer and the supervisor's (`dnsfo run --supervise`), so that both
//! report, remember and share exactly alike. Owns: these rules. Must never: touch a socket
//! (errno values are plain numbers here).

use crate::plan::Rtt;
use libc::c_int;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it is; others as they
/// are. Names, health and the cache always hold this form.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An attempt's "errno" when it failed but its error was deliberately left unread on the
/// socket (for the program to read itself).
pub const ERROR_LEFT_UNREAD: c_int = 0;

/// One attempt's result, for the caller's health records and log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub addr: SocketAddr,
    /// `Ok` = connected; `Err(errno)` = failed; abandoned attempts carry `ETIMEDOUT`.
    pub result: Result<(), c_int>,
    pub elapsed: Duration,
    /// Abandoned while still pending (another address won, or time ran out).
    pub abandoned: bool,
    /// The kernel's RTT for a connect that succeeded, when it was read.
    pub rtt: Option<Rtt>,
}

impl Outcome {
    /// An attempt that settled: connected (`Ok`) or failed with this errno.
    pub fn settled(addr: SocketAddr, result: Result<(), c_int>, elapsed: Duration) -> Outcome {
        Outcome {
            addr,
            result,
            elapsed,
            abandoned: false,
            rtt: None,
        }
    }

    /// A successful attempt whose RTT the kernel measured.
    pub fn connected(addr: SocketAddr, elapsed: Duration, rtt: Option<Rtt>) -> Outcome {
        Outcome {
            rtt,
            ..Outcome::settled(addr, Ok(()), elapsed)
        }
    }

    /// An attempt given up while still pending (another address won, or time ran out).
    pub fn abandoned(addr: SocketAddr, elapsed: Duration) -> Outcome {
        Outcome {
            addr,
            result: Err(libc::ETIMEDOUT),
            elapsed,
            abandoned: true,
            rtt: None,
        }
    }

    /// Does this attempt say its address is dead? Refused or unreachable, or abandoned after
    /// going unanswered for at least `slow` (see [`dead_after`]).
    pub fn says_dead(&self, slow: Duration) -> bool {
        self.result.is_err() && (!self.abandoned || self.elapsed >= slow)
    }
}

/// The errno a program sees when every address failed: its own address's error (what it would
/// have seen without dnsfo), else the first real error of another address, else
/// `ECONNREFUSED`.
pub fn errno_to_report(chosen: SocketAddr, outcomes: &[Outcome]) -> c_int {
    let chosen = canonical_ip(chosen.ip());
    let real =
        |o: &&Outcome| !o.abandoned && o.result.is_err() && o.result != Err(ERROR_LEFT_UNREAD);
    outcomes
        .iter()
        .filter(real)
        .find(|o| canonical_ip(o.addr.ip()) == chosen)
        .or_else(|| outcomes.iter().find(real))
        .and_then(|o| o.result.err())
        .unwrap_or(libc::ECONNREFUSED)
}

/// Errors after which the address is dead and another address (or DNS) may do better.
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

/// Errors about the socket or the call rather than the address: trying another address cannot
/// help, and the program must see them as libc gave them.
pub fn is_socket_error(e: c_int) -> bool {
    matches!(
        e,
        libc::EBADF
            | libc::ENOTSOCK
            | libc::EISCONN
            | libc::EAFNOSUPPORT
            | libc::EACCES
            | libc::EPERM
            | libc::EADDRINUSE
            | libc::EADDRNOTAVAIL
            | libc::EFAULT
            | libc::EINVAL
            | libc::EPROTOTYPE
            | libc::EALREADY
    )
}

/// An attempt abandoned while still pending counts as a failure only when it had at least this
/// long to answer (see [`dead_after`]).
pub const SLOW_IS_DEAD_MIN: Duration = Duration::from_millis(10);

/// How long an abandoned attempt must have gone unanswered to count as dead, for a connect whose
/// attempt delay is `delay`: the delay less an eighth. The slack is for programs with their own
/// failover timer of the same length (node's happy eyeballs: 250 ms, like ours). Event loops run
/// timers on a clock cached at the start of a loop turn, so theirs fires a little before ours
/// would, and an address that stayed silent that long was not remembered: the program's next
/// connect to it (its own next address, often the one dnsfo had moved it to) waited it out again.
pub fn dead_after(delay: Duration) -> Duration {
    delay.saturating_sub(delay / 8).max(SLOW_IS_DEAD_MIN)
}

/// A failover's lesson for later processes: the winner and the other addresses that proved dead
/// (as the health memory counts them, `slow` as in [`Outcome::says_dead`]). `None` when nothing
/// failed (a healthy connect teaches nothing to share) or nothing won.
pub fn failover_of(outcomes: &[Outcome], slow: Duration) -> Option<(SocketAddr, Vec<IpAddr>)> {
    let win = outcomes.iter().find(|o| o.result.is_ok())?;
    if !outcomes.iter().any(|o| o.result.is_err()) {
        return None;
    }
    let mut dead: Vec<IpAddr> = Vec::new();
    for o in outcomes {
        if o.says_dead(slow) && o.addr.ip() != win.addr.ip() && !dead.contains(&o.addr.ip()) {
            dead.push(o.addr.ip());
        }
    }
    Some((win.addr, dead))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(a: &str, r: Result<(), c_int>, abandoned: bool) -> Outcome {
        Outcome {
            addr: a.parse().unwrap(),
            result: r,
            elapsed: Duration::ZERO,
            abandoned,
            rtt: None,
        }
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
        // The program's own address through an AF_INET6 socket (`::ffff:a.b.c.d`).
        let outs = [
            o("127.0.0.3:80", Err(libc::EHOSTUNREACH), false),
            o("[::ffff:127.0.0.2]:80", Err(libc::ECONNREFUSED), false),
        ];
        assert_eq!(
            errno_to_report("[::ffff:127.0.0.2]:80".parse().unwrap(), &outs),
            libc::ECONNREFUSED
        );
        assert_eq!(
            errno_to_report("127.0.0.2:80".parse().unwrap(), &[]),
            libc::ECONNREFUSED
        );
    }

    #[test]
    fn silence_counts_as_dead_a_little_before_the_delay_and_never_below_the_floor() {
        let ms = Duration::from_millis;
        // node's 250 ms timer, fired on its cached loop clock just before ours.
        assert!(ms(249) >= dead_after(ms(250)));
        assert!(ms(250) >= dead_after(ms(270)));
        assert!(
            ms(200) < dead_after(ms(250)),
            "a much shorter wait is no proof"
        );
        assert_eq!(dead_after(ms(10)), SLOW_IS_DEAD_MIN);
        assert_eq!(dead_after(Duration::ZERO), SLOW_IS_DEAD_MIN);
    }

    #[test]
    fn a_failover_shares_its_winner_and_the_addresses_that_proved_dead() {
        let slow = Duration::from_millis(200);
        let mut silent = o("127.0.0.2:80", Err(libc::ETIMEDOUT), true);
        silent.elapsed = Duration::from_millis(250);
        let mut brief = o("127.0.0.4:80", Err(libc::ETIMEDOUT), true);
        brief.elapsed = Duration::from_millis(20);
        let outs = [
            silent,
            o("127.0.0.5:80", Err(libc::ECONNREFUSED), false),
            brief,
            o("127.0.0.3:80", Ok(()), false),
        ];
        let (win, dead) = failover_of(&outs, slow).unwrap();
        assert_eq!(win, "127.0.0.3:80".parse().unwrap());
        let want: Vec<IpAddr> = vec!["127.0.0.2".parse().unwrap(), "127.0.0.5".parse().unwrap()];
        assert_eq!(dead, want);
        // Nothing failed, or nothing won: nothing to share.
        assert_eq!(failover_of(&[o("127.0.0.3:80", Ok(()), false)], slow), None);
        assert_eq!(
            failover_of(&[o("127.0.0.3:80", Err(libc::ECONNREFUSED), false)], slow),
            None
        );
    }

    #[test]
    fn canonical_ip_unmaps_ipv4_mapped_addresses_only() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(canonical_ip(ip("::ffff:127.0.0.2")), ip("127.0.0.2"));
        assert_eq!(canonical_ip(ip("::2")), ip("::2"));
        assert_eq!(canonical_ip(ip("127.0.0.2")), ip("127.0.0.2"));
    }
}
