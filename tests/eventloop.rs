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

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

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

/// How long a client without dnsfo may sit on a silent address before we call it a hang.
const HANG: &str = "plain:3";
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
}

const fn first_only(id: &'static str) -> Client {
    Client {
        id,
        got_prefix: "GOT ",
        own_failover: false,
        own_silent: false,
        gap: false,
        stderr_is_message: false,
    }
}

const EV_EPOLL_ET: Client = first_only("ev-epoll-et");
const EV_EPOLL_MOD: Client = first_only("ev-epoll-mod");
const EV_EPOLL_ONESHOT: Client = first_only("ev-epoll-oneshot");
const EV_POLL_STRICT: Client = first_only("ev-poll-strict");
const EV_SELECT: Client = first_only("ev-select");
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

// ------------------------------------------------------------------------------------------
// Running the harness and reading its output
// ------------------------------------------------------------------------------------------

/// Everything one harness invocation reported: `harness` facts and one record per variant.
struct Outcome {
    cmdline: String,
    fields: BTreeMap<(String, String), String>,
    order: Vec<String>,
    status: Option<i32>,
    stderr: String,
}

/// One client run, as reported by the harness.
struct Run<'a> {
    name: &'a str,
    exit: Option<i32>,
    timed_out: bool,
    elapsed_ms: u64,
    stdout: &'a str,
    stderr: &'a str,
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some('x') => {
                let hex: String = it.by_ref().take(2).collect();
                out.push(u8::from_str_radix(&hex, 16).map(char::from).unwrap_or('?'));
            }
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

impl Outcome {
    fn get(&self, section: &str, key: &str) -> &str {
        self.fields
            .get(&(section.to_string(), key.to_string()))
            .map(String::as_str)
            .unwrap_or("")
    }

    fn run(&self, variant: &str) -> Run<'_> {
        let Some(name) = self.order.iter().find(|v| *v == variant) else {
            panic!("variant {variant} missing from the harness output\n{self}");
        };
        let skipped = self.get(variant, "skipped");
        assert!(
            skipped.is_empty(),
            "{variant}: {skipped} (run `cargo build --release`)\n{self}"
        );
        Run {
            name,
            exit: self.get(variant, "exit").parse().ok(),
            timed_out: self.get(variant, "timed_out") == "1",
            elapsed_ms: self.get(variant, "elapsed_ms").parse().unwrap_or(u64::MAX),
            stdout: self.get(variant, "stdout"),
            stderr: self.get(variant, "stderr"),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "---- harness: {}", self.cmdline)?;
        writeln!(f, "exit status: {:?}", self.status)?;
        for ((section, key), value) in &self.fields {
            if section == "harness" {
                writeln!(f, "  {key}: {}", value.trim_end().replace('\n', "\n      "))?;
            }
        }
        for v in &self.order {
            writeln!(f, "-- variant {v}")?;
            for ((section, key), value) in &self.fields {
                if section == v && !value.is_empty() {
                    writeln!(f, "  {key}: {}", value.trim_end().replace('\n', "\n      "))?;
                }
            }
        }
        if !self.stderr.is_empty() {
            writeln!(f, "-- harness stderr\n{}", self.stderr)?;
        }
        Ok(())
    }
}

/// Run `evloop.py run <args>` with a hard deadline and parse what it printed.
fn evloop(args: &[&str]) -> Outcome {
    let python = std::env::var("DNSFO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = Command::new(&python);
    cmd.arg(HARNESS).arg("run").args(args);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let cmdline = format!("{python} {HARNESS} run {}", args.join(" "));
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmdline}: {e}"));
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for the harness") {
            break st.code();
        }
        if start.elapsed() > HARNESS_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    let mut fields = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for line in stdout.lines() {
        let mut parts = line.splitn(3, ' ');
        let (Some(section), Some(key)) = (parts.next(), parts.next()) else {
            continue;
        };
        let value = unescape(parts.next().unwrap_or(""));
        if section != "harness" && !order.iter().any(|v| v == section) {
            order.push(section.to_string());
        }
        fields.insert((section.to_string(), key.to_string()), value);
    }
    let outcome = Outcome {
        cmdline,
        fields,
        order,
        status,
        stderr,
    };
    assert_eq!(
        outcome.status,
        Some(0),
        "the harness itself failed\n{outcome}"
    );
    assert_eq!(
        outcome.get("harness", "lib_present"),
        "1",
        "library {} not found: run `cargo build --release` (or set DNSFO_LIB)\n{outcome}",
        outcome.get("harness", "lib")
    );
    outcome
}

/// `client` against `addrs` (resolver order), once per variant (in parallel).
fn scenario(client: &str, addrs: &[&str], variants: &[&str], extra: &[&str]) -> Outcome {
    let mut args: Vec<&str> = vec!["--client", client];
    for a in addrs {
        args.push("--addr");
        args.push(a);
    }
    for v in variants {
        args.push("--variant");
        args.push(v);
    }
    args.extend_from_slice(extra);
    evloop(&args)
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

/// With the library preloaded (and no DNSFO_LOG) nothing of dnsfo reaches stderr.
fn assert_quiet(o: &Outcome, run: &Run) {
    let noisy: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("dnsfo"))
        .collect();
    assert!(
        noisy.is_empty(),
        "{}: dnsfo wrote to the program's stderr: {noisy:?}\n{o}",
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
    let o = scenario(c.id, SILENT_FIRST, &[DNSFO, plain], &[]);
    let (d, p) = (o.run("dnsfo"), o.run("plain"));
    assert_got(&o, &c, &d, "127.0.0.3");
    assert_quiet(&o, &d);
    assert_within(&o, &d, SILENT_BOUND_MS, "silent-first failover");
    check_gap(&o, &c, &d, "silent-first");
    if c.own_silent {
        assert_got(&o, &c, &p, "127.0.0.3");
        assert_not_slower(&o, &d, &p);
    } else {
        assert_hangs(&o, &p);
    }
}

/// 3. refused, silent, refused, silent, up.
fn mixed(c: Client) {
    let plain = if c.own_silent || !c.own_failover {
        "plain:10"
    } else {
        HANG
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
