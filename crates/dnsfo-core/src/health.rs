//! What connects taught us: the winner per (name, port), failure memory per address, and the
//! round trips measured to each address (for the adaptive attempt delay).
//!
//! Owns: winners, dead-address penalties with exponential backoff, and their expiry; RTTs per
//! address (smoothed over samples, which are taken now and then, not on every connect). Must never:
//! do I/O, or hold anything but plain data (it lives behind one process-wide lock).

use rustc_hash::FxHashMap as HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::outcome::Outcome;
pub use crate::plan::Rtt;

/// Penalties grow ×2 per consecutive failure, up to this factor of the base TTL.
pub const MAX_BACKOFF_FACTOR: u32 = 16;
/// Ports remembered per name.
pub const MAX_PORTS: usize = 16;
/// Bound on remembered dead addresses and winners.
pub const MAX_ENTRIES: usize = 4096;

#[derive(Clone, Copy, Debug)]
struct Penalty {
    until: Instant,
    strikes: u32,
}

#[derive(Default, Debug)]
pub struct Health {
    /// Per name (looked up by `&str`, no allocation): (port, winning address).
    winners: HashMap<String, Vec<(u16, IpAddr)>>,
    dead: HashMap<SocketAddr, Penalty>,
    /// Per address: the smoothed RTT and when it was last sampled.
    rtt: HashMap<SocketAddr, (Rtt, Instant)>,
}

/// An address's RTT is sampled again (one `TCP_INFO` read) at most this often.
pub const RTT_RESAMPLE: Duration = Duration::from_secs(10);

impl Health {
    /// Should a connect that just succeeded to `addr` read its RTT? (No sample yet, or an old one.)
    pub fn rtt_wanted(&self, addr: &SocketAddr, now: Instant) -> bool {
        self.rtt
            .get(addr)
            .is_none_or(|(_, at)| now.saturating_duration_since(*at) >= RTT_RESAMPLE)
    }

    /// Adds an RTT sample for `addr` (smoothed as TCP does: 1/8 of the new sample for the RTT,
    /// 1/4 for the deviation).
    pub fn record_rtt(&mut self, addr: SocketAddr, sample: Rtt, now: Instant) {
        if self.rtt.len() >= MAX_ENTRIES && !self.rtt.contains_key(&addr) {
            self.rtt.clear();
        }
        let next = match self.rtt.get(&addr) {
            None => sample,
            Some((old, _)) => {
                let (o, n) = (i64::from(old.srtt_us), i64::from(sample.srtt_us));
                let (ov, nv) = (i64::from(old.var_us), i64::from(sample.var_us));
                Rtt {
                    srtt_us: (o + (n - o) / 8).clamp(0, i64::from(u32::MAX)) as u32,
                    var_us: (ov + ((n - o).abs().max(nv) - ov) / 4).clamp(0, i64::from(u32::MAX))
                        as u32,
                }
            }
        };
        self.rtt.insert(addr, (next, now));
    }

    /// Seeds `addr`'s RTT (from the shared cache) unless this process measured it already.
    pub fn seed_rtt(&mut self, addr: SocketAddr, rtt: Rtt, now: Instant) {
        if !self.rtt.contains_key(&addr) {
            // Counted as an old sample: this process measures its own at its first chance.
            let old = now.checked_sub(RTT_RESAMPLE).unwrap_or(now);
            self.record_rtt(addr, rtt, old);
        }
    }

    pub fn rtt(&self, addr: &SocketAddr) -> Option<Rtt> {
        self.rtt.get(addr).map(|(r, _)| *r)
    }

    /// The RTT history of a connect's candidates: the slowest address known (the delay must
    /// suit every address it waits for).
    pub fn rtt_of(&self, addrs: impl IntoIterator<Item = SocketAddr>) -> Option<Rtt> {
        addrs
            .into_iter()
            .filter_map(|a| self.rtt(&a))
            .reduce(|a, b| Rtt {
                srtt_us: a.srtt_us.max(b.srtt_us),
                var_us: a.var_us.max(b.var_us),
            })
    }

    pub fn winner(&self, name: &str, port: u16) -> Option<IpAddr> {
        self.winners
            .get(name)?
            .iter()
            .find(|(p, _)| *p == port)
            .map(|(_, ip)| *ip)
    }

    /// The winner of `name` on any port (for lookups, which do not always know the port).
    pub fn any_winner(&self, name: &str, port: Option<u16>) -> Option<IpAddr> {
        if let Some(p) = port {
            return self.winner(name, p);
        }
        self.winners.get(name)?.first().map(|(_, ip)| *ip)
    }

    /// Until when `addr` is to be skipped, if it is.
    pub fn dead_until(&self, addr: &SocketAddr, now: Instant) -> Option<Instant> {
        self.dead.get(addr).map(|p| p.until).filter(|u| *u > now)
    }

    /// Until when `ip` is dead on `port`, or on any port when `port` is `None`.
    pub fn ip_dead_until(&self, ip: IpAddr, port: Option<u16>, now: Instant) -> Option<Instant> {
        match port {
            Some(p) => self.dead_until(&SocketAddr::new(ip, p), now),
            None => self
                .dead
                .iter()
                .filter(|(a, p)| a.ip() == ip && p.until > now)
                .map(|(_, p)| p.until)
                .max(),
        }
    }

    pub fn record_success(&mut self, name: &str, addr: SocketAddr) {
        self.dead.remove(&addr);
        if !self.winners.contains_key(name) && self.winners.len() >= MAX_ENTRIES {
            self.winners.clear();
        }
        let ports = self.winners.entry(name.to_string()).or_default();
        ports.retain(|(p, _)| *p != addr.port());
        if ports.len() >= MAX_PORTS {
            ports.remove(0);
        }
        ports.push((addr.port(), addr.ip()));
    }

    /// The known winner `addr` failed: it is a winner no more, and dead like any other.
    pub fn record_failure_of_winner(&mut self, addr: SocketAddr, base: Duration, now: Instant) {
        let names: Vec<String> = self
            .winners
            .iter()
            .filter(|(_, ports)| ports.contains(&(addr.port(), addr.ip())))
            .map(|(n, _)| n.clone())
            .collect();
        for n in names {
            self.record_failure(&n, addr, base, now);
        }
    }

    /// Marks `addr` dead for `base` × 2^(consecutive failures − 1), capped.
    pub fn record_failure(&mut self, name: &str, addr: SocketAddr, base: Duration, now: Instant) {
        if let Some(ports) = self.winners.get_mut(name) {
            ports.retain(|w| *w != (addr.port(), addr.ip()));
            if ports.is_empty() {
                self.winners.remove(name);
            }
        }
        if self.dead.len() >= MAX_ENTRIES {
            self.dead.retain(|_, p| p.until > now);
            if self.dead.len() >= MAX_ENTRIES {
                self.dead.clear();
            }
        }
        let strikes = self
            .dead
            .get(&addr)
            .map_or(0, |p| p.strikes)
            .saturating_add(1);
        let factor = 1u32 << (strikes - 1).min(MAX_BACKOFF_FACTOR.trailing_zeros());
        crate::stats::add(&crate::stats::MARKED_DEAD, 1);
        self.dead.insert(
            addr,
            Penalty {
                until: now + base * factor,
                strikes,
            },
        );
    }

    /// Would [`Health::seed`] change anything? (Usually not: a read lock tells.)
    pub fn seeds_news(&self, name: &str, seeds: &crate::cache::Seeds, now: Instant) -> bool {
        seeds
            .winners
            .iter()
            .any(|w| self.winner(name, w.port()).is_none())
            || seeds.rtts.iter().any(|(a, _)| self.rtt(a).is_none())
            || seeds.dead.iter().any(|(a, _)| {
                self.dead_until(a, now).is_none() && self.winner(name, a.port()) != Some(a.ip())
            })
    }

    /// Takes what other processes found for `name` (the shared cache's [`crate::cache::Seeds`]):
    /// their winners where this process has none, their RTTs, and their dead addresses for the
    /// time left, unless this process knows the address alive or as its winner. Returns what it
    /// took, for the caller's log: winners, then dead addresses with the time left.
    pub fn seed(
        &mut self,
        name: &str,
        seeds: &crate::cache::Seeds,
        now: Instant,
    ) -> (Vec<SocketAddr>, Vec<(SocketAddr, Duration)>) {
        let mut winners = Vec::new();
        for w in &seeds.winners {
            if self.winner(name, w.port()).is_none() {
                self.record_success(name, *w);
                winners.push(*w);
            }
        }
        for (addr, rtt) in &seeds.rtts {
            self.seed_rtt(*addr, *rtt, now);
        }
        let mut dead = Vec::new();
        for (addr, left) in &seeds.dead {
            if self.dead_until(addr, now).is_none()
                && self.winner(name, addr.port()) != Some(addr.ip())
            {
                self.record_failure(name, *addr, *left, now);
                dead.push((*addr, *left));
            }
        }
        (winners, dead)
    }

    /// Would recording `outcomes` for `name` change nothing? Each connected to the address that
    /// already is the winner, none is known dead, and none brings an RTT sample that is due: the
    /// common case, told under a read lock, so threads connecting at once do not queue for the
    /// write lock.
    pub fn unchanged_by(&self, name: &str, outcomes: &[Outcome], now: Instant) -> bool {
        outcomes.iter().all(|o| {
            o.result.is_ok()
                && self.winner(name, o.addr.port()) == Some(o.addr.ip())
                && self.dead_until(&o.addr, now).is_none()
                && (o.rtt.is_none() || !self.rtt_wanted(&o.addr, now))
        })
    }

    /// Records a connect's outcomes for `name`: a success makes its address the winner (and
    /// brings its RTT sample when one is due), a failure marks the address dead for `dead_ttl`
    /// (growing on repeats), an attempt abandoned unanswered counts as a failure once it went
    /// unanswered for `slow` ([`Outcome::says_dead`]). Returns the RTTs that changed, smoothed,
    /// for the caller to share.
    pub fn record_outcomes(
        &mut self,
        name: &str,
        outcomes: &[Outcome],
        slow: Duration,
        dead_ttl: Duration,
        now: Instant,
    ) -> Vec<(SocketAddr, Rtt)> {
        let mut measured = Vec::new();
        for o in outcomes {
            if o.result.is_ok() {
                self.record_success(name, o.addr);
                if let Some(rtt) = o.rtt.filter(|_| self.rtt_wanted(&o.addr, now)) {
                    self.record_rtt(o.addr, rtt, now);
                    measured.push((o.addr, self.rtt(&o.addr).unwrap_or(rtt)));
                }
            } else if o.says_dead(slow) {
                self.record_failure(name, o.addr, dead_ttl, now);
            }
        }
        measured
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cache_seeds_fill_only_what_this_process_does_not_know() {
        use super::*;
        use crate::cache::Seeds;
        let now = Instant::now();
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let seeds = Seeds {
            winners: vec![a("127.0.0.3:80")],
            dead: vec![
                (a("127.0.0.2:80"), Duration::from_secs(5)),
                (a("127.0.0.4:80"), Duration::from_secs(5)),
            ],
            rtts: vec![(
                a("127.0.0.3:80"),
                Rtt {
                    srtt_us: 800,
                    var_us: 50,
                },
            )],
        };
        let mut h = Health::default();
        h.record_success("svc", a("127.0.0.4:80")); // its own winner: not dead by hearsay
        h.record_success("other", a("127.0.0.9:81"));
        assert!(h.seeds_news("svc", &seeds, now));
        let (winners, dead) = h.seed("svc", &seeds, now);
        assert!(winners.is_empty(), "it has its own winner for port 80");
        assert_eq!(dead, vec![(a("127.0.0.2:80"), Duration::from_secs(5))]);
        assert!(h.rtt(&a("127.0.0.3:80")).is_some());
        assert!(
            !h.seeds_news("svc", &seeds, now),
            "nothing new the second time"
        );
    }

    #[test]
    fn outcomes_teach_the_winner_the_dead_and_due_rtts_and_a_repeat_changes_nothing() {
        use super::*;
        use crate::outcome::Outcome;
        let now = Instant::now();
        let ms = Duration::from_millis;
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let rtt = Rtt {
            srtt_us: 900,
            var_us: 100,
        };
        let outs = [
            Outcome::abandoned(a("127.0.0.2:80"), ms(250)),
            Outcome::abandoned(a("127.0.0.4:80"), ms(20)),
            Outcome::settled(a("127.0.0.5:80"), Err(libc::ECONNREFUSED), ms(1)),
            Outcome::connected(a("127.0.0.3:80"), ms(1), Some(rtt)),
        ];
        let mut h = Health::default();
        assert!(!h.unchanged_by("svc", &outs[3..], now));
        let measured = h.record_outcomes("svc", &outs, ms(200), ms(30_000), now);
        assert_eq!(measured, vec![(a("127.0.0.3:80"), rtt)]);
        assert_eq!(h.winner("svc", 80), Some("127.0.0.3".parse().unwrap()));
        assert!(
            h.dead_until(&a("127.0.0.2:80"), now).is_some(),
            "silent long enough"
        );
        assert!(h.dead_until(&a("127.0.0.5:80"), now).is_some(), "refused");
        assert!(
            h.dead_until(&a("127.0.0.4:80"), now).is_none(),
            "abandoned too soon"
        );
        // The same success again, its RTT sampled just now: nothing to write.
        assert!(h.unchanged_by("svc", &outs[3..], now));
        assert!(
            !h.unchanged_by("svc", &outs[2..], now),
            "a failure always teaches"
        );
    }

    #[test]
    fn rtt_is_smoothed_sampled_now_and_then_and_bounded_by_the_slowest() {
        let mut h = Health::default();
        let now = Instant::now();
        let a: SocketAddr = "127.0.0.2:80".parse().unwrap();
        let b: SocketAddr = "127.0.0.3:80".parse().unwrap();
        assert!(h.rtt_wanted(&a, now));
        h.record_rtt(
            a,
            Rtt {
                srtt_us: 800,
                var_us: 100,
            },
            now,
        );
        assert!(!h.rtt_wanted(&a, now));
        assert!(h.rtt_wanted(&a, now + RTT_RESAMPLE));
        h.record_rtt(
            a,
            Rtt {
                srtt_us: 1600,
                var_us: 100,
            },
            now,
        );
        let r = h.rtt(&a).unwrap();
        assert_eq!(r.srtt_us, 900, "1/8 of the new sample");
        assert!(r.var_us > 100);
        // A seed never replaces a measurement, and counts as old.
        h.seed_rtt(
            a,
            Rtt {
                srtt_us: 1,
                var_us: 1,
            },
            now,
        );
        assert_eq!(h.rtt(&a).unwrap().srtt_us, 900);
        h.seed_rtt(
            b,
            Rtt {
                srtt_us: 5000,
                var_us: 7,
            },
            now,
        );
        assert!(h.rtt_wanted(&b, now));
        let both = h.rtt_of([a, b]).unwrap();
        assert_eq!((both.srtt_us, both.var_us), (5000, r.var_us));
        assert_eq!(h.rtt_of(["127.0.0.9:80".parse().unwrap()]), None);
    }

    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn failure_expires_and_backs_off() {
        let mut h = Health::default();
        let t0 = Instant::now();
        let ttl = Duration::from_secs(10);
        let a = sa("127.0.0.2:80");
        h.record_failure("n", a, ttl, t0);
        assert_eq!(h.dead_until(&a, t0), Some(t0 + ttl));
        assert!(h.dead_until(&a, t0 + ttl).is_none(), "expired");
        assert!(h.dead_until(&sa("127.0.0.2:81"), t0).is_none(), "per port");
        assert!(h.ip_dead_until(a.ip(), None, t0).is_some());
        // Second consecutive failure doubles, and so on up to the cap.
        h.record_failure("n", a, ttl, t0);
        assert_eq!(h.dead_until(&a, t0), Some(t0 + ttl * 2));
        for _ in 0..10 {
            h.record_failure("n", a, ttl, t0);
        }
        assert_eq!(h.dead_until(&a, t0), Some(t0 + ttl * MAX_BACKOFF_FACTOR));
        // Success forgives.
        h.record_success("n", a);
        assert!(h.dead_until(&a, t0).is_none());
        h.record_failure("n", a, ttl, t0);
        assert_eq!(h.dead_until(&a, t0), Some(t0 + ttl));
    }

    #[test]
    fn winner_per_name_and_port_and_dropped_on_failure() {
        let mut h = Health::default();
        let now = Instant::now();
        h.record_success("n", sa("127.0.0.3:80"));
        assert_eq!(h.winner("n", 80), Some("127.0.0.3".parse().unwrap()));
        assert_eq!(h.winner("n", 81), None);
        assert_eq!(h.winner("m", 80), None);
        assert!(h.any_winner("n", None).is_some());
        h.record_failure("n", sa("127.0.0.3:80"), Duration::from_secs(1), now);
        assert_eq!(h.winner("n", 80), None);
    }

    #[test]
    fn bounded() {
        let mut h = Health::default();
        let now = Instant::now();
        for i in 0..(MAX_ENTRIES as u32 + 100) {
            let a = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::from(0x7f00_0000u32 + i)), 80);
            h.record_failure("n", a, Duration::from_secs(60), now);
            let b = SocketAddr::new(a.ip(), 81);
            h.record_success(&format!("n{i}"), b);
        }
        assert!(h.dead.len() <= MAX_ENTRIES && h.winners.len() <= MAX_ENTRIES);
    }
}
