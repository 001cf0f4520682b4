//! End-to-end tests of issue 7: re-resolution when every known address of a name failed (stale
//! DNS), and the winner cache shared between processes (`DNSFO_CACHE_DIR`).
//!
//! Every test runs `python3 tests/e2e/dnsstale.py run SCENARIO ...` (see that file; it builds on
//! scripts/lib/hermetic.py). It re-executes itself under `unshare -rmn`: a private user, mount and
//! network namespace with its own /etc/hosts, /etc/resolv.conf (`nameserver 127.0.0.1`) and
//! /etc/nsswitch.conf (`hosts: files dns`), and a tiny authoritative DNS server of its own on
//! 127.0.0.1:53 whose records the scenario changes while the client runs. It prints what happened
//! as `<section> <key> <escaped value>` lines; the assertions live here.
//!
//! Stale DNS: a client resolves `svc.test` once, connects (banner from the old address), prints
//! READY; the scenario then moves the record and kills the old server; the client connects AGAIN to
//! the address it resolved before. Without dnsfo that is ECONNREFUSED; with dnsfo it must land on
//! the new address, and the DNS server's query log must show the fresh lookup.
//!
//! Shared cache: names come from /etc/hosts (`svc`: silent 127.0.0.2, up 127.0.0.3); each process
//! times its own connect (`CONNECT_MS`), so interpreter start-up cannot blur the bounds.
//!
//! The library is `$DNSFO_LIB`, else `target/release/libdnsfo.so` (`cargo build --release --lib`).
//! Only loopback addresses are used; every run has a hard timeout, every server a lifetime.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const HARNESS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/dnsstale.py");
/// Hard cap on one harness invocation (its own watchdog fires well before).
const HARNESS_DEADLINE: Duration = Duration::from_secs(150);

/// A failover past one silent address costs the attempt delay (250 ms): at least this much.
const PAYS_FAILOVER_MS: u64 = 200;
/// "No failover delay": a healthy loopback connect takes about a millisecond.
const NO_DELAY_MS: u64 = 100;
/// Bound on a connect that re-resolves (the kernel alone would refuse, or wait ~127 s).
const RERESOLVE_BOUND_MS: u64 = 2000;

mod support;
use support::Outcome;

impl Outcome {
    /// A client run's section; fails the test when it is missing or was skipped.
    #[track_caller]
    fn client(&self, section: &str) -> Client<'_> {
        assert!(
            self.order.iter().any(|v| v == section),
            "run {section} missing from the harness output\n{self}"
        );
        let skipped = self.get(section, "skipped");
        assert!(
            skipped.is_empty(),
            "{section}: {skipped} (run `cargo build --release --lib`)\n{self}"
        );
        Client {
            o: self,
            section: section.to_string(),
        }
    }
}

/// One client run as reported by the harness.
struct Client<'a> {
    o: &'a Outcome,
    section: String,
}

impl Client<'_> {
    fn get(&self, key: &str) -> &str {
        self.o.get(&self.section, key)
    }

    fn exit(&self) -> Option<i32> {
        self.get("exit").parse().ok()
    }

    fn stdout(&self) -> &str {
        self.get("stdout")
    }

    /// The value of the client's `KEY value` stdout line (first one).
    fn line(&self, key: &str) -> Option<&str> {
        self.stdout().lines().find_map(|l| {
            l.strip_prefix(key)
                .and_then(|rest| rest.strip_prefix(' '))
                .map(str::trim)
        })
    }

    #[track_caller]
    fn ms(&self, key: &str) -> u64 {
        let v = self.line(key).and_then(|v| v.parse().ok());
        v.unwrap_or_else(|| panic!("{}: no `{key} N` line\n{}", self.section, self.o))
    }

    #[track_caller]
    fn num(&self, key: &str) -> i64 {
        self.get(key)
            .parse()
            .unwrap_or_else(|_| panic!("{}: field {key} is not a number\n{}", self.section, self.o))
    }

    #[track_caller]
    fn check(&self, ok: bool, what: &str) {
        assert!(ok, "{}: {what}\n{}", self.section, self.o);
    }

    #[track_caller]
    fn expect_line(&self, key: &str, want: &str) {
        let got = self.line(key);
        self.check(
            got == Some(want),
            &format!("expected `{key} {want}`, got {got:?}"),
        );
    }

    /// With the library preloaded and no DNSFO_LOG, nothing of dnsfo reaches stderr.
    #[track_caller]
    fn quiet(&self) {
        let noisy: Vec<&str> = self
            .get("stderr")
            .lines()
            .filter(|l| l.to_ascii_lowercase().contains("dnsfo"))
            .collect();
        self.check(
            noisy.is_empty(),
            &format!("dnsfo wrote to the program's stderr: {noisy:?}"),
        );
    }
}

/// Run `dnsstale.py run <args>` with a hard deadline and parse what it printed.
#[track_caller]
fn harness(args: &[&str]) -> Outcome {
    support::invoke(HARNESS, args, HARNESS_DEADLINE)
}

// ------------------------------------------------------------------------------------------
// Stale DNS
// ------------------------------------------------------------------------------------------

/// The client resolved `first` (its saved address) and read its banner before the move.
#[track_caller]
fn assert_first_contact(run: &Client, addrs: &str, first: &str) {
    run.check(run.get("ready") == "1", "the client never printed READY");
    run.expect_line("ADDRS", addrs);
    run.expect_line("FIRST", &format!("GOT HELLO {first}"));
}

/// Without dnsfo, the connect to the stale address is refused, and nobody asks DNS again.
#[track_caller]
fn assert_plain_refused(o: &Outcome, addrs: &str, first: &str) {
    let plain = o.client("plain");
    assert_first_contact(&plain, addrs, first);
    plain.expect_line("SECOND", "ERR ECONNREFUSED");
    plain.check(
        plain.exit() == Some(1),
        "expected exit 1 (second connect failed)",
    );
    plain.check(
        plain.num("dns_after_move_count") == 0,
        "without dnsfo nothing should have asked DNS after the move",
    );
}

/// With dnsfo, the connect to the stale address lands on `new`, within the bound, after a fresh
/// DNS lookup (the query log of `dns_key` shows an A answer with `new`).
#[track_caller]
fn assert_followed(o: &Outcome, variant: &str, addrs: &str, first: &str, new: &str, dns_key: &str) {
    let run = o.client(variant);
    assert_first_contact(&run, addrs, first);
    run.expect_line("SECOND", &format!("GOT HELLO {new}"));
    run.expect_line("SECOND_PEER", new);
    run.check(run.exit() == Some(0), "expected exit 0");
    let ms = run.ms("SECOND_MS");
    run.check(
        ms < RERESOLVE_BOUND_MS,
        &format!("second connect took {ms} ms (bound {RERESOLVE_BOUND_MS} ms)"),
    );
    let log = run.get(dns_key);
    run.check(
        log.contains(&format!(" A -> NOERROR [{new}]")),
        &format!("no fresh A lookup answered with {new} in the DNS log ({dns_key}): {log:?}"),
    );
    if variant == "dnsfo" {
        run.quiet();
    }
}

#[track_caller]
fn stale(scenario: &str, addrs: &str, first: &str, new: &str, dns_key: &str) -> Outcome {
    let o = harness(&[
        scenario,
        "--variant",
        "plain:6",
        "--variant",
        "dnsfo:8",
        "--variant",
        "log:8",
    ]);
    assert_plain_refused(&o, addrs, first);
    assert_followed(&o, "dnsfo", addrs, first, new, dns_key);
    assert_followed(&o, "log", addrs, first, new, dns_key);
    o
}

/// Python resolves `svc.test` with getaddrinfo (-> .2); the record moves to .3 and .2 refuses; the
/// program's connect to its saved .2 reaches .3.
#[test]
fn stale_getaddrinfo() {
    stale(
        "stale-gai",
        "127.0.0.2",
        "127.0.0.2",
        "127.0.0.3",
        "dns_after_move",
    );
}

/// The same with a C program that resolved through gethostbyname.
#[test]
fn stale_gethostbyname() {
    stale(
        "stale-ghbn",
        "127.0.0.2",
        "127.0.0.2",
        "127.0.0.3",
        "dns_after_move",
    );
}

/// Two addresses both die (.2 refused, .3 silent: "no answer within the attempt delay" counts as
/// failed); DNS moves to .4: the connect to the saved .2 lands on .4.
#[test]
fn stale_multi() {
    let o = stale(
        "stale-multi",
        "127.0.0.2 127.0.0.3",
        "127.0.0.2",
        "127.0.0.4",
        "dns_after_move",
    );
    for v in ["plain", "dnsfo"] {
        let run = o.client(v);
        run.check(
            run.get("blackholes_after_move").contains("verified"),
            "127.0.0.3 was not a verified blackhole after the move",
        );
    }
}

/// DNSFO_NAMESERVER=127.0.0.53:5353: the system's server (127.0.0.1:53) keeps the stale record;
/// dnsfo asks the configured one, which has moved the name to .3, and never the system's.
#[test]
fn stale_nameserver_override() {
    let o = stale(
        "stale-nameserver",
        "127.0.0.2",
        "127.0.0.2",
        "127.0.0.3",
        "alt_dns_after_move",
    );
    for v in ["dnsfo", "log"] {
        let run = o.client(v);
        run.check(
            run.num("dns_after_move_count") == 0,
            "dnsfo asked the system's DNS server although DNSFO_NAMESERVER is set",
        );
    }
}

/// The name is deleted (NXDOMAIN) while its only address refuses: dnsfo asks DNS, finds nothing,
/// and the program sees the error it would have seen (ECONNREFUSED), at once.
#[test]
fn stale_name_gone_keeps_error() {
    let o = harness(&["stale-gone", "--variant", "plain:6", "--variant", "dnsfo:8"]);
    assert_plain_refused(&o, "127.0.0.2", "127.0.0.2");
    let run = o.client("dnsfo");
    assert_first_contact(&run, "127.0.0.2", "127.0.0.2");
    run.expect_line("SECOND", "ERR ECONNREFUSED");
    run.check(
        run.exit() == Some(1),
        "expected exit 1 (second connect failed)",
    );
    let ms = run.ms("SECOND_MS");
    run.check(
        ms < RERESOLVE_BOUND_MS,
        &format!("the failing connect took {ms} ms (bound {RERESOLVE_BOUND_MS} ms)"),
    );
    let log = run.get("dns_after_move");
    run.check(
        log.contains(" A -> NXDOMAIN"),
        &format!("dnsfo did not ask DNS again before giving up: {log:?}"),
    );
    run.quiet();
}

// ------------------------------------------------------------------------------------------
// Shared winner cache
// ------------------------------------------------------------------------------------------

/// The process reached the live address .3.
#[track_caller]
fn assert_reached(run: &Client) {
    run.expect_line("GOT", "HELLO 127.0.0.3");
    run.expect_line("PEER", "127.0.0.3");
    run.check(run.exit() == Some(0), "expected exit 0");
    run.quiet();
}

/// Paid the silent-first failover: the cache was not used.
#[track_caller]
fn assert_slow(run: &Client) {
    assert_reached(run);
    let ms = run.ms("CONNECT_MS");
    run.check(
        ms >= PAYS_FAILOVER_MS,
        &format!("connect took {ms} ms: expected the failover delay (>= {PAYS_FAILOVER_MS} ms)"),
    );
}

/// No failover delay: the cache was used.
#[track_caller]
fn assert_fast(run: &Client) {
    assert_reached(run);
    let ms = run.ms("CONNECT_MS");
    run.check(
        ms < NO_DELAY_MS,
        &format!("connect took {ms} ms: expected no failover delay (< {NO_DELAY_MS} ms)"),
    );
}

#[track_caller]
fn assert_unchanged(run: &Client) {
    run.check(
        run.get("watched_unchanged") == "1",
        "the untrusted cache (or what it points to) was modified",
    );
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The winners file names `svc 7000 127.0.0.3` with an expiry in the future, and is 0600.
#[track_caller]
fn assert_winner_written(run: &Client) {
    let text = run.get("cache_file");
    let line = text
        .lines()
        .find(|l| l.starts_with("svc 7000 127.0.0.3 "))
        .unwrap_or_else(|| {
            panic!(
                "{}: no `svc 7000 127.0.0.3 EXP` line in the cache file {text:?}\n{}",
                run.section, run.o
            )
        });
    let exp: u64 = line.rsplit(' ').next().unwrap().parse().unwrap_or(0);
    run.check(
        exp > now_ms(),
        &format!("cache entry already expired: {line}"),
    );
    let listing = run.get("cache_listing");
    run.check(
        listing.lines().any(|l| l.contains("/winners mode=100600 ")),
        "the winners file is not a regular 0600 file",
    );
    run.check(
        listing
            .lines()
            .next()
            .is_some_and(|l| l.contains(" mode=40700 ")),
        "the cache directory is not 0700",
    );
}

/// Process one pays the silent-first failover (and writes the cache); process two with the same
/// DNSFO_CACHE_DIR connects with no failover delay, also when it insists on the dead address; a
/// process with an empty cache dir pays again (so the speed comes from the cache).
#[test]
fn cache_second_process_fast() {
    let o = harness(&["cache-fast"]);
    let one = o.client("one");
    assert_slow(&one);
    one.expect_line("ADDRS", "127.0.0.2 127.0.0.3");
    assert_winner_written(&one);
    let two = o.client("two");
    assert_fast(&two);
    let insist = o.client("two-dead-address");
    assert_fast(&insist);
    assert_slow(&o.client("control"));
}

/// The same winners text: trusted -> fast (control); group-writable file, world-writable file,
/// group-writable directory, symlinked directory, symlink in the directory's path, symlinked
/// file, a directory owned by someone else (when the test runs as root) -> the program pays the
/// failover again and nothing is modified.
#[test]
fn cache_untrusted_ignored() {
    let o = harness(&["cache-untrusted"]);
    assert_winner_written(&o.client("seed"));
    assert_fast(&o.client("trusted"));
    let mut cases = vec![
        "file-group-writable",
        "file-world-writable",
        "dir-group-writable",
        "dir-symlink",
        "parent-symlink",
        "file-symlink",
    ];
    if o.has("foreign-owner") {
        cases.push("foreign-owner");
    } else {
        eprintln!("note: {}", o.get("harness", "foreign_owner"));
    }
    for case in cases {
        let run = o.client(case);
        assert_slow(&run);
        assert_unchanged(&run);
    }
}

/// The cache names 127.0.0.9 for `svc` (a recording server listens there) but /etc/hosts no
/// longer does: the lookup does not list .9, the client never reaches .9 (zero accepts), and pays
/// the failover to .3. With a good .3 line next to the stale one, .3 is used at once and .9 is
/// still never contacted.
#[test]
fn cache_stale_address_ignored() {
    let o = harness(&["cache-stale-addr"]);
    for case in ["stale", "stale-and-good"] {
        let run = o.client(case);
        run.expect_line(
            "ADDRS",
            if case == "stale" {
                "127.0.0.2 127.0.0.3"
            } else {
                "127.0.0.3 127.0.0.2"
            },
        );
        run.check(
            run.num("accepted_127.0.0.9") == 0,
            "127.0.0.9 (only named by the cache) was contacted",
        );
    }
    assert_slow(&o.client("stale"));
    assert_fast(&o.client("stale-and-good"));
}

/// DNSFO_CACHE=0: nothing is written into an empty cache directory, and a valid cache is neither
/// read (the program pays the failover) nor modified. Control: with the cache on, the same run
/// writes the winners file.
#[test]
fn cache_off_writes_nothing() {
    let o = harness(&["cache-off"]);
    assert_winner_written(&o.client("on"));
    for case in ["off-empty", "off-valid"] {
        let run = o.client(case);
        assert_slow(&run);
        assert_unchanged(&run);
    }
    let empty = o.client("off-empty");
    empty.check(
        empty.get("cache_listing").lines().count() == 1,
        "something was written into the cache directory",
    );
}
