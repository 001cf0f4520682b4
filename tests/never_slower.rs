//! End-to-end tests of the "never slower" rule: with dnsfo a program gets the outcome it gets
//! without dnsfo (the same errno) no later than the failover budget allows, a refused connect
//! costs almost nothing more when DNS does not answer, a single-address name whose address died
//! is re-resolved on connect, DNSFO_CONNECT_TIMEOUT_MS bounds a connect to a silent single
//! address, and the program's own SO_SNDTIMEO_NEW is what it reads back.
//!
//! Every test runs `python3 tests/e2e/neverslower.py run SCENARIO [--case CASE...]` (built on
//! scripts/lib/hermetic.py and its DNS server, scripts/lib/harness/dns.py): every case in its own private user,
//! mount and network namespace with its own /etc/hosts, resolv.conf (`nameserver 127.0.0.1`,
//! `options timeout:1 attempts:1`), nsswitch.conf (`hosts: files dns`) and an in-namespace DNS
//! server on 127.0.0.1:53 that logs every query (and misbehaves when the scenario says so); each
//! client run once without dnsfo (`CASE.plain`) and once with it (`CASE.dnsfo`), DNSFO_CACHE=0.
//! The clients time the connect call alone and print `Ci ms=<n> <outcome>` per connect
//! (outcome `GOT <banner>`, `ERR <ERRNO>` or `PENDING`). The assertions live here; every case is
//! checked and all failures are reported at once, each time with the whole outcome.
//!
//! The library is `$DNSFO_LIB`, else `target/release/libdnsfo.so`. Only loopback addresses are
//! used; every run has a hard timeout, every server a lifetime.

use std::time::Duration;

mod support;
use support::Outcome;

const HARNESS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/neverslower.py");
/// Hard cap on one harness invocation (its own watchdogs fire first).
const HARNESS_DEADLINE: Duration = Duration::from_secs(200);

const REFUSED: &str = "ERR ECONNREFUSED";
const TIMEDOUT: &str = "ERR ETIMEDOUT";
const A_BANNER: &str = "GOT HELLO 127.0.0.2";
const B_BANNER: &str = "GOT HELLO 127.0.0.3";

/// One connect as the client reported it: `TAG ms=<n> <outcome>`.
#[derive(Debug)]
struct Connect {
    ms: u64,
    outcome: String,
}

/// The client's stdout of run `section` (which must exist and not be skipped).
fn stdout<'a>(o: &'a Outcome, section: &str) -> Result<&'a str, String> {
    if !o.has(section) {
        return Err(format!("run {section} missing"));
    }
    let skipped = o.get(section, "skipped");
    if !skipped.is_empty() {
        return Err(format!("{section}: {skipped}"));
    }
    Ok(o.get(section, "stdout"))
}

/// The value of the client's line `KEY value` in run `section`.
fn line<'a>(o: &'a Outcome, section: &str, key: &str) -> Option<&'a str> {
    let out = stdout(o, section).ok()?;
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .map(str::trim)
}

/// Connect `tag` (C1, C2) of run `section`, if the client got to report it.
fn connect(o: &Outcome, section: &str, tag: &str) -> Option<Connect> {
    let rest = line(o, section, tag)?.strip_prefix("ms=")?;
    let (ms, outcome) = rest.split_once(' ').unwrap_or((rest, ""));
    Some(Connect {
        ms: ms.parse().ok()?,
        outcome: outcome.trim().to_string(),
    })
}

fn timed_out(o: &Outcome, section: &str) -> bool {
    o.get(section, "timed_out") == "1"
}

/// Every failed check of a test, reported together with the whole outcome.
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn check(&mut self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            self.0.push(msg());
        }
    }

    /// Connect `tag` of `section` must exist; returns it (or records the failure).
    fn connect(&mut self, o: &Outcome, section: &str, tag: &str) -> Option<Connect> {
        if let Err(e) = stdout(o, section) {
            self.0.push(e);
            return None;
        }
        let c = connect(o, section, tag);
        if c.is_none() {
            let why = if timed_out(o, section) {
                "the client was killed at its timeout first"
            } else {
                "the client did not report it"
            };
            self.0.push(format!("{section}: no {tag} outcome ({why})"));
        }
        c
    }

    #[track_caller]
    fn finish(self, o: &Outcome) {
        assert!(
            self.0.is_empty(),
            "{} failed check(s):\n  {}\n{o}",
            self.0.len(),
            self.0.join("\n  ")
        );
    }
}

fn invoke(scenario: &str, cases: &[&str]) -> Outcome {
    let mut args = vec![scenario];
    for c in cases {
        args.push("--case");
        args.push(c);
    }
    support::invoke(HARNESS, &args, HARNESS_DEADLINE)
}

// 1. rs.test = [127.0.0.2 refused, 127.0.0.3 silent] (/etc/hosts); the program connects to
// 127.0.0.2. Without dnsfo: ECONNREFUSED at once. With dnsfo the silent .3 may be tried, but the
// program gets ECONNREFUSED (never EINPROGRESS, ETIMEDOUT, EAGAIN) within the failover budget:
// <= 3500 ms with the default 2000 ms, <= 1300 ms with DNSFO_FAILOVER_BUDGET_MS=300.
#[test]
fn refused_then_silent_gives_the_refusal_within_the_budget() {
    let o = invoke("refused-silent", &[]);
    let mut c = Checks::default();
    for case in ["c-block", "c-sndtimeo3", "py-block", "py-t10", "c-poll"] {
        for (label, bound) in [(case.to_string(), 3500), (format!("{case}-b300"), 1300)] {
            let plain = format!("{label}.plain");
            if let Some(p) = c.connect(&o, &plain, "C1") {
                c.check(p.outcome == REFUSED && p.ms <= 1000, || {
                    format!("{plain}: without dnsfo not a quick refusal: {p:?}")
                });
            }
            let dnsfo = format!("{label}.dnsfo");
            if let Some(d) = c.connect(&o, &dnsfo, "C1") {
                c.check(d.outcome == REFUSED, || {
                    format!("{dnsfo}: errno {:?}, not the ECONNREFUSED of the program's own address ({} ms)", d.outcome, d.ms)
                });
                c.check(d.ms <= bound, || {
                    format!("{dnsfo}: {} after {} ms, bound {bound} ms", d.outcome, d.ms)
                });
            }
        }
    }
    c.finish(&o);
}

// 2. DNS answers each (name, type) once and then drops every query. one.test = [127.0.0.2],
// all.test = [127.0.0.2, 127.0.0.4] (all refused), and the literals glibc accepts (127.1,
// 0x7f.1, 2130706433: 127.0.0.1, refused). getaddrinfo + connect, twice in one process: every
// connect ends ECONNREFUSED as without dnsfo, and costs under 100 ms more than without it. No
// literal is ever asked of DNS.
#[test]
fn refusal_costs_under_100ms_more_when_dns_is_silent() {
    /// A refused connect that waits (up to 50 ms) for DNS uses well under 1 ms of CPU; a spin
    /// uses all of it.
    const MAX_CONNECT_CPU_MS: u64 = 25;
    let o = invoke("dns-silent", &[]);
    let mut c = Checks::default();
    let literals = ["127.1", "0x7f.1", "2130706433"];
    let cases = [
        ("one-c", "one.test"),
        ("one-py", "one.test"),
        ("one-py-t5", "one.test"),
        ("all-c", "all.test"),
        ("all-py", "all.test"),
        ("lit-127_1-c", "127.1"),
        ("lit-127_1-py", "127.1"),
        ("lit-0x7f_1-c", "0x7f.1"),
        ("lit-0x7f_1-py", "0x7f.1"),
        ("lit-2130706433-c", "2130706433"),
        ("lit-2130706433-py", "2130706433"),
    ];
    for (case, name) in cases {
        let plain = format!("{case}.plain");
        let dnsfo = format!("{case}.dnsfo");
        for tag in ["C1", "C2"] {
            let p = c.connect(&o, &plain, tag);
            let d = c.connect(&o, &dnsfo, tag);
            if let Some(p) = &p {
                c.check(p.outcome == REFUSED, || {
                    format!("{plain} {tag}: without dnsfo {p:?}")
                });
            }
            if let Some(d) = &d {
                c.check(d.outcome == REFUSED, || {
                    format!(
                        "{dnsfo} {tag}: errno {:?} ({} ms), not ECONNREFUSED as without dnsfo",
                        d.outcome, d.ms
                    )
                });
            }
            // The wait for DNS sleeps: a spin there (polling the failed socket, which is
            // always ready) once burnt the whole wait and then gave up with EINPROGRESS.
            let cpu_key = format!("{tag}_CPU_MS");
            if let Some(cpu) = line(&o, &dnsfo, &cpu_key).and_then(|v| v.parse::<u64>().ok()) {
                c.check(cpu < MAX_CONNECT_CPU_MS, || {
                    format!("{dnsfo} {tag}: the connect used {cpu} ms of CPU (a spin?)")
                });
            }
            if let (Some(p), Some(d)) = (&p, &d) {
                c.check(d.ms < p.ms + 100, || {
                    format!(
                        "{case} {tag} ({name}): {} ms with dnsfo vs {} ms without (limit +100 ms)",
                        d.ms, p.ms
                    )
                });
            }
        }
        if literals.contains(&name) {
            for section in [&plain, &dnsfo] {
                c.check(o.get(section, "dns_query_count") == "0", || {
                    format!(
                        "{section}: the literal {name} was asked of DNS: {}",
                        o.get(section, "dns_queries")
                    )
                });
            }
        }
    }
    c.finish(&o);
}

/// The refused stale cases: the record moved from 127.0.0.2 to 127.0.0.3 and .2 refuses; the
/// program connects again to .2. Without dnsfo: refused; with it: .3, through a new DNS query.
fn check_stale(c: &mut Checks, o: &Outcome, case: &str) {
    let plain = format!("{case}.plain");
    let dnsfo = format!("{case}.dnsfo");
    for section in [&plain, &dnsfo] {
        if let Some(first) = c.connect(o, section, "C1") {
            c.check(first.outcome == A_BANNER, || {
                format!("{section}: the first connect did not reach 127.0.0.2: {first:?}")
            });
        }
    }
    if let Some(p) = c.connect(o, &plain, "C2") {
        c.check(p.outcome == REFUSED, || {
            format!("{plain}: without dnsfo the stale address should refuse: {p:?}")
        });
    }
    c.check(o.get(&plain, "dns_query_count") == "0", || {
        format!(
            "{plain}: the program itself asked DNS again: {}",
            o.get(&plain, "dns_queries")
        )
    });
    if let Some(d) = c.connect(o, &dnsfo, "C2") {
        c.check(d.outcome == B_BANNER, || {
            format!(
                "{dnsfo}: the stale connect did not reach the moved record's 127.0.0.3: {} ({} ms)",
                d.outcome, d.ms
            )
        });
    }
    c.check(
        o.get(&dnsfo, "dns_queries")
            .contains("one.test A -> NOERROR [127.0.0.3]"),
        || {
            format!(
                "{dnsfo}: no re-resolution (A query answered 127.0.0.3) after the move: {:?}",
                o.get(&dnsfo, "dns_queries")
            )
        },
    );
}

// 3. one.test from DNS = [127.0.0.2] (up); an interactive client resolves once, connects, prints
// READY; .2 dies (refused) and DNS moves to [127.0.0.3]; the client connects again to .2.
// Python settimeout(5) (non-blocking), Python blocking, C blocking, node 20 and node 22
// (dns.lookup, then net.connect to the IP).
#[test]
fn stale_single_address_is_re_resolved() {
    let o = invoke(
        "single-stale",
        &["py-t5", "py-block", "c-block", "node", "node22"],
    );
    let mut c = Checks::default();
    for case in ["py-t5", "py-block", "c-block", "node"] {
        check_stale(&mut c, &o, case);
    }
    let node22 = o.get("harness", "node22");
    if node22.starts_with("absent") {
        eprintln!("note: node 22 case skipped: {node22}");
    } else {
        check_stale(&mut c, &o, "node22");
    }
    c.finish(&o);
}

// 3, curl: the first A query for one.test gets [127.0.0.2] (refused), every later one
// [127.0.0.3] (up, HTTP). One `curl http://one.test:PORT/`: refused without dnsfo; with dnsfo
// the page of 127.0.0.3, and the DNS log shows dnsfo's re-resolution.
#[test]
fn stale_single_address_is_re_resolved_curl() {
    let o = invoke("single-stale", &["curl"]);
    let mut c = Checks::default();
    match stdout(&o, "curl.plain") {
        Err(e) => c.0.push(e),
        Ok(out) => {
            c.check(
                o.get("curl.plain", "exit") == "7" && !out.contains("HELLO"),
                || "curl.plain: without dnsfo curl should fail to connect (exit 7)".into(),
            );
            c.check(o.get("curl.plain", "dns_a_query_count") == "1", || {
                "curl.plain: curl itself should ask for A exactly once".into()
            });
        }
    }
    match stdout(&o, "curl.dnsfo") {
        Err(e) => c.0.push(e),
        Ok(out) => {
            c.check(out.contains("HELLO 127.0.0.3"), || {
                format!(
                    "curl.dnsfo: no page from 127.0.0.3 (exit {:?}, stderr {:?})",
                    o.get("curl.dnsfo", "exit"),
                    o.get("curl.dnsfo", "stderr").trim()
                )
            });
            let queries = o.get("curl.dnsfo", "dns_queries");
            let a: u32 = o
                .get("curl.dnsfo", "dns_a_query_count")
                .parse()
                .unwrap_or(0);
            c.check(
                a >= 2 && queries.contains("one.test A -> NOERROR [127.0.0.3]"),
                || format!("curl.dnsfo: no re-resolution in the DNS log: {queries:?}"),
            );
        }
    }
    c.finish(&o);
}

// 3, silent: as the refused stale case, but 127.0.0.2 goes silent. A blocking C connect and a
// blocking Python one reach 127.0.0.3 within 2000 ms with dnsfo; without dnsfo they are still
// pending when the client is killed 4 s after it was told to connect again.
#[test]
fn stale_silent_single_address_is_re_resolved_in_2s() {
    let o = invoke("single-stale", &["silent-c", "silent-py"]);
    let mut c = Checks::default();
    for case in ["silent-c", "silent-py"] {
        let plain = format!("{case}.plain");
        let dnsfo = format!("{case}.dnsfo");
        if let Some(first) = c.connect(&o, &plain, "C1") {
            c.check(first.outcome == A_BANNER, || {
                format!("{plain}: the first connect did not reach 127.0.0.2: {first:?}")
            });
        }
        c.check(
            timed_out(&o, &plain) && connect(&o, &plain, "C2").is_none(),
            || format!("{plain}: without dnsfo the silent address should still be pending"),
        );
        if let Some(d) = c.connect(&o, &dnsfo, "C2") {
            c.check(d.outcome == B_BANNER && d.ms <= 2000, || {
                format!(
                    "{dnsfo}: {} after {} ms; want 127.0.0.3 within 2000 ms",
                    d.outcome, d.ms
                )
            });
        }
        c.check(
            o.get(&dnsfo, "dns_queries")
                .contains("one.test A -> NOERROR [127.0.0.3]"),
            || {
                format!(
                    "{dnsfo}: no re-resolution after the move: {:?}",
                    o.get(&dnsfo, "dns_queries")
                )
            },
        );
    }
    c.finish(&o);
}

// 4. DNSFO_CONNECT_TIMEOUT_MS=500, one.test = [127.0.0.2 silent] (DNS unchanged): a blocking C
// connect and Python settimeout(10) end with ETIMEDOUT within 1500 ms; without dnsfo they are
// still pending at the 4 s client timeout.
#[test]
fn connect_timeout_bounds_a_silent_single_address() {
    let o = invoke("single-timeout", &[]);
    let mut c = Checks::default();
    for case in ["c-block", "py-t10"] {
        let plain = format!("{case}.plain");
        let dnsfo = format!("{case}.dnsfo");
        if stdout(&o, &plain).is_ok() {
            c.check(
                timed_out(&o, &plain) && connect(&o, &plain, "C1").is_none(),
                || format!("{plain}: without dnsfo the connect should still be pending at 4 s"),
            );
        } else {
            c.check(false, || format!("run {plain} missing"));
        }
        if let Some(d) = c.connect(&o, &dnsfo, "C1") {
            c.check(d.outcome == TIMEDOUT && d.ms <= 1500, || {
                format!(
                    "{dnsfo}: {} after {} ms; want ETIMEDOUT within 1500 ms",
                    d.outcome, d.ms
                )
            });
        }
    }
    c.finish(&o);
}

// 5. SO_SNDTIMEO_NEW (0 s 700000 us) on a blocking socket, connect to sn.test = [127.0.0.3
// silent, 127.0.0.2 up], getsockopt(SO_SNDTIMEO); twice in one process (the second through the
// known winner). With dnsfo the connects reach 127.0.0.2 (the first may end EINPROGRESS by the
// program's own 700 ms, then complete there), and the program reads back 700000 us both times,
// as without dnsfo.
#[test]
fn sndtimeo_new_is_kept() {
    let o = invoke("sndtimeo-new", &[]);
    let mut c = Checks::default();
    let want = "sec=0 usec=700000";
    for tag in ["C1", "C2"] {
        let key = format!("{tag}_SNDTIMEO");
        let plain = line(&o, "sndtimeo-new.plain", &key);
        let dnsfo = line(&o, "sndtimeo-new.dnsfo", &key);
        c.check(plain == Some(want), || {
            format!("sndtimeo-new.plain {key}: {plain:?}, want {want:?}")
        });
        c.check(dnsfo == Some(want) && dnsfo == plain, || {
            format!("sndtimeo-new.dnsfo {key}: {dnsfo:?}; without dnsfo {plain:?}")
        });
    }
    if let Some(first) = c.connect(&o, "sndtimeo-new.dnsfo", "C1") {
        let later = line(&o, "sndtimeo-new.dnsfo", "C1_LATER").unwrap_or("");
        c.check(
            first.outcome == A_BANNER
                || (first.outcome == "ERR EINPROGRESS" && later.ends_with(A_BANNER)),
            || format!("sndtimeo-new.dnsfo C1: {first:?}, later {later:?}; want 127.0.0.2"),
        );
    }
    if let Some(second) = c.connect(&o, "sndtimeo-new.dnsfo", "C2") {
        c.check(second.outcome == A_BANNER, || {
            format!("sndtimeo-new.dnsfo C2 (known winner): {second:?}; want 127.0.0.2")
        });
    }
    c.finish(&o);
}
