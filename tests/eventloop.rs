//! End-to-end tests for issue 4: NON-BLOCKING connects fail over inside real, unmodified
//! event-loop programs (node/libuv, curl, psql/libpq, Python asyncio, Java NIO, and small C clients
//! waiting in edge-triggered epoll, EPOLLONESHOT, epoll + EPOLL_CTL_MOD, strict poll(), select()).
//!
//! Every test runs `python3 tests/e2e/evloop.py run ...` (see that file; it builds on
//! scripts/lib/hermetic.py): it re-executes itself under `unshare -rmn`, writes the test's
//! /etc/hosts, starts the servers (up: `HELLO <ip>\n`, an HTTP reply for curl, a fake PostgreSQL
//! server for psql; refused: nothing bound; silent: a full-backlog blackhole that drops SYNs), runs
//! the client once with `LD_PRELOAD=libdnsfo.so` (`dnsfo`) and once without (`plain`, proving the
//! scenario is real), and prints what happened. The assertions live here.
//!
//! Clients come in two kinds:
//! * first-address clients (the ev_* C clients, node `autoSelectFamily: false`, asyncio
//!   `sock_connect` to getaddrinfo()[0], Java NIO): without dnsfo they fail or hang in every
//!   scenario; with it they must reach the live address;
//! * clients that fail over by themselves (curl, psql, asyncio `open_connection`, node's default
//!   `autoSelectFamily`): without dnsfo they pass refused-first (and node even silent-first) on
//!   their own, curl/psql/asyncio hang on a silent address; with dnsfo they must pass every
//!   scenario, quickly, and never slower than without it.
//!
//! The library is `$DNSFO_LIB`, else `target/release/libdnsfo.so`: run `cargo build --release`
//! first (`scripts/test` does). Only loopback addresses are used; every run has a hard timeout.
//! Run: `cargo test --release --test eventloop` (add `-- --nocapture` to see node's GAP figures).

use std::time::Duration;

const HARNESS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/evloop.py");
/// Hard cap on one harness invocation (its own watchdog fires well before).
const HARNESS_DEADLINE: Duration = Duration::from_secs(120);

const REFUSED_FIRST: &[&str] = &["refused:127.0.0.2", "up:127.0.0.3"];
const SILENT_FIRST: &[&str] = &["silent:127.0.0.2", "up:127.0.0.3"];
const MIXED: &[&str] = &[
    "refused:127.0.0.2",
    "silent:127.0.0.3",
    "refused:127.0.0.4",
    "silent:127.0.0.5",
    "up:127.0.0.6",
];
const V6_DEAD_FIRST: &[&str] = &["refused:::1", "up:127.0.0.3"];
const ALL_REFUSED: &[&str] = &[
    "refused:127.0.0.2",
    "refused:127.0.0.3",
    "refused:127.0.0.4",
];

/// How long a client without dnsfo may sit on a silent address before we call it a hang: as
/// long as dnsfo may take for the failover (SILENT_BOUND_MS); waiting longer proves nothing more.
const HANG: &str = "plain:2";
/// The same for the mixed scenario, whose bound is longer (MIXED_BOUND_MS).
const HANG_MIXED: &str = "plain:3";
/// dnsfo runs: the clients' own hard timeouts are 10 s.
const DNSFO: &str = "dnsfo:12";
/// A failover past one silent address, whole process included (the kernel alone: ~127 s).
const SILENT_BOUND_MS: u64 = 2000;
/// Past [refused, silent, refused, silent, up] (two attempt delays of 250 ms by default).
const MIXED_BOUND_MS: u64 = 3000;
/// Every address refused: the failure comes back quickly.
const REFUSED_BOUND_MS: u64 = 2000;
/// node's longest 10 ms-timer pause during a failover (the issue wants < 50 ms; loose here).
const NODE_GAP_BOUND_MS: f64 = 150.0;
/// A client with its own failover may not get slower with dnsfo than this much over its own time.
const NOT_SLOWER_SLACK_MS: u64 = 500;

// ------------------------------------------------------------------------------------------
// The clients
// ------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Client {
    /// evloop.py's client id.
    id: &'static str,
    /// Success prints `<prefix>HELLO <ip>` as its first stdout line.
    got_prefix: &'static str,
    /// Tries the next address by itself after a refused connect.
    own_failover: bool,
    /// Also gets past a silent address by itself, quickly (node's happy eyeballs).
    own_silent: bool,
    /// Prints `GAP <ms>`: the longest pause of its 10 ms timer.
    gap: bool,
    /// stderr is the program's own error message (compared between dnsfo and plain), not a trace.
    stderr_is_message: bool,
    /// Runs the "without dnsfo it hangs on a silent address" baseline (a 3 s wait). Once per
    /// family is enough: the C event loops differ in how they wait, not in the kernel's connect
    /// they wait for, so only ev-epoll-et shows the hang for them.
    hang_baseline: bool,
}

const fn first_only(id: &'static str) -> Client {
    Client {
        id,
        got_prefix: "GOT ",
        own_failover: false,
        own_silent: false,
        gap: false,
        stderr_is_message: false,
        hang_baseline: true,
    }
}

/// A C event loop whose family's hang baseline ev-epoll-et shows.
const fn c_loop(id: &'static str) -> Client {
    Client {
        hang_baseline: false,
        ..first_only(id)
    }
}

const EV_EPOLL_ET: Client = first_only("ev-epoll-et");
const EV_EPOLL_MOD: Client = c_loop("ev-epoll-mod");
const EV_EPOLL_ONESHOT: Client = c_loop("ev-epoll-oneshot");
const EV_POLL_STRICT: Client = c_loop("ev-poll-strict");
const EV_SELECT: Client = c_loop("ev-select");
const ASYNCIO_FIRST: Client = first_only("asyncio-first");
const JAVA_NIO: Client = first_only("java-nio");
const NODE_NOAFS: Client = Client {
    gap: true,
    ..first_only("node-noafs")
};
const NODE_AFS: Client = Client {
    gap: true,
    own_failover: true,
    own_silent: true,
    ..first_only("node-afs")
};
const ASYNCIO_OPEN: Client = Client {
    own_failover: true,
    ..first_only("asyncio-open")
};
const CURL: Client = Client {
    got_prefix: "",
    own_failover: true,
    stderr_is_message: true,
    ..first_only("curl")
};
const PSQL: Client = Client {
    got_prefix: "",
    own_failover: true,
    stderr_is_message: true,
    ..first_only("psql")
};

mod support;
use support::{assert_quiet, Outcome, Run};

/// `client` against `addrs` (resolver order), once per variant (in parallel).
fn scenario(client: &str, addrs: &[&str], variants: &[&str], extra: &[&str]) -> Outcome {
    support::scenario(HARNESS, client, addrs, variants, extra, HARNESS_DEADLINE)
}

// ------------------------------------------------------------------------------------------
// Assertions
// ------------------------------------------------------------------------------------------

fn first_line<'a>(run: &Run<'a>) -> &'a str {
    run.stdout.lines().next().unwrap_or("")
}

fn assert_got(o: &Outcome, c: &Client, run: &Run, ip: &str) {
    assert_eq!(
        (run.exit, first_line(run)),
        (Some(0), format!("{}HELLO {ip}", c.got_prefix).as_str()),
        "{}: {} did not reach the live address {ip}\n{o}",
        run.name,
        c.id
    );
}

/// The program's own "connection refused" failure.
fn is_refused(c: &Client, run: &Run) -> bool {
    match c.id {
        // curl 7.88 says "Couldn't connect to server" (exit 7) for a refused address
        "curl" => run.exit == Some(7) && run.stderr.contains("Couldn't connect to server"),
        "psql" => run.exit == Some(2) && run.stderr.contains("Connection refused"),
        _ => run.exit == Some(1) && first_line(run).starts_with("ERR ECONNREFUSED"),
    }
}

fn assert_refused(o: &Outcome, c: &Client, run: &Run) {
    assert!(
        is_refused(c, run),
        "{}: expected {}'s refused failure\n{o}",
        run.name,
        c.id
    );
}

/// Without failover the client sits on the silent address until the harness kills it.
fn assert_hangs(o: &Outcome, run: &Run) {
    assert!(
        run.timed_out,
        "{}: expected the client to hang on the silent address\n{o}",
        run.name
    );
    assert!(
        !run.stdout.contains("HELLO"),
        "{}: got a banner without failover?\n{o}",
        run.name
    );
}

fn assert_within(o: &Outcome, run: &Run, bound_ms: u64, what: &str) {
    assert!(
        run.elapsed_ms < bound_ms,
        "{}: {what} took {} ms, want < {bound_ms}\n{o}",
        run.name,
        run.elapsed_ms
    );
}

/// Node's `GAP <ms>`: printed always, asserted loosely.
fn check_gap(o: &Outcome, c: &Client, run: &Run, scenario: &str) {
    if !c.gap {
        return;
    }
    let gap: f64 = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("GAP "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{}: no GAP line from {}\n{o}", run.name, c.id));
    println!(
        "{} {scenario} {}: event-loop GAP {gap:.1} ms",
        c.id, run.name
    );
    assert!(
        gap < NODE_GAP_BOUND_MS,
        "{}: node's 10 ms timer paused {gap:.1} ms (want < {NODE_GAP_BOUND_MS})\n{o}",
        run.name
    );
}

/// A client with its own failover must not get slower with dnsfo.
fn assert_not_slower(o: &Outcome, dnsfo: &Run, plain: &Run) {
    assert!(
        dnsfo.elapsed_ms <= plain.elapsed_ms + NOT_SLOWER_SLACK_MS,
        "dnsfo slowed the client's own failover: {} ms vs {} ms without dnsfo\n{o}",
        dnsfo.elapsed_ms,
        plain.elapsed_ms
    );
}

/// The same failure as without dnsfo: exit code, first stdout line and (for curl/psql) the
/// program's message, with timings blanked.
fn assert_same_failure(o: &Outcome, c: &Client, d: &Run, p: &Run) {
    let blank = |s: &str| {
        let mut out = String::with_capacity(s.len());
        for ch in s.chars() {
            if !ch.is_ascii_digit() {
                out.push(ch);
            } else if !out.ends_with('#') {
                out.push('#');
            }
        }
        out
    };
    let sig = |r: &Run| -> (Option<i32>, bool, String, String) {
        let msg = if c.stderr_is_message {
            blank(r.stderr)
        } else {
            String::new()
        };
        (r.exit, r.timed_out, first_line(r).to_string(), msg)
    };
    assert_eq!(
        sig(d),
        sig(p),
        "dnsfo changed the failure {} reports\n{o}",
        c.id
    );
}

// ------------------------------------------------------------------------------------------
// The five layouts, for every client
// ------------------------------------------------------------------------------------------

/// 1. first address refused, second up.
fn refused_first(c: Client) {
    let o = scenario(c.id, REFUSED_FIRST, &[DNSFO, "plain:10"], &[]);
    let (d, p) = (o.run("dnsfo"), o.run("plain"));
    assert_got(&o, &c, &d, "127.0.0.3");
    assert_quiet(&o, &d);
    assert_within(&o, &d, SILENT_BOUND_MS, "refused-first failover");
    check_gap(&o, &c, &d, "refused-first");
    if c.own_failover {
        assert_got(&o, &c, &p, "127.0.0.3");
        assert_not_slower(&o, &d, &p);
    } else {
        assert_refused(&o, &c, &p);
    }
}

/// 2. first address silent, second up: quick failover, the event loop keeps running.
fn silent_first(c: Client) {
    let plain = if c.own_silent { "plain:10" } else { HANG };
    let variants: &[&str] = if c.own_silent || c.hang_baseline {
        &[DNSFO, plain]
    } else {
        &[DNSFO]
    };
    let o = scenario(c.id, SILENT_FIRST, variants, &[]);
    let d = o.run("dnsfo");
    assert_got(&o, &c, &d, "127.0.0.3");
    assert_quiet(&o, &d);
    assert_within(&o, &d, SILENT_BOUND_MS, "silent-first failover");
    check_gap(&o, &c, &d, "silent-first");
    if c.own_silent {
        let p = o.run("plain");
        assert_got(&o, &c, &p, "127.0.0.3");
        assert_not_slower(&o, &d, &p);
    } else if c.hang_baseline {
        assert_hangs(&o, &o.run("plain"));
    }
}

/// 3. refused, silent, refused, silent, up.
fn mixed(c: Client) {
    let plain = if c.own_silent || !c.own_failover {
        "plain:10"
    } else {
        HANG_MIXED
    };
    let o = scenario(c.id, MIXED, &[DNSFO, plain], &[]);
    let (d, p) = (o.run("dnsfo"), o.run("plain"));
    assert_got(&o, &c, &d, "127.0.0.6");
    assert_quiet(&o, &d);
    assert_within(&o, &d, MIXED_BOUND_MS, "mixed failover");
    check_gap(&o, &c, &d, "mixed");
    if c.own_silent {
        assert_got(&o, &c, &p, "127.0.0.6");
        assert_not_slower(&o, &d, &p);
    } else if c.own_failover {
        assert_hangs(&o, &p);
    } else {
        assert_refused(&o, &c, &p);
    }
}

/// 4. a dead ::1 sorted first by glibc, then a live IPv4 address (the clients resolve AF_UNSPEC).
fn v6_dead_first(c: Client) {
    let o = scenario(c.id, V6_DEAD_FIRST, &[DNSFO, "plain:10"], &[]);
    assert!(
        o.get("harness", "gai").starts_with("::1 "),
        "glibc does not list ::1 first\n{o}"
    );
    let (d, p) = (o.run("dnsfo"), o.run("plain"));
    assert_got(&o, &c, &d, "127.0.0.3");
    assert_quiet(&o, &d);
    assert_within(&o, &d, SILENT_BOUND_MS, "dead-IPv6-first failover");
    if c.own_failover {
        assert_got(&o, &c, &p, "127.0.0.3");
        assert_not_slower(&o, &d, &p);
    } else {
        assert_refused(&o, &c, &p);
    }
}

/// 5. every address refused: the program sees its own refused failure, as without dnsfo.
fn all_refused(c: Client) {
    let o = scenario(c.id, ALL_REFUSED, &[DNSFO, "plain:10"], &[]);
    let (d, p) = (o.run("dnsfo"), o.run("plain"));
    assert_refused(&o, &c, &p);
    assert_refused(&o, &c, &d);
    assert_same_failure(&o, &c, &d, &p);
    assert_quiet(&o, &d);
    assert_within(&o, &d, REFUSED_BOUND_MS, "all-refused failure");
}

macro_rules! event_loop_client {
    ($($module:ident => $client:expr),* $(,)?) => {$(
        mod $module {
            #[test]
            fn refused_first() { super::refused_first($client) }
            #[test]
            fn silent_first() { super::silent_first($client) }
            #[test]
            fn mixed() { super::mixed($client) }
            #[test]
            fn v6_dead_first() { super::v6_dead_first($client) }
            #[test]
            fn all_refused() { super::all_refused($client) }
        }
    )*};
}

event_loop_client! {
    c_epoll_et => super::EV_EPOLL_ET,
    c_epoll_mod => super::EV_EPOLL_MOD,
    c_epoll_oneshot => super::EV_EPOLL_ONESHOT,
    c_poll_strict => super::EV_POLL_STRICT,
    c_select => super::EV_SELECT,
    node_no_autoselect => super::NODE_NOAFS,
    node_default => super::NODE_AFS,
    asyncio_first_address => super::ASYNCIO_FIRST,
    asyncio_open_connection => super::ASYNCIO_OPEN,
    java_nio => super::JAVA_NIO,
    curl => super::CURL,
    psql => super::PSQL,
}

// ------------------------------------------------------------------------------------------
// close() mid-race, fd number reused at once: no foreign connection may land on the new fd
// ------------------------------------------------------------------------------------------

/// ev_close_race: connect to the silent first address, give the fd up after ~50 ms (dnsfo still
/// racing; its winner would land at ~250 ms), reuse the number at once, watch it for ~1 s: same
/// inode (no dup3 onto it), same peer (tcp) or family (socketpair) from getpeername/getsockname,
/// SO_ERROR 0, then real data through it. Passes without dnsfo by construction; the `plain` run
/// only shows the client itself is sound.
fn close_mid_race(client: &str, want: &str) {
    let o = scenario(client, SILENT_FIRST, &[DNSFO, "plain:10"], &[]);
    for v in ["dnsfo", "plain"] {
        let r = o.run(v);
        assert_eq!(
            (r.exit, first_line(&r)),
            (Some(0), want),
            "{v}: the reused fd changed identity or the client failed\n{o}"
        );
    }
    assert_quiet(&o, &o.run("dnsfo"));
}

#[test]
fn close_mid_race_reuse_for_tcp() {
    close_mid_race("ev-close-race-tcp-close", "GOT HELLO 127.0.0.100");
}

#[test]
fn close_mid_race_reuse_for_socketpair() {
    close_mid_race("ev-close-race-pair-close", "GOT PAIR-OK");
}

/// The fd number is taken over by `dup2(new, fd)`, no close() at all.
#[test]
fn dup2_onto_fd_mid_race() {
    close_mid_race("ev-close-race-tcp-dup2", "GOT HELLO 127.0.0.100");
}

/// `syscall(SYS_close, fd)` (Go, io_uring, static code): libc's close() never sees it, yet a late
/// winner must not land on the socket that reuses the number, and calls on the new socket
/// (getsockname, read) must not be answered as for the old connecting one.
#[test]
fn raw_close_mid_race_reuse_for_tcp() {
    close_mid_race("ev-close-race-tcp-sysclose", "GOT HELLO 127.0.0.100");
}

#[test]
fn raw_close_mid_race_reuse_for_socketpair() {
    close_mid_race("ev-close-race-pair-sysclose", "GOT PAIR-OK");
}

/// `2026-12-02T07:12:22.973Z curl[16355] dnsfo INFO: ...`, possibly after part of a line the
/// program itself was writing to the same stderr at that moment (its trace, from another thread).
fn log_line_format(line: &str) -> bool {
    let tokens: Vec<&str> = line.split(' ').collect();
    tokens.windows(3).any(|w| {
        let (time, prog) = (w[0], w[1]);
        let b = time.as_bytes();
        let time_ok = b.len() == 24
            && b[4] == b'-'
            && b[10] == b'T'
            && b[19] == b'.'
            && b[23] == b'Z'
            && time.bytes().filter(u8::is_ascii_digit).count() == 17;
        let prog_ok = prog
            .strip_suffix(']')
            .and_then(|p| p.split_once('['))
            .is_some_and(|(name, pid)| {
                !name.is_empty() && !pid.is_empty() && pid.bytes().all(|c| c.is_ascii_digit())
            });
        w[2] == "dnsfo" && time_ok && prog_ok
    })
}

/// Issue 15: `DNSFO_LOG=info` shows every failover, whatever path made it, once. Before, only a
/// steer that finished said so: a refused first address got past inside `connect` (curl, node,
/// a C epoll client) logged nothing at info.
fn every_failover_is_logged_once_at_info(client: &str) {
    let want = "INFO: svc: 127.0.0.2:7000 failed over to 127.0.0.3:7000";
    {
        for (layout, addrs) in [
            ("refused-first", REFUSED_FIRST),
            ("silent-first", SILENT_FIRST),
        ] {
            let o = scenario(client, addrs, &[DNSFO], &["--env", "DNSFO_LOG=info"]);
            let d = o.run("dnsfo");
            assert!(d.stdout.contains("127.0.0.3"), "{client} {layout}\n{o}");
            let lines: Vec<&str> = d
                .stderr
                .lines()
                .filter(|l| l.contains("] dnsfo "))
                .collect();
            assert!(
                lines.len() == 1 && lines[0].ends_with(want),
                "{client} {layout}: want exactly one `{want}` line, got {lines:?}\n{o}"
            );
            assert!(
                log_line_format(lines[0]),
                "{client}: want `<RFC 3339 UTC ms> program[pid] dnsfo LEVEL: ...`, got {:?}",
                lines[0]
            );
        }
    }
}

#[test]
fn every_failover_is_logged_once_at_info_curl() {
    every_failover_is_logged_once_at_info("curl");
}

#[test]
fn every_failover_is_logged_once_at_info_node() {
    every_failover_is_logged_once_at_info("node-noafs");
}

#[test]
fn every_failover_is_logged_once_at_info_c_epoll() {
    every_failover_is_logged_once_at_info("ev-epoll-et");
}
