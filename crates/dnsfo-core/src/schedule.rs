//! The RFC 8305 (section 5) attempt schedule, without I/O: when the next connection attempt may
//! start. One attempt delay after the last one started, or at once when an attempt failed (or
//! DNS named new addresses) before that.
//!
//! Used by the dialer's steer (which both drivers, blocking and background, run) on `Instant`s,
//! and by `dnsfo check`'s estimate on offsets from the program's connect, so that the estimate
//! is the dialer's own rule. Owns: that rule. Must never: read a clock (time comes in).

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
    fn works_on_instants() {
        let t0 = Instant::now();
        let mut s = Schedule::new(ms(100), t0);
        assert!(!s.due(t0));
        s.next_at_once(t0 + ms(1));
        assert!(s.due(t0 + ms(1)));
        assert_eq!(s.delay(), ms(100));
    }
}
