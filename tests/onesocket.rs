//! End-to-end tests for issue 11 ("one socket": the program's fd is always the program's own
//! socket): one test per defect of the list, each a small C client
//! (`tests/e2e/clients/os_*.c`) that resolves the name, connects a socket to the FIRST address
//! only and then does the one thing the defect is about, right after `connect()` answered
//! `EINPROGRESS`, while dnsfo fails over (or, on a healthy name, while a shim that races every
//! connect still races).
//!
//! Layouts: silent first (`[silent:127.0.0.2, up:127.0.0.3]`: a failover lasting the 250 ms
//! attempt delay), a healthy two-address name (`[up:127.0.0.2, up:127.0.0.3]`: nothing to fail
//! over, and the plain run, without dnsfo, proves the client itself right), refused first
//! (`[refused:127.0.0.2, up:127.0.0.3]`) for the non-blocking clients. What each test expects is
//! what the kernel does with one socket (see each client's header): a copy of the fd is the same
//! socket, a POLLIN sleeper wakes when data arrives, `fstat` says socket, and so on.
//!
//! All runs of one layout go through a single `python3 tests/e2e/onesocket.py run ...` (it builds
//! on `scripts/lib/hermetic.py`: a private user + mount + network namespace, a bind-mounted hosts
//! file, loopback addresses only, every run with a hard timeout) and run in parallel; the four
//! layouts' harnesses run at once, the first time a test needs any of them.
//!
//! The library is `$DNSFO_LIB`, else `target/release/libdnsfo.so`. Run:
//! `cargo test --release --test onesocket` (about 3 s on 2 cores when every client succeeds; 8 s
//! when sleepers never wake and run into the clients' 5 s hard timeout).

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

mod support;
use support::{assert_quiet, Outcome, Run};

const HARNESS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/onesocket.py");
/// Hard cap on one harness invocation (its own watchdog fires at the longest run + 30 s).
const HARNESS_DEADLINE: Duration = Duration::from_secs(90);
/// Each run's timeout (the clients' own hard timeout is 5 s).
const RUN_TIMEOUT_S: u32 = 8;

const FIRST: &str = "127.0.0.2";
const LIVE: &str = "127.0.0.3";

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Layout {
    Healthy,
    SilentFirst,
    RefusedFirst,
    /// Silent first, only the shutdown/AF_UNSPEC clients: the live server's connection count is
    /// theirs alone.
    SilentFirstAbort,
}

impl Layout {
    const ALL: [Layout; 4] = [
        Layout::Healthy,
        Layout::SilentFirst,
        Layout::RefusedFirst,
        Layout::SilentFirstAbort,
    ];

    fn addrs(self) -> &'static [&'static str] {
        match self {
            Layout::Healthy => &["up:127.0.0.2", "up:127.0.0.3"],
            Layout::SilentFirst | Layout::SilentFirstAbort => &["silent:127.0.0.2", "up:127.0.0.3"],
            Layout::RefusedFirst => &["refused:127.0.0.2", "up:127.0.0.3"],
        }
    }
}

/// Clients whose whole job ends in `GOT <banner>` (copies, sleepers, unwrapped calls, modes, epoll).
const GOT_CLIENTS: &[&str] = &[
    "dup",
    "dupfd",
    "fork-child",
    "fork-parent",
    "exec",
    "scm",
    "vfork",
    "poll",
    "select",
    "ppoll",
    "fstat",
    "fortify-recv",
    "sendfile",
    "splice",
    "sendmmsg",
    "siocoutq",
    "fdopen",
    "clear-nonblock",
    "fionbio",
    "connect-again",
    "epoll-reuse-empty",
    "epoll-reuse-other",
];
const ABORT_CLIENTS: &[&str] = &["shutdown", "unspec"];
const CANCEL_HEALTHY: &[&str] = &["cancel-deferred-pending", "cancel-async-timed"];
const CANCEL_SILENT: &[&str] = &[
    "cancel-deferred-pending",
    "cancel-deferred-blocked",
    "cancel-async-blocked",
];

/// (client, variant) runs of each layout.
fn runs(layout: Layout) -> Vec<(&'static str, &'static str)> {
    let mut v = Vec::new();
    let mut add = |clients: &[&'static str], variants: &[&'static str]| {
        for c in clients {
            for k in variants {
                v.push((*c, *k));
            }
        }
    };
    match layout {
        Layout::Healthy => {
            add(GOT_CLIENTS, &["dnsfo", "plain"]);
            add(ABORT_CLIENTS, &["dnsfo", "plain"]);
            add(CANCEL_HEALTHY, &["dnsfo", "plain"]);
            add(&["reuse-pipe"], &["dnsfo", "plain"]);
        }
        // without dnsfo these hang on the silent address: nothing to learn from that here
        Layout::SilentFirst => {
            add(GOT_CLIENTS, &["dnsfo"]);
            add(&["exec"], &["dnsfo#2"]);
            add(CANCEL_SILENT, &["dnsfo"]);
            add(&["reuse-pipe"], &["dnsfo"]);
        }
        Layout::RefusedFirst => add(GOT_CLIENTS, &["dnsfo"]),
        Layout::SilentFirstAbort => add(ABORT_CLIENTS, &["dnsfo", "plain"]),
    }
    v
}

type Outcomes = BTreeMap<Layout, Result<Outcome, String>>;

/// Every layout's harness, run once (all four at the same time) and shared by the tests.
fn outcomes() -> &'static Outcomes {
    static ALL: OnceLock<Outcomes> = OnceLock::new();
    ALL.get_or_init(|| {
        let handles: Vec<_> = Layout::ALL
            .iter()
            .map(|&layout| {
                let h = thread::spawn(move || {
                    let mut args: Vec<String> = Vec::new();
                    for a in layout.addrs() {
                        args.push("--addr".into());
                        args.push((*a).into());
                    }
                    for (c, k) in runs(layout) {
                        args.push("--run".into());
                        args.push(format!("{c}:{k}:{RUN_TIMEOUT_S}"));
                    }
                    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                    support::invoke(HARNESS, &refs, HARNESS_DEADLINE)
                });
                (layout, h)
            })
            .collect();
        handles
            .into_iter()
            .map(|(layout, h)| {
                let r = h.join().map_err(|e| {
                    e.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "harness thread panicked".into())
                });
                (layout, r)
            })
            .collect()
    })
}

#[track_caller]
fn outcome(layout: Layout) -> &'static Outcome {
    match &outcomes()[&layout] {
        Ok(o) => o,
        Err(e) => panic!("{layout:?}: the harness failed:\n{e}"),
    }
}

/// One run's output, with the harness's report shown on failure.
struct Case {
    o: &'static Outcome,
    name: String,
}

impl Case {
    #[track_caller]
    fn new(layout: Layout, client: &str, variant: &str) -> Case {
        let o = outcome(layout);
        let name = format!("{client}.{variant}");
        let _ = o.run(&name); // present and not skipped
        Case { o, name }
    }

    fn run(&self) -> Run<'static> {
        self.o.run(&self.name)
    }

    fn lines(&self) -> Vec<&'static str> {
        self.run().stdout.lines().collect()
    }

    fn first_line(&self) -> &'static str {
        self.lines().first().copied().unwrap_or("")
    }

    /// Everything about this run (not the other runs of the layout: they are many).
    fn report(&self) -> String {
        let r = self.run();
        format!(
            "---- {} (harness: {})\n  exit {:?}, signal {:?}, timed out {}, {} ms\n  stdout: {}\n  \
             stderr: {}\n  harness: layout {}, gai {}, accepted .2 {:?} .3 {:?}",
            self.name,
            self.o.cmdline.split(" --run").next().unwrap_or(""),
            r.exit,
            self.o.get(&self.name, "signal"),
            r.timed_out,
            r.elapsed_ms,
            r.stdout.trim_end().replace('\n', "\n          "),
            r.stderr.trim_end().replace('\n', "\n          "),
            self.o.get("harness", "layout"),
            self.o.get("harness", "gai"),
            self.o.get("harness", "accepted_127.0.0.2"),
            self.o.get("harness", "accepted_127.0.0.3"),
        )
    }

    #[track_caller]
    fn assert_quiet(&self) {
        if self.name.ends_with(".dnsfo") {
            assert_quiet(self.o, &self.run());
        }
    }

    /// Exit 0 and `GOT HELLO <ip>` as the first line.
    #[track_caller]
    fn assert_got(&self, ip: &str) {
        let r = self.run();
        assert_eq!(
            (r.exit, self.first_line()),
            (Some(0), format!("GOT HELLO {ip}").as_str()),
            "{}: want the banner of {ip}\n{}",
            self.name,
            self.report()
        );
        self.assert_quiet();
    }
}

// ------------------------------------------------------------------------------------------
// Copies, POLLIN sleepers, calls dnsfo does not wrap, socket modes, epoll number reuse:
// every one must reach the live server, on every layout
// ------------------------------------------------------------------------------------------

/// Healthy name: the plain run proves the client right; with dnsfo the same, from the first
/// address (nothing to fail over).
fn healthy(client: &str) {
    let plain = Case::new(Layout::Healthy, client, "plain");
    plain.assert_got(FIRST);
    Case::new(Layout::Healthy, client, "dnsfo").assert_got(FIRST);
    if client == "fortify-recv" {
        assert_fortified();
    }
}

fn silent_first(client: &str) {
    if client == "exec" {
        return silent_first_exec();
    }
    Case::new(Layout::SilentFirst, client, "dnsfo").assert_got(LIVE);
}

/// The exec'd copy: a process image that `exec`ed after the fork no longer shares the table of
/// sockets steered elsewhere (`copies`), so a wait of it that runs in the microseconds between
/// the parent's abort of the silent attempt and its next connect sees that abort (ECONNRESET).
/// README's Limits say so. One of two runs must get through (a systematic failure shows in
/// both; with eight tests at once on 2 CPUs one run in seven suite runs lost that race).
fn silent_first_exec() {
    let runs = [
        Case::new(Layout::SilentFirst, "exec", "dnsfo"),
        Case::new(Layout::SilentFirst, "exec", "dnsfo#2"),
    ];
    let got = |c: &Case| c.run().exit == Some(0) && c.first_line() == format!("GOT HELLO {LIVE}");
    if !runs.iter().any(got) {
        runs[0].assert_got(LIVE);
    }
    for c in &runs {
        c.assert_quiet();
        let r = c.run();
        assert!(
            got(c) || r.stdout.starts_with("ERR ECONNRESET"),
            "{}: neither the banner nor the abort's ECONNRESET\n{}",
            c.name,
            c.report()
        );
    }
}

fn refused_first(client: &str) {
    Case::new(Layout::RefusedFirst, client, "dnsfo").assert_got(LIVE);
}

/// The FORTIFY-built client really calls `__recv_chk` (glibc's, which does not go through the
/// exported `recv`).
fn assert_fortified() {
    let o = outcome(Layout::Healthy);
    let syms = o.get("harness", "fortify_syms");
    assert!(
        syms.split_whitespace().any(|s| s.starts_with("__recv_chk@")),
        "os_fortify does not import __recv_chk (nm -D says: {syms:?}); the FORTIFY build is not one"
    );
}

macro_rules! got_client {
    ($($module:ident => $client:literal),* $(,)?) => {$(
        mod $module {
            #[test]
            fn healthy_name() { super::healthy($client) }
            #[test]
            fn silent_first() { super::silent_first($client) }
            #[test]
            fn refused_first() { super::refused_first($client) }
        }
    )*};
}

got_client! {
    // copies made right after EINPROGRESS
    copy_dup => "dup",
    copy_fcntl_dupfd => "dupfd",
    copy_fork_child_reads => "fork-child",
    copy_fork_parent_reads_child_connects => "fork-parent",
    copy_exec_inherited => "exec",
    copy_scm_rights => "scm",
    copy_vfork_child_closes => "vfork",
    // POLLIN sleepers, no timeout
    sleeper_poll_pollin => "poll",
    sleeper_select_readable => "select",
    sleeper_ppoll_pollin => "ppoll",
    // calls dnsfo does not wrap
    unwrapped_fstat_is_socket => "fstat",
    unwrapped_fortify_recv_chk => "fortify-recv",
    unwrapped_sendfile => "sendfile",
    unwrapped_splice => "splice",
    unwrapped_sendmmsg => "sendmmsg",
    unwrapped_ioctl_siocoutq => "siocoutq",
    unwrapped_fdopen => "fdopen",
    // socket modes
    mode_clear_o_nonblock_then_blocking_read => "clear-nonblock",
    mode_fionbio_off_then_blocking_read => "fionbio",
    mode_second_blocking_connect_returns_0 => "connect-again",
    // an epoll fd closed and its number reused mid-failover gets no stale event
    epoll_number_reused_empty => "epoll-reuse-empty",
    epoll_number_reused_other_fd => "epoll-reuse-other",
}

// ------------------------------------------------------------------------------------------
// shutdown(SHUT_RDWR) and connect(AF_UNSPEC) mid-connect: no connection lands afterwards
// ------------------------------------------------------------------------------------------

/// The `op=` field of the client's STATE line: what shutdown()/connect(AF_UNSPEC) answered.
fn op_field(c: &Case) -> &'static str {
    c.lines()
        .iter()
        .find_map(|l| l.strip_prefix("STATE "))
        .and_then(|s| s.split_whitespace().find(|f| f.starts_with("op=")))
        .unwrap_or("(no STATE line)")
}

/// Silent first: the kernel aborts the attempt (`ENOTCONN` from getpeername, `ECONNRESET` in
/// SO_ERROR, POLLOUT|POLLERR|POLLHUP) and nothing connects later; with dnsfo every line is the same,
/// and the live server saw no connection at all (neither run could reach it without a failover
/// that must not happen).
fn abort_silent_first(client: &str) {
    let d = Case::new(Layout::SilentFirstAbort, client, "dnsfo");
    let p = Case::new(Layout::SilentFirstAbort, client, "plain");
    assert_eq!(
        (p.run().exit, p.first_line()),
        (
            Some(0),
            format!("ERR ENOTCONN (getpeername after {client})").as_str()
        ),
        "plain: the client is not what this test thinks\n{}",
        p.report()
    );
    assert_eq!(
        (d.run().exit, d.run().stdout),
        (p.run().exit, p.run().stdout),
        "dnsfo changed what {client} mid-connect does\n{}\n{}",
        d.report(),
        p.report()
    );
    let accepted = d.o.get("harness", "accepted_127.0.0.3");
    assert_eq!(
        accepted,
        "0",
        "a connection reached the live address after {client}\n{}",
        d.report()
    );
    d.assert_quiet();
}

/// Healthy name: on loopback the handshake is over before connect() returns, so the kernel's
/// answer is the connected socket's (`shutdown`: FIN, then a RST for the banner that arrives after
/// SHUT_RD; `AF_UNSPEC`: a RST at once); what a late connection would change is the peer, and
/// `shutdown`'s answer itself. Compared: the getpeername line and `op=`; for `unspec` (no server
/// timing involved) every line.
fn abort_healthy(client: &str) {
    let d = Case::new(Layout::Healthy, client, "dnsfo");
    let p = Case::new(Layout::Healthy, client, "plain");
    assert_eq!(
        (p.run().exit, p.first_line()),
        (
            Some(0),
            format!("ERR ENOTCONN (getpeername after {client})").as_str()
        ),
        "plain: the client is not what this test thinks\n{}",
        p.report()
    );
    assert_eq!(
        (d.run().exit, d.first_line(), op_field(&d)),
        (p.run().exit, p.first_line(), op_field(&p)),
        "dnsfo changed what {client} mid-connect does\n{}\n{}",
        d.report(),
        p.report()
    );
    if client == "unspec" {
        assert_eq!(
            d.run().stdout,
            p.run().stdout,
            "dnsfo changed the state after connect(AF_UNSPEC)\n{}\n{}",
            d.report(),
            p.report()
        );
    }
    d.assert_quiet();
}

#[test]
fn shutdown_mid_connect_silent_first() {
    abort_silent_first("shutdown");
}

#[test]
fn shutdown_mid_connect_healthy_name() {
    abort_healthy("shutdown");
}

#[test]
fn connect_af_unspec_mid_connect_silent_first() {
    abort_silent_first("unspec");
}

#[test]
fn connect_af_unspec_mid_connect_healthy_name() {
    abort_healthy("unspec");
}

// ------------------------------------------------------------------------------------------
// pthread_cancel of a thread inside a blocking connect()
// ------------------------------------------------------------------------------------------

/// The process kept running (exit 0), the later connect in another thread reached `ip`, every
/// round's thread was cancelled, no fd leaked by a cancelled connect (counted after a warm-up round
/// and after the last two rounds), and, when `in_connect`, every cancel hit a thread still inside
/// connect() (3 rounds).
fn assert_cancel(c: &Case, ip: &str, in_connect: bool) {
    let lines = c.lines();
    let r = c.run();
    assert_eq!(
        (r.exit, c.first_line()),
        (Some(0), format!("GOT HELLO {ip}").as_str()),
        "{}: the process did not survive the cancels, or the later connect failed\n{}",
        c.name,
        c.report()
    );
    let fds: BTreeMap<&str, i64> = lines
        .iter()
        .find_map(|l| l.strip_prefix("FDS "))
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|f| f.split_once('='))
        .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
        .collect();
    let before = fds.get("before").copied();
    assert!(
        before.is_some()
            && fds.get("after1") == before.as_ref()
            && fds.get("after2") == before.as_ref(),
        "{}: open fds changed across cancelled connects: {fds:?} (the fd lists are on stderr)\n{}",
        c.name,
        c.report()
    );
    let cancelled = lines
        .iter()
        .find_map(|l| l.strip_prefix("CANCELLED "))
        .unwrap_or("");
    let (k, rest) = cancelled.split_once('/').unwrap_or(("", ""));
    let rounds = rest.split_whitespace().next().unwrap_or("");
    let want = if in_connect {
        "3/3 INCONNECT 3".to_string()
    } else {
        format!("{rounds}/{rounds} ")
    };
    assert!(
        !k.is_empty() && k == rounds && cancelled.starts_with(&want),
        "{}: want `{want}`\n{}",
        c.name,
        c.report()
    );
    c.assert_quiet();
}

fn cancel_healthy(client: &str) {
    assert_cancel(&Case::new(Layout::Healthy, client, "plain"), FIRST, false);
    assert_cancel(&Case::new(Layout::Healthy, client, "dnsfo"), FIRST, false);
}

fn cancel_silent(client: &str, in_connect: bool) {
    assert_cancel(
        &Case::new(Layout::SilentFirst, client, "dnsfo"),
        LIVE,
        in_connect,
    );
}

/// Deferred cancel made pending before connect(): acted on at connect's first cancellation point.
#[test]
fn cancel_deferred_pending_healthy_name() {
    cancel_healthy("cancel-deferred-pending");
}

#[test]
fn cancel_deferred_pending_silent_first() {
    cancel_silent("cancel-deferred-pending", false);
}

/// Deferred cancel 50 ms into a connect asleep on the silent address.
#[test]
fn cancel_deferred_blocked_silent_first() {
    cancel_silent("cancel-deferred-blocked", true);
}

/// PTHREAD_CANCEL_ASYNCHRONOUS, 50 ms into a connect asleep on the silent address.
#[test]
fn cancel_async_blocked_silent_first() {
    cancel_silent("cancel-async-blocked", true);
}

/// PTHREAD_CANCEL_ASYNCHRONOUS the moment the thread enters a connect to a healthy name.
#[test]
fn cancel_async_timed_healthy_name() {
    cancel_healthy("cancel-async-timed");
}

// ------------------------------------------------------------------------------------------
// A blocking connect's fd closed by another thread and reused by a pipe mid-failover
// ------------------------------------------------------------------------------------------

#[track_caller]
fn assert_pipe_ok(c: &Case) {
    let r = c.run();
    assert_eq!(
        (r.exit, c.o.get(&c.name, "signal"), c.first_line()),
        (Some(0), "", "GOT PIPE-OK"),
        "{}: the pipe that reused the fd number was touched (signal 13 = SIGPIPE: its read end \
         was replaced)\n{}",
        c.name,
        c.report()
    );
    c.assert_quiet();
}

#[test]
fn blocking_connect_fd_reused_by_pipe_silent_first() {
    assert_pipe_ok(&Case::new(Layout::SilentFirst, "reuse-pipe", "dnsfo"));
}

/// The plain run proves the client (the connect is over before the close); dnsfo the same.
#[test]
fn blocking_connect_fd_reused_by_pipe_healthy_name() {
    assert_pipe_ok(&Case::new(Layout::Healthy, "reuse-pipe", "plain"));
    assert_pipe_ok(&Case::new(Layout::Healthy, "reuse-pipe", "dnsfo"));
}
