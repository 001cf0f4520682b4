//! The race's clocks, without I/O: the RFC 8305 (section 5) attempt schedule (when the next
//! connection attempt may start: one attempt delay after the last one started, or at once when
//! an attempt failed or DNS named new addresses before that), when DNS is asked again (nothing
//! answered for a while and nothing is left to try), and when the race gives up ([`Deadlines`]:
//! the failover budget after the program's own address failed, the program's own timeout, the
//! short wait for DNS once every address failed).
//!
//! Used by the dialer's steer (which both drivers, blocking and background, run) on `Instant`s,
//! and by `dnsfo check`'s estimate on offsets from the program's connect, so that the estimate
//! is the dialer's own rule. Owns: those rules. Must never: read a clock (time comes in).

use std::ops::Add;
use std::time::Duration;

/// When the next attempt may start. `T` is a point in time: `Instant`, or a `Duration` since
/// some origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule<T> {
    delay: Duration,
    next: T,
}

impl<T: Copy + Ord + Add<Duration, Output = T>> Schedule<T> {
    /// The first attempt started at `first`: the next may start an attempt delay later.
    pub fn new(delay: Duration, first: T) -> Self {
        Schedule {
            delay,
            next: first + delay,
        }
    }

    /// The attempt delay.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// When the next attempt may start.
    pub fn next_start(&self) -> T {
        self.next
    }

    /// May the next attempt start at `now`?
    pub fn due(&self, now: T) -> bool {
        now >= self.next
    }

    /// An attempt started at `at`: the next one waits an attempt delay from then.
    pub fn started(&mut self, at: T) {
        self.next = at + self.delay;
    }

    /// An attempt failed at `at`, or new addresses arrived then: nothing is left to wait for, so
    /// the next attempt may start at once (never later than it already could).
    pub fn next_at_once(&mut self, at: T) {
        self.next = self.next.min(at);
    }

    /// When DNS is asked again, if nothing is left to try: once the latest attempt (started at
    /// `last_start`) went unanswered for an attempt delay, and at least [`DNS_QUIET_MIN`].
    pub fn refill_at(&self, last_start: T) -> T {
        last_start + self.delay.max(DNS_QUIET_MIN)
    }
}

/// DNS is asked again only when nothing answered for at least this long (or the attempt delay,
/// if longer): with no attempt delay at all, a live address answers within a round trip, and a
/// re-resolution would only cost time.
pub const DNS_QUIET_MIN: Duration = Duration::from_millis(100);

/// Why a race ends without a winner ([`Deadlines::expired`]), in the order they are looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expired {
    /// Every address failed, and DNS named no other in the short wait for it.
    NoNewAddress,
    /// The program's own timeout for the connect (or `DNSFO_CONNECT_TIMEOUT_MS`) passed.
    Cap,
    /// The failover budget after the program's own address failed is spent: the program gets
    /// that address's error.
    GiveUp,
}

/// When a race gives up. `T` as for [`Schedule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines<T> {
    budget: Duration,
    cap: Option<T>,
    give_up: Option<T>,
    dns: Option<T>,
}

impl<T: Copy + Ord + Add<Duration, Output = T>> Deadlines<T> {
    /// A race with this failover budget, and the program's own deadline for the connect if it
    /// has one.
    pub fn new(budget: Duration, cap: Option<T>) -> Self {
        Deadlines {
            budget,
            cap,
            give_up: None,
            dns: None,
        }
    }

    /// The program's own address failed at `at`: the others get the budget from then. Only the
    /// first failure counts (a later one must not extend the wait).
    pub fn own_address_failed(&mut self, at: T) {
        self.give_up.get_or_insert(at + self.budget);
    }

    /// Every address failed at `at` and DNS is asked: its answer is waited for `wait` at most,
    /// counted from the first time (asking again must not extend the wait).
    pub fn wait_for_dns(&mut self, at: T, wait: Duration) {
        self.dns.get_or_insert(at + wait);
    }

    /// When the wait for DNS ends, once every address failed.
    pub fn dns_deadline(&self) -> Option<T> {
        self.dns
    }

    /// Is any deadline other than DNS's set (the program's timeout, or the budget running)?
    /// Then the race cannot simply be left to the kernel.
    pub fn bounded(&self) -> bool {
        self.cap.is_some() || self.give_up.is_some()
    }

    /// Which deadline has passed at `now`, if any. The wait for DNS only counts while no attempt
    /// of the program's socket is under way (`own_live`): an attempt that is still going may
    /// yet win.
    pub fn expired(&self, now: T, own_live: bool) -> Option<Expired> {
        let passed = |t: Option<T>| t.is_some_and(|t| now >= t);
        if !own_live && passed(self.dns) {
            Some(Expired::NoNewAddress)
        } else if passed(self.cap) {
            Some(Expired::Cap)
        } else if passed(self.give_up) {
            Some(Expired::GiveUp)
        } else {
            None
        }
    }

    /// The earliest deadline set (a driver must look again then at the latest).
    pub fn earliest(&self) -> Option<T> {
        [self.cap, self.give_up, self.dns]
            .into_iter()
            .flatten()
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn one_attempt_delay_after_each_start() {
        let mut s = Schedule::new(ms(250), ms(0));
        assert_eq!(s.next_start(), ms(250));
        assert!(!s.due(ms(249)) && s.due(ms(250)));
        s.started(ms(250));
        assert_eq!(s.next_start(), ms(500));
        // A late start (the driver looked late) counts from when it really started.
        s.started(ms(530));
        assert_eq!(s.next_start(), ms(780));
    }

    #[test]
    fn a_failure_starts_the_next_at_once_but_never_later() {
        let mut s = Schedule::new(ms(250), ms(0));
        s.next_at_once(ms(3));
        assert_eq!(s.next_start(), ms(3), "refused after 3 ms: next at 3 ms");
        s.started(ms(3));
        // A failure after the next start was already due changes nothing.
        s.next_at_once(ms(400));
        assert_eq!(s.next_start(), ms(253));
    }

    #[test]
    fn zero_delay_starts_everything_at_once() {
        let mut s = Schedule::new(Duration::ZERO, ms(10));
        assert!(s.due(ms(10)));
        s.started(ms(10));
        assert!(s.due(ms(10)));
    }

    #[test]
    fn dns_is_asked_after_an_attempt_delay_of_silence_but_never_sooner_than_the_minimum() {
        let s = Schedule::new(ms(250), ms(0));
        assert_eq!(s.refill_at(ms(40)), ms(290));
        let s = Schedule::new(ms(30), ms(0));
        assert_eq!(s.refill_at(ms(40)), ms(40) + DNS_QUIET_MIN);
        let s = Schedule::new(Duration::ZERO, ms(0));
        assert_eq!(
            s.refill_at(ms(0)),
            DNS_QUIET_MIN,
            "no delay: still a quiet minimum"
        );
    }

    #[test]
    fn give_up_counts_the_budget_from_the_first_failure_of_the_own_address() {
        let mut d: Deadlines<Duration> = Deadlines::new(ms(2000), None);
        assert_eq!(
            (d.earliest(), d.bounded()),
            (None, false),
            "nothing failed: no deadline"
        );
        assert_eq!(d.expired(ms(1_000_000), true), None);
        d.own_address_failed(ms(5));
        d.own_address_failed(ms(900));
        assert_eq!(
            d.earliest(),
            Some(ms(2005)),
            "a later failure does not extend it"
        );
        assert!(d.bounded());
        assert_eq!(d.expired(ms(2004), true), None);
        assert_eq!(d.expired(ms(2005), true), Some(Expired::GiveUp));
        assert_eq!(d.expired(ms(2005), false), Some(Expired::GiveUp));
    }

    #[test]
    fn the_programs_own_timeout_comes_before_the_budget() {
        let mut d = Deadlines::new(ms(2000), Some(ms(700)));
        assert!(d.bounded());
        d.own_address_failed(ms(0));
        assert_eq!(d.earliest(), Some(ms(700)));
        assert_eq!(d.expired(ms(699), true), None);
        assert_eq!(d.expired(ms(700), true), Some(Expired::Cap));
        // Both passed: the program's own deadline is the one it asked for.
        assert_eq!(d.expired(ms(3000), true), Some(Expired::Cap));
    }

    #[test]
    fn the_wait_for_dns_is_short_fixed_and_only_while_nothing_is_under_way() {
        let mut d = Deadlines::new(ms(2000), None);
        d.wait_for_dns(ms(300), ms(50));
        d.wait_for_dns(ms(320), ms(50));
        assert_eq!(
            d.dns_deadline(),
            Some(ms(350)),
            "asking again does not extend it"
        );
        assert!(
            !d.bounded(),
            "DNS's wait alone leaves the race to the kernel"
        );
        assert_eq!(d.expired(ms(349), false), None);
        assert_eq!(d.expired(ms(350), false), Some(Expired::NoNewAddress));
        assert_eq!(
            d.expired(ms(350), true),
            None,
            "an attempt under way may yet win"
        );
        d.own_address_failed(ms(300));
        assert_eq!(d.earliest(), Some(ms(350)));
        assert_eq!(d.expired(ms(2300), true), Some(Expired::GiveUp));
    }

    #[test]
    fn works_on_instants() {
        let t0 = Instant::now();
        let mut s = Schedule::new(ms(100), t0);
        assert!(!s.due(t0));
        s.next_at_once(t0 + ms(1));
        assert!(s.due(t0 + ms(1)));
        assert_eq!(s.delay(), ms(100));
    }
}
