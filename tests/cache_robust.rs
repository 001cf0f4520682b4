//! End-to-end tests of issue 12, item 7: the shared winner cache file under hostile conditions.
//!
//! Every test runs `python3 tests/e2e/cachefile.py run SCENARIO` (see that file; it builds on
//! scripts/lib/hermetic.py). It re-executes itself under `unshare -rmn` (private user, mount and
//! network namespace, its own /etc/hosts), runs servers on 127.0.0.2/127.0.0.3 and a tiny C
//! client (compiled into this target's temporary directory) with the library preloaded and a
//! private `DNSFO_CACHE_DIR`, and prints what happened as `<section> <key> <escaped value>`
//! lines; the assertions live here.
//!
//! - FIFO (and socket, symlink to a FIFO, device) in place of `winners`: the client resolves,
//!   fails over and connects in well under `FINISH_MS`; the thing in place is left alone. A
//!   library that opens the file without `O_NONBLOCK` hangs in `getaddrinfo` until killed.
//! - A cache full of long-lived entries still records a new winner (the first to expire goes),
//!   and the next process connects at once.
//! - No temporary file is left behind by 50 short-lived processes that each write the cache, 10
//!   at once, 20 killed with SIGKILL right after start, 5 killed at their rename, and 3 pairs
//!   in fresh pid namespaces (pid 1, as in containers); checked after every process ended and a
//!   grace period, and after a few more ordinary writers.
//!
//! - RTT history in the cache shortens the attempt delay only for addresses the resolver
//!   returned (issue 14).
//!
//! The library is `$DNSFO_LIB`, else `target/release/libdnsfo.so`. Only loopback addresses are
//! used; every run has a hard timeout, every server a lifetime.

use std::time::Duration;

mod support;
use support::{Outcome, Run};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/cachefile.py");
/// Where the script compiles its C client (this target directory, never the checkout's).
const BIN_DIR: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/cache-robust-bin");
/// Hard cap on one harness invocation (its own watchdog fires before).
const DEADLINE: Duration = Duration::from_secs(150);
/// A dnsfo'd client whose cache file is a FIFO finishes within this (it takes a few ms; the
/// harness kills a hung one after 6 s).
const FINISH_MS: u64 = 3000;
/// A failover past one silent address costs the attempt delay (250 ms): at least this much.
const PAYS_FAILOVER_MS: u64 = 200;
/// "No failover delay": a healthy loopback connect takes about a millisecond.
const NO_DELAY_MS: u64 = 100;
const WINNER: &str = "GOT HELLO 127.0.0.3";

fn scenario(name: &str) -> Outcome {
    let t = std::time::Instant::now();
    let o = support::invoke(SCRIPT, &[name, "--bin-dir", BIN_DIR], DEADLINE);
    eprintln!(
        "cachefile {name}: {} ms (scenario {} ms)",
        t.elapsed().as_millis(),
        o.get("harness", "scenario_ms")
    );
    o
}

/// The value of a client's `KEY value` stdout line.
fn line<'a>(r: &Run<'a>, key: &str) -> Option<&'a str> {
    r.stdout.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(str::trim)
    })
}

#[track_caller]
fn connect_ms(o: &Outcome, r: &Run) -> u64 {
    line(r, "CONNECT_MS")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{}: no CONNECT_MS line\n{o}", r.name))
}

/// The run ended normally and reached the live address through a failover.
#[track_caller]
fn reached_winner(o: &Outcome, r: &Run) {
    assert!(
        !r.timed_out && r.exit == Some(0) && r.stdout.contains(WINNER),
        "{}: expected `{WINNER}` and exit 0 (timed out: {})\n{o}",
        r.name,
        r.timed_out
    );
    support::assert_quiet(o, r);
}

#[track_caller]
fn field<'a>(o: &'a Outcome, section: &str, key: &str, want: &str) -> &'a str {
    let got = o.get(section, key);
    assert_eq!(got, want, "{section} {key}\n{o}");
    got
}

#[test]
fn a_fifo_in_place_of_the_cache_file_never_hangs_the_program() {
    let o = scenario("fifo");
    let mut cases = vec!["fifo", "socket", "fifo-symlink"];
    if o.has("device") {
        cases.push("device");
    }
    for case in cases {
        let r = o.run(case);
        assert!(
            !r.timed_out && r.elapsed_ms < FINISH_MS,
            "{case}: the client must finish within {FINISH_MS} ms, took {} ms (timed out: {}); \
             a cache file opened without O_NONBLOCK blocks getaddrinfo\n{o}",
            r.elapsed_ms,
            r.timed_out
        );
        reached_winner(&o, &r);
        assert_eq!(
            line(&r, "RESOLVED"),
            Some("127.0.0.2 127.0.0.3"),
            "{case}: the refused address first, so the client fails over\n{o}"
        );
        field(&o, case, "unchanged", "1");
    }
    // Control: in an ordinary directory the same run records its winner (the cache is on).
    let c = o.run("control");
    reached_winner(&o, &c);
    field(&o, "control", "recorded", "svc");
}

/// Issue 14: an RTT line in the cache shortens the attempt delay only for an address this
/// process's resolver returned. The control (the same line for the live address) shows that the
/// line is read and used.
#[test]
fn cached_rtt_history_counts_only_for_returned_addresses() {
    let o = scenario("rtt-scope");
    let foreign = o.run("foreign");
    reached_winner(&o, &foreign);
    let ms = connect_ms(&o, &foreign);
    assert!(
        ms >= PAYS_FAILOVER_MS,
        "an RTT for an address the resolver did not return shortened the delay: {ms} ms\n{o}"
    );
    let returned = o.run("returned");
    reached_winner(&o, &returned);
    let ms = connect_ms(&o, &returned);
    assert!(
        ms < NO_DELAY_MS,
        "the RTT history of a returned address gives the adaptive delay: {ms} ms\n{o}"
    );
}

#[test]
fn a_full_cache_of_long_lived_entries_still_records_the_new_winner() {
    let o = scenario("full");
    for label in ["full", "room"] {
        let one = o.run(&format!("{label}-one"));
        reached_winner(&o, &one);
        let ms = connect_ms(&o, &one);
        assert!(
            ms >= PAYS_FAILOVER_MS,
            "{label}-one: the silent first address costs the attempt delay, got {ms} ms\n{o}"
        );
        let svc = o.get(one.name, "svc_line");
        assert!(
            svc.starts_with("svc 7000 127.0.0.3 "),
            "{label}-one: the new winner must be recorded, got {svc:?}\n{o}"
        );
        field(&o, one.name, "tmp_left", "");
        let two = o.run(&format!("{label}-two"));
        reached_winner(&o, &two);
        let ms = connect_ms(&o, &two);
        assert!(
            ms < NO_DELAY_MS,
            "{label}-two: the recorded winner is used at once, got {ms} ms\n{o}"
        );
    }
    // Full: still MAX_ENTRIES lines; the entry that expired first made room.
    field(&o, "full-one", "lines", "256");
    field(&o, "full-one", "long0_kept", "0");
    field(&o, "full-one", "longs_kept", "255");
    // With room nothing is dropped, and the silent address is recorded dead beside the winner
    // (so a later process that connects to it goes to the winner at once, while its connects
    // to other live addresses stay where it chose).
    // (Beside them, the RTT measured for the winner: an adaptive attempt delay for the next
    // process; in a full cache it makes room for nothing.)
    field(&o, "room-one", "lines", "13");
    assert!(
        o.get("room-one", "svc_rtt")
            .starts_with("svc 7000 127.0.0.3 "),
        "room-one: the winner's RTT is shared\n{o}"
    );
    field(&o, "room-one", "longs_kept", "10");
    let dead = o.get("room-one", "svc_dead");
    assert!(
        dead.starts_with("svc 7000 127.0.0.2 ") && dead.ends_with(" dead"),
        "room-one: the silent address must be recorded dead, got {dead:?}\n{o}"
    );
}

#[test]
fn no_temporary_file_is_left_behind() {
    let o = scenario("tmpfiles");
    let first = o.run("serial-n00");
    reached_winner(&o, &first);
    assert_eq!(line(&first, "RESOLVED"), Some("127.0.0.2 127.0.0.3"), "{o}");
    // 50 processes, one after another, each failed over and wrote the cache.
    field(&o, "harness", "serial_ok", "50/50");
    field(&o, "harness", "serial_recorded", "50");
    field(&o, "harness", "tmp_after_serial", "");
    field(&o, "harness", "parallel_ok", "10/10");
    // The premise of the crash cases: each process died at the rename that would have placed
    // its file (so it created a temporary file and never renamed it).
    field(&o, "harness", "killed_at_rename", "5/5");
    // Every process has ended and the grace period is over: later writers work...
    field(&o, "harness", "after_ok", "3/3");
    field(&o, "harness", "after_recorded", "3");
    // ... and no temporary file is left, whoever left it.
    let left = o.get("harness", "tmp_final");
    assert!(
        left.is_empty(),
        "temporary files left in the cache directory: {left}\nafter the kills: {}\n{o}",
        o.get("harness", "tmp_after_kills")
    );
    assert_eq!(
        o.get("harness", "listing_final"),
        "winners file 600",
        "only the winners file remains\n{o}"
    );
    // A pid 1 after another pid 1 that died mid-write still writes (names unique per attempt).
    field(&o, "harness", "pidns_recorded", "3/3");
    eprintln!(
        "SIGKILL runs: {}; temporary files right after the kills: {:?}",
        o.get("harness", "sigkill_runs"),
        o.get("harness", "tmp_after_kills")
    );
}
