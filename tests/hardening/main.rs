//! Hardening end-to-end tests (issue 5): a shim inside someone else's process must never crash,
//! hang, leak or lie. Real programs (mostly the small C clients `tests/e2e/clients/hard_*.c`, plus
//! python, bash, curl, valgrind and Go), each case in its own private user + mount + network
//! namespace, loopback addresses only, every run bounded.
//!
//! Each test runs `python3 tests/e2e/hardening run CASE` (a package built on
//! `scripts/lib/hermetic.py`: `common.py` and one module per area, as here), which only runs the
//! programs and reports facts in the harness protocol: every run's result under its name (e.g.
//! `reentry.dnsfo`, `reentry.plain`: exit, signal, time, stdout, stderr) and what else it
//! measured (`harness` facts: server cycles, `nm` output, ELF interpreters, skips). The
//! assertions are here, one check per fact, named by an id (`reentry.exit0`, `gai.name_inet`,
//! ...): a test evaluates all of its checks and fails listing every failed one with the runs it
//! is about, on a harness error, or when fewer checks ran than expected. `--nocapture` prints a
//! `check <id> ok|FAIL` line for each.
//!
//! The library is `$DNSFO_LIB`, else `target/release/libdnsfo.so` (`cargo build --release --lib`).
//!
//! | issue item | test | module |
//! | --- | --- | --- |
//! | 1, 2 re-entrancy; hooks from constructors, atexit, TLS destructors | `reentry_*` | `threads` |
//! | 3 no abort in the program (allocation failure inside a hook) | `oom_inside_a_hook` | `threads` |
//! | 4 threads | `threads_*` | `threads` |
//! | 5 fork, spawn, exec chains, fd leaks into children | `fork_*`, `spawn_*`, `fds_*` | `processes` |
//! | 6 resources under `ulimit -n 64` | `limits_ulimit_64` | `limits` |
//! | 7 lookup contract, `_r` buffers, valgrind | `lookup_*` | `lookup` |
//! | 8 repeated connects, odd addresses | `reconnect_same_as_libc` | `lookup` |
//! | 9 TCP Fast Open | `tcp_fast_open` | `lookup` |
//! | 10 `AT_SECURE` (and issue 15's config files), bad values | `secure_*`, `bad_values` | `secure`, `conduct` |
//! | 11 quiet by default | `quiet_by_default` | `conduct` |
//! | 12 exported symbols (the hooks and dnsfo's own `dnsfo_pass_through`), `LD_BIND_NOW` | `symbols_and_bind_now` | `conduct` |
//! | 13 flapping servers | `flapping_servers` | `threads` |
//! | 14 property tests | `crates/dnsfo-core/src/plan.rs` (proptest) | |
//! | what bypasses libc (io_uring, Go): no harm | `io_uring_no_harm`, `go_static_and_cgo_no_harm` | `bypass` |

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

#[path = "../support/mod.rs"]
mod support;
use support::Outcome;

mod bypass;
mod conduct;
mod limits;
mod lookup;
mod processes;
mod secure;
mod threads;

const HARNESS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/hardening");
/// Hard cap on one case (the harness's own watchdog fires at 170 s inside the namespace).
const DEADLINE: Duration = Duration::from_secs(200);

// ------------------------------------------------------------------------------------------
// A case, its runs and its checks
// ------------------------------------------------------------------------------------------

/// One case's outcome and the checks made on it (all evaluated, reported together by `finish`).
pub struct Case {
    name: &'static str,
    o: Outcome,
    checks: Cell<usize>,
    failed: RefCell<Vec<String>>,
}

impl Case {
    /// Runs `python3 tests/e2e/hardening run NAME`; panics when the harness itself failed.
    #[track_caller]
    pub fn run(name: &'static str) -> Case {
        Case {
            name,
            o: support::invoke(HARNESS, &[name], DEADLINE),
            checks: Cell::new(0),
            failed: RefCell::new(Vec::new()),
        }
    }

    /// The run reported as `variant`; panics (with the harness's report) when it is missing.
    #[track_caller]
    pub fn v(&self, variant: &str) -> V<'_> {
        let r = self.o.run(variant);
        V {
            name: r.name,
            exit: r.exit,
            signal: self.o.get(variant, "signal").parse().ok(),
            timed_out: r.timed_out,
            elapsed_ms: r.elapsed_ms,
            stdout: r.stdout,
            stderr: r.stderr,
            o: &self.o,
        }
    }

    /// The names of the runs that start with `prefix`, in the order they were reported.
    pub fn variants(&self, prefix: &str) -> Vec<&str> {
        let o = &self.o;
        o.order
            .iter()
            .filter(|v| v.starts_with(prefix))
            .map(String::as_str)
            .collect()
    }

    /// A `harness` fact ("" when not reported).
    pub fn fact(&self, key: &str) -> &str {
        self.o.get("harness", key)
    }

    pub fn has_fact(&self, key: &str) -> bool {
        self.o
            .fields
            .contains_key(&("harness".to_string(), key.to_string()))
    }

    /// Check `id`: `ok`, else `detail()` says why (the runs it is about).
    pub fn check(&self, id: impl fmt::Display, ok: bool, detail: impl FnOnce() -> String) {
        self.checks.set(self.checks.get() + 1);
        println!("check {id} {}", if ok { "ok" } else { "FAIL" });
        if !ok {
            let detail = detail().trim_end().replace('\n', "\n    ");
            self.failed
                .borrow_mut()
                .push(format!("FAIL {id}\n    {detail}"));
        }
    }

    /// Fails on any failed check, or when fewer than `min_checks` checks ran.
    #[track_caller]
    pub fn finish(self, min_checks: usize) {
        let checks = self.checks.get();
        let failed = self.failed.take();
        let context = format!(
            "case {}: exit {:?}, {checks} checks\n{}",
            self.name,
            self.o.status,
            self.facts()
        );
        assert!(
            failed.is_empty(),
            "{} failed check(s):\n{}\n{context}",
            failed.len(),
            failed.join("\n")
        );
        assert!(
            checks >= min_checks,
            "only {checks} checks ran, want >= {min_checks}\n{context}\n{}",
            self.o
        );
    }

    /// The `harness` facts and the harness's stderr (each run shows itself in its checks).
    fn facts(&self) -> String {
        let mut s = String::from("harness facts:\n");
        for ((section, key), value) in &self.o.fields {
            if section == "harness" {
                let value = value.trim_end().replace('\n', "\n      ");
                s.push_str(&format!("  {key}: {value}\n"));
            }
        }
        s.push_str(&format!("harness stderr:\n{}", self.o.stderr));
        s
    }
}

/// One run as the harness reported it.
#[derive(Clone, Copy)]
pub struct V<'a> {
    pub name: &'a str,
    pub exit: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub elapsed_ms: u64,
    pub stdout: &'a str,
    pub stderr: &'a str,
    o: &'a Outcome,
}

impl<'a> V<'a> {
    /// The first stdout line that is `tag` or starts with `tag ` ("" when none).
    pub fn line(&self, tag: &str) -> &'a str {
        line_of(self.stdout, tag)
    }

    /// The stdout lines that start with `prefix`.
    pub fn lines_with(&self, prefix: &'a str) -> impl Iterator<Item = &'a str> {
        self.stdout.lines().filter(move |l| l.starts_with(prefix))
    }

    /// A fact the harness measured about this run ("" when not reported).
    pub fn get(&self, key: &str) -> &'a str {
        self.o.get(self.name, key)
    }

    /// Ended by itself: not killed at its timeout, not by a signal.
    pub fn healthy(&self) -> bool {
        self.exit.is_some() && !self.timed_out && self.signal.is_none()
    }

    /// Everything about the run (the ends of its stdout and stderr).
    pub fn show(&self) -> String {
        let exit = self.exit.map_or("None".to_string(), |e| e.to_string());
        let sig = self
            .signal
            .map_or(String::new(), |s| format!(" signal={s}"));
        format!(
            "[{}] exit={exit}{sig} timed_out={} {} ms\nstdout: {:?}\nstderr: {:?}",
            self.name,
            u8::from(self.timed_out),
            self.elapsed_ms,
            tail(self.stdout, 3000),
            tail(self.stderr, 3000)
        )
    }
}

/// Two runs shown one after the other.
pub fn show2(a: &V, b: &V) -> String {
    format!("{}\n{}", a.show(), b.show())
}

// ------------------------------------------------------------------------------------------
// What the clients print
// ------------------------------------------------------------------------------------------

/// The first line of `text` that is `tag` or starts with `tag ` ("" when none).
pub fn line_of<'a>(text: &'a str, tag: &str) -> &'a str {
    text.lines()
        .find(|l| *l == tag || l.strip_prefix(tag).is_some_and(|r| r.starts_with(' ')))
        .unwrap_or("")
}

/// A client's `TAG k=v k=v ...` line as a map (words without `=` left out).
pub fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split_whitespace()
        .skip(1)
        .filter_map(|w| w.split_once('='))
        .collect()
}

/// Field `k` of `f` as a number; `default` when absent or not a number.
pub fn num(f: &BTreeMap<&str, &str>, k: &str, default: i64) -> i64 {
    f.get(k).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The last `n` bytes of `s` (at a character boundary).
pub fn tail(s: &str, n: usize) -> &str {
    let mut i = s.len().saturating_sub(n);
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

/// The first `n` bytes of `s` (at a character boundary).
pub fn head(s: &str, n: usize) -> &str {
    let mut i = n.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    &s[..i]
}

pub const LIVE: &str = "127.0.0.3";

// ------------------------------------------------------------------------------------------
// The tests (issue 5's items; each test's checks are in its module)
// ------------------------------------------------------------------------------------------

// 1, 2
#[test]
fn reentry_malloc_constructors_atexit_tls_destructors() {
    threads::reentry();
}

// 3
#[test]
fn oom_inside_a_hook() {
    threads::oom();
}

// 4
#[test]
fn threads_16x500_failover_connects() {
    threads::hammer();
}

#[test]
fn threads_8_racing_a_5_address_name() {
    threads::race();
}

// 5
#[test]
fn fork_40_children_with_busy_threads() {
    processes::fork_busy();
}

#[test]
fn spawn_system_subprocess_exec_chain() {
    processes::spawn();
}

#[test]
fn fds_no_dnsfo_fd_in_children() {
    processes::fd_leak();
}

#[test]
fn fork_child_keeps_its_own_fds() {
    processes::fork_stale_fds();
}

// 6
#[test]
fn limits_ulimit_64() {
    limits::ulimit_64();
}

// 7
#[test]
fn lookup_getaddrinfo_contract() {
    lookup::gai_contract();
}

#[test]
fn lookup_gethostbyname_r_every_buffer_length() {
    lookup::ghbn_r();
}

#[test]
fn lookup_rounds_heap_and_valgrind() {
    lookup::rounds_and_valgrind();
}

// 8
#[test]
fn reconnect_same_as_libc() {
    lookup::reconnect();
}

// 9
#[test]
fn tcp_fast_open() {
    lookup::tfo();
}

// 10
#[test]
fn secure_execution() {
    secure::secure();
}

/// Issue 15: under secure execution only a root-owned, not world-writable /etc/dnsfo.conf counts.
#[test]
fn secure_execution_reads_only_a_root_owned_etc_dnsfo_conf() {
    secure::secure_conf();
}

#[test]
fn bad_values() {
    conduct::bad_values();
}

// 11
#[test]
fn quiet_by_default() {
    conduct::quiet();
}

// 12
#[test]
fn symbols_and_bind_now() {
    conduct::symbols();
}

// 13
#[test]
fn flapping_servers() {
    threads::flap();
}

// What dnsfo cannot see (io_uring, Go's raw system calls, static Go): it must do no harm.
// Needs liburing-dev and golang-go (.ci/run installs them); when missing, the case fails saying so.
#[test]
fn io_uring_no_harm() {
    bypass::io_uring();
}

#[test]
fn go_static_and_cgo_no_harm() {
    bypass::go();
}
