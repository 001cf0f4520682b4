//! Where the connect is decided: a pure function from what is known to an ordered list of
//! addresses to try. Also the order in which lookups present a name's addresses.
//!
//! Owns: the policy (the program's choice first; the known winner first only when that choice is
//! known dead; then the rest with address families interleaved as RFC 8305 §4 asks, known-dead
//! last, soonest-to-expire first). The program's choice stands: client-side round robin and
//! health checkers that probe each address see each address. Must
//! never: do I/O, read clocks or globals, or return an address that is not in `known`.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Everything the planner looks at for one connect.
pub struct Input<'a> {
    /// The address the program passed to `connect`.
    pub chosen: IpAddr,
    /// Every address the resolver returned for the name, in resolver order.
    pub known: &'a [IpAddr],
    /// The address that last won for this (name, port), if any.
    pub winner: Option<IpAddr>,
    /// Until when each address is known dead (`None`: not dead).
    pub dead_until: &'a dyn Fn(IpAddr) -> Option<Instant>,
}

/// The addresses to try, in order. Empty when `chosen` is not one of `known` (the connect is
/// then not dnsfo's business).
pub fn plan(input: &Input) -> Vec<IpAddr> {
    if !input.known.contains(&input.chosen) {
        return Vec::new();
    }
    let mut live: Vec<IpAddr> = Vec::with_capacity(input.known.len());
    let mut dead: Vec<(Instant, usize, IpAddr)> = Vec::new();
    for (i, ip) in input.known.iter().enumerate() {
        match (input.dead_until)(*ip) {
            Some(until) => dead.push((until, i, *ip)),
            None => live.push(*ip),
        }
    }
    let head = head(input.chosen, input.winner, |ip| live.contains(&ip));
    let mut out = Vec::with_capacity(input.known.len());
    if let Some(h) = head {
        out.push(h);
        live.retain(|ip| *ip != h);
    }
    // RFC 8305 §4: after the first address, alternate families (first family count 1).
    let first_v6 = head.unwrap_or(input.chosen).is_ipv6();
    let (mut same, mut other): (Vec<IpAddr>, Vec<IpAddr>) =
        live.into_iter().partition(|ip| ip.is_ipv6() == first_v6);
    same.reverse();
    other.reverse();
    let mut take_other = head.is_some();
    while !same.is_empty() || !other.is_empty() {
        let next = if take_other {
            other.pop().or_else(|| same.pop())
        } else {
            same.pop().or_else(|| other.pop())
        };
        out.extend(next);
        take_other = !take_other;
    }
    dead.sort();
    out.extend(dead.into_iter().map(|(_, _, ip)| ip));
    out
}

/// The program's socket, as far as which peers it can reach goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reach {
    /// An `AF_INET6` socket (else `AF_INET`).
    pub v6: bool,
    /// `IPV6_V6ONLY` on an `AF_INET6` socket: no IPv4 peers through `::ffff:a.b.c.d`.
    pub v6only: bool,
    /// The address the program bound it to, if any (port aside).
    pub bind: Option<IpAddr>,
}

impl Reach {
    /// Can the socket reach `ip` as it is: the same family, or IPv4 through an `AF_INET6`
    /// socket that is not v6-only, from a source address of the peer's family (or none)? The
    /// program's socket is never replaced, so an address it cannot reach is not tried at all.
    pub fn can_reach(&self, ip: IpAddr) -> bool {
        let family = match ip {
            IpAddr::V4(_) => !self.v6 || !self.v6only,
            IpAddr::V6(_) => self.v6,
        };
        let unmapped = |ip: IpAddr| match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let source = match self.bind.map(unmapped) {
            None => true,
            Some(b) if b.is_unspecified() => true,
            Some(b) => b.is_ipv4() == ip.is_ipv4(),
        };
        family && source
    }
}

/// The planned addresses (`order`) that the program's socket can reach, with the program's
/// port (and, on its own address `chosen`, its IPv6 flow label and scope: `addr` is what it
/// passed to `connect`), in the order its socket can take them.
///
/// An `AF_INET6` socket that has made an attempt to an IPv4 peer (`::ffff:a.b.c.d`) keeps the
/// kernel's IPv4 handling: a later connect of it to a native IPv6 peer stays in `SYN_SENT` for
/// good (seen on Linux 6.x). So after the program's own IPv4 address only IPv4 addresses follow,
/// and after its own IPv6 address the IPv6 ones come first.
pub fn reachable(
    sock: Reach,
    order: &[IpAddr],
    chosen: IpAddr,
    addr: SocketAddr,
) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = order
        .iter()
        .filter(|ip| **ip == chosen || sock.can_reach(**ip))
        .filter(|ip| !(sock.v6 && chosen.is_ipv4() && ip.is_ipv6()))
        .map(|&ip| {
            let a = SocketAddr::new(ip, addr.port());
            match (a, addr) {
                // The program's own IPv6 address keeps its flow label and scope id.
                (SocketAddr::V6(mut a6), SocketAddr::V6(o))
                    if ip == chosen && IpAddr::V6(*o.ip()) == ip =>
                {
                    a6.set_flowinfo(o.flowinfo());
                    a6.set_scope_id(o.scope_id());
                    SocketAddr::V6(a6)
                }
                _ => a,
            }
        })
        .collect();
    if sock.v6 && chosen.is_ipv6() {
        // Stable: the plan's order within each family stays.
        out.sort_by_key(|a| a.ip().is_ipv4());
    }
    out
}

/// The first address of a plan: the program's choice while it is live, else the known winner if
/// that is live, else none (the rest of the plan decides). `live`: an address of the name that
/// is not known dead. (A blocking connect asks this alone: the whole plan waits for a race.)
pub fn head(
    chosen: IpAddr,
    winner: Option<IpAddr>,
    live: impl Fn(IpAddr) -> bool,
) -> Option<IpAddr> {
    if live(chosen) {
        Some(chosen)
    } else {
        winner.filter(|w| live(*w))
    }
}

/// The order a lookup's answer is given back in: the winner first, known-dead addresses last
/// (soonest to recover first), everything else as the resolver ordered it. Returns `None` when
/// the resolver's order stands, so the common case touches nothing.
pub fn lookup_order(
    addrs: &[IpAddr],
    winner: Option<IpAddr>,
    dead_until: &dyn Fn(IpAddr) -> Option<Instant>,
) -> Option<Vec<IpAddr>> {
    // The usual answer: nothing dead, the winner (if any) already first. Told without
    // allocating: lookups run this on every answer.
    let winner_leads = winner.is_none_or(|w| {
        let lead = addrs.iter().take_while(|ip| **ip == w).count();
        !addrs[lead..].contains(&w)
    });
    if winner_leads && addrs.iter().all(|ip| dead_until(*ip).is_none()) {
        return None;
    }
    let mut keyed: Vec<(u8, Option<Instant>, usize, IpAddr)> = addrs
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let until = dead_until(*ip);
            let class = if until.is_some() {
                2
            } else if Some(*ip) == winner {
                0
            } else {
                1
            };
            (class, until, i, *ip)
        })
        .collect();
    keyed.sort();
    let order: Vec<IpAddr> = keyed.into_iter().map(|k| k.3).collect();
    (order.as_slice() != addrs).then_some(order)
}

/// A round-trip measurement of a connection that succeeded: the kernel's smoothed RTT and its
/// mean deviation (`TCP_INFO`'s `tcpi_rtt`, `tcpi_rttvar`), in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rtt {
    pub srtt_us: u32,
    pub var_us: u32,
}

/// The attempt delay for a name (RFC 8305 section 5: it may follow historical RTT data, never
/// under 10 ms): with history, what TCP itself would wait before it gives up on a segment
/// (2 x RTT + 4 x deviation, an RTO without its 200 ms floor), clamped to `min..=max`; with no
/// history, `max` (the configured delay).
pub fn attempt_delay(history: Option<Rtt>, min: Duration, max: Duration) -> Duration {
    let Some(r) = history else { return max };
    let us = 2 * u64::from(r.srtt_us) + 4 * u64::from(r.var_us);
    Duration::from_micros(us).clamp(min.min(max), max)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bind_limits_reach() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let r = |v6, v6only, bind: Option<&str>| Reach {
            v6,
            v6only,
            bind: bind.map(ip),
        };
        let (v4, v6) = (ip("127.0.0.2"), ip("::1"));
        let t = r(false, false, Some("127.0.0.1"));
        assert!(t.can_reach(v4));
        assert!(
            !t.can_reach(v6),
            "an AF_INET socket cannot reach an IPv6 peer"
        );
        let t = r(true, false, Some("::"));
        assert!(t.can_reach(v4) && t.can_reach(v6));
        let t = r(true, true, Some("::1"));
        assert!(!t.can_reach(v4) && t.can_reach(v6));
        let t = r(true, false, Some("::1"));
        assert!(
            !t.can_reach(v4),
            "a socket bound to ::1 cannot reach an IPv4 peer"
        );
        let t = r(true, false, Some("::ffff:127.0.0.1"));
        assert!(t.can_reach(v4) && !t.can_reach(v6));
    }

    #[test]
    fn reachable_keeps_the_sockets_family_rules_and_the_programs_scope() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let order = [ip("::2"), ip("127.0.0.3"), ip("::3"), ip("127.0.0.4")];
        let v6 = Reach {
            v6: true,
            v6only: false,
            bind: None,
        };
        // Its own address IPv6: IPv6 first, then IPv4 (through ::ffff:), the plan's order kept
        // within each family; the program's scope id stays on its own address.
        let own: SocketAddr = "[::2%7]:80".parse().unwrap();
        let got = reachable(v6, &order, ip("::2"), own);
        let want: Vec<SocketAddr> = ["[::2%7]:80", "[::3]:80", "127.0.0.3:80", "127.0.0.4:80"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(got, want);
        // After an IPv4 attempt an AF_INET6 socket stays IPv4.
        let got = reachable(
            v6,
            &order,
            ip("127.0.0.3"),
            "[::ffff:127.0.0.3]:80".parse().unwrap(),
        );
        assert!(got.iter().all(|a| a.is_ipv4()), "{got:?}");
        // An AF_INET socket reaches IPv4 only; v6-only reaches IPv6 only.
        let v4 = Reach {
            v6: false,
            v6only: false,
            bind: None,
        };
        assert!(
            reachable(v4, &order, ip("127.0.0.3"), "127.0.0.3:80".parse().unwrap())
                .iter()
                .all(|a| a.is_ipv4())
        );
        let only = Reach {
            v6: true,
            v6only: true,
            bind: None,
        };
        assert!(reachable(only, &order, ip("::2"), own)
            .iter()
            .all(|a| a.is_ipv6()));
    }

    #[test]
    fn attempt_delay_follows_rtt_within_bounds() {
        let ms = Duration::from_millis;
        let rtt = |srtt_us, var_us| Some(Rtt { srtt_us, var_us });
        // No history: the configured delay.
        assert_eq!(attempt_delay(None, ms(10), ms(250)), ms(250));
        // Loopback (tens of µs): the minimum.
        assert_eq!(attempt_delay(rtt(50, 25), ms(10), ms(250)), ms(10));
        // 40 ms round trips: at least twice the RTT.
        let d = attempt_delay(rtt(40_000, 2_000), ms(10), ms(250));
        assert_eq!(d, ms(88));
        assert!(d >= ms(80));
        // Far away or jittery: never above the configured delay.
        assert_eq!(
            attempt_delay(rtt(300_000, 100_000), ms(10), ms(250)),
            ms(250)
        );
        assert_eq!(
            attempt_delay(rtt(u32::MAX, u32::MAX), ms(10), ms(250)),
            ms(250)
        );
        // A minimum above the configured delay never raises the delay past it.
        assert_eq!(attempt_delay(rtt(50, 25), ms(300), ms(250)), ms(250));
    }

    proptest! {
        #[test]
        fn attempt_delay_is_never_below_min_nor_above_max(
            srtt in any::<u32>(), var in any::<u32>(), min in 10u64..2000, max in 0u64..60000,
            none in any::<bool>(),
        ) {
            let (min, max) = (Duration::from_millis(min), Duration::from_millis(max));
            let h = (!none).then_some(Rtt { srtt_us: srtt, var_us: var });
            let d = attempt_delay(h, min, max);
            prop_assert!(d <= max);
            prop_assert!(d >= min.min(max));
        }
    }

    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|s| ip(s)).collect()
    }
    fn run(
        chosen: &str,
        known: &[&str],
        winner: Option<&str>,
        dead: &[(&str, u64)],
    ) -> Vec<IpAddr> {
        let t0 = Instant::now();
        let dead: HashMap<IpAddr, Instant> = dead
            .iter()
            .map(|(a, s)| (ip(a), t0 + Duration::from_secs(*s)))
            .collect();
        let known = ips(known);
        plan(&Input {
            chosen: ip(chosen),
            known: &known,
            winner: winner.map(ip),
            dead_until: &|a| dead.get(&a).copied(),
        })
    }

    #[test]
    fn programs_choice_first_then_resolver_order() {
        let p = run(
            "127.0.0.3",
            &["127.0.0.2", "127.0.0.3", "127.0.0.4"],
            None,
            &[],
        );
        assert_eq!(p, ips(&["127.0.0.3", "127.0.0.2", "127.0.0.4"]));
    }

    #[test]
    fn unknown_choice_is_not_planned() {
        assert!(run("127.0.0.9", &["127.0.0.2", "127.0.0.3"], None, &[]).is_empty());
    }

    #[test]
    fn winner_first_dead_last_soonest_first() {
        let p = run(
            "127.0.0.2",
            &["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"],
            Some("127.0.0.4"),
            &[("127.0.0.2", 20), ("127.0.0.3", 10)],
        );
        assert_eq!(
            p,
            ips(&["127.0.0.4", "127.0.0.5", "127.0.0.3", "127.0.0.2"])
        );
    }

    #[test]
    fn dead_winner_is_not_first() {
        let p = run(
            "127.0.0.2",
            &["127.0.0.2", "127.0.0.3"],
            Some("127.0.0.3"),
            &[("127.0.0.3", 5)],
        );
        assert_eq!(p, ips(&["127.0.0.2", "127.0.0.3"]));
    }

    #[test]
    fn families_interleave_after_the_first() {
        let p = run(
            "::1",
            &["::1", "::2", "::3", "127.0.0.2", "127.0.0.3"],
            None,
            &[],
        );
        assert_eq!(p, ips(&["::1", "127.0.0.2", "::2", "127.0.0.3", "::3"]));
    }

    #[test]
    fn all_dead_still_tried_in_expiry_order() {
        let p = run(
            "127.0.0.2",
            &["127.0.0.2", "127.0.0.3"],
            None,
            &[("127.0.0.2", 9), ("127.0.0.3", 3)],
        );
        assert_eq!(p, ips(&["127.0.0.3", "127.0.0.2"]));
    }

    #[test]
    fn expiry_brings_an_address_back() {
        // The planner sees only "dead until"; health drops expired penalties (see health tests).
        // Back alive, the program's own choice is tried first again, winner or not.
        let p = run(
            "127.0.0.2",
            &["127.0.0.2", "127.0.0.3"],
            Some("127.0.0.3"),
            &[],
        );
        assert_eq!(p[0], ip("127.0.0.2"));
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn lookup_order_winner_first_dead_last() {
        let t0 = Instant::now();
        let addrs = ips(&["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
        let d = |a: IpAddr| (a == ip("127.0.0.2")).then_some(t0);
        assert_eq!(
            lookup_order(&addrs, Some(ip("127.0.0.4")), &d).unwrap(),
            ips(&["127.0.0.4", "127.0.0.3", "127.0.0.2"])
        );
        assert_eq!(
            lookup_order(&addrs, None, &|_| None),
            None,
            "untouched when nothing is known"
        );
        assert_eq!(lookup_order(&addrs, Some(ip("127.0.0.2")), &|_| None), None);
    }

    fn arb_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            (0u8..8).prop_map(|i| IpAddr::from([127, 0, 0, i])),
            (0u16..8).prop_map(|i| IpAddr::from([0, 0, 0, 0, 0, 0, 0, i])),
        ]
    }

    proptest! {
        #[test]
        fn plan_is_a_permutation_of_known_with_the_choice_first(
            known in prop::collection::vec(arb_ip(), 1..10),
            pick in any::<prop::sample::Index>(),
            winner in prop::option::of(arb_ip()),
            dead in prop::collection::vec((arb_ip(), 1u64..100), 0..6),
        ) {
            let mut uniq = known.clone();
            uniq.dedup();
            let mut seen = Vec::new();
            uniq.retain(|a| { let new = !seen.contains(a); seen.push(*a); new });
            let chosen = *pick.get(&uniq);
            let t0 = Instant::now();
            let dead: HashMap<IpAddr, Instant> = dead.into_iter().map(|(a, s)| (a, t0 + Duration::from_secs(s))).collect();
            let out = plan(&Input { chosen, known: &uniq, winner, dead_until: &|a| dead.get(&a).copied() });
            let mut a = out.clone(); a.sort();
            let mut b = uniq.clone(); b.sort();
            prop_assert_eq!(a, b);
            if !dead.contains_key(&chosen) {
                // The program's choice stands when it is not known dead.
                prop_assert_eq!(out[0], chosen);
            } else if let Some(w) = winner {
                if uniq.contains(&w) && !dead.contains_key(&w) {
                    prop_assert_eq!(out[0], w);
                }
            }
            // Dead addresses come after every live one.
            let first_dead = out.iter().position(|a| dead.contains_key(a)).unwrap_or(out.len());
            prop_assert!(out[first_dead..].iter().all(|a| dead.contains_key(a)));
        }

        #[test]
        fn lookup_order_is_a_permutation(
            addrs in prop::collection::vec(arb_ip(), 0..10),
            winner in prop::option::of(arb_ip()),
            dead in prop::collection::vec(arb_ip(), 0..4),
        ) {
            let t0 = Instant::now();
            let d = |a: IpAddr| dead.contains(&a).then_some(t0);
            let out = lookup_order(&addrs, winner, &d).unwrap_or_else(|| addrs.clone());
            let mut a = out.clone(); a.sort();
            let mut b = addrs.clone(); b.sort();
            prop_assert_eq!(a, b);
            if let Some(w) = winner {
                if addrs.contains(&w) && !dead.contains(&w) {
                    prop_assert_eq!(out[0], w);
                }
            }
        }
    }
}
