//! The one test-support module of the end-to-end test files (each includes it as `mod support;`
//! and uses its own subset):
//! - running a command under a hard time limit in its own process group ([`run`], [`Out`]);
//! - the Python harness (`scripts/lib/hermetic.py` and the scenario scripts in `tests/e2e/` built
//!   on it) and its protocol: lines `SECTION KEY VALUE`, SECTION `harness` or one client run (a
//!   variant), VALUE escaped (`\n`, `\t`, `\r`, `\\`, `\xNN`) ([`invoke`], [`scenario`],
//!   [`Outcome`], [`Hermetic`] for "any command in a namespace");
//! - what the operator-facing tests need: the built `dnsfo` and `libdnsfo.so`, a clean
//!   environment, temporary directories, skips.
//!
//! Assertions about what a program did stay in the test files; this module only runs and parses.

#![allow(dead_code)] // each test file uses its own subset

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// The `dnsfo` command of this build (crate `dnsfo-cli`, a workspace member, so not a binary of
/// this package: it is found where cargo puts it, beside `libdnsfo.so`).
#[cfg(not(debug_assertions))]
pub const DNSFO: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/../release/dnsfo");
#[cfg(debug_assertions)]
pub const DNSFO: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/../debug/dnsfo");
/// The generic harness: any command in a namespace with a name of several addresses.
const HERMETIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lib/hermetic.py");

// ------------------------------------------------------------------------------------------
// Running a command
// ------------------------------------------------------------------------------------------

/// What a bounded run produced.
#[derive(Debug)]
pub struct Out {
    /// `None`: killed at the limit (or by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit {:?} after {:?}\n--- stdout\n{}--- stderr\n{}---",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` (stdin from /dev/null, own process group) and kills its whole group when it ends
/// or at `limit`, whichever comes first: nothing it started outlives the test.
pub fn run(mut cmd: Command, limit: Duration) -> Out {
    use std::os::unix::process::CommandExt;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let t0 = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut so = child.stdout.take().expect("piped stdout");
    let mut se = child.stderr.take().expect("piped stderr");
    let ro = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let re = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for the child") {
            break Some(st);
        }
        if t0.elapsed() >= limit {
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = t0.elapsed();
    // SAFETY: the child leads its own process group; signalling it has no memory effects.
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
    let _ = child.wait();
    Out {
        code: status.and_then(|s| s.code()),
        stdout: ro.join().unwrap_or_default(),
        stderr: re.join().unwrap_or_default(),
        elapsed,
    }
}

/// A command without the caller's LD_PRELOAD and DNSFO_* variables.
pub fn clean(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    for (k, _) in std::env::vars_os() {
        let ks = k.to_string_lossy();
        if ks == "LD_PRELOAD" || ks.starts_with("DNSFO_") || ks == "NO_COLOR" {
            c.env_remove(&k);
        }
    }
    c
}

pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Prints why a test does nothing, so a skip is visible in `cargo test -- --nocapture` and in
/// the captured output of a failing run.
pub fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why}");
}

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!("dnsfo-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).expect("create a temporary directory");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ------------------------------------------------------------------------------------------
// The build under test
// ------------------------------------------------------------------------------------------

/// The directory the cargo-built `dnsfo` binary and `libdnsfo.so` live in.
pub fn release_dir() -> PathBuf {
    let dir = Path::new(DNSFO).parent().expect("a directory");
    dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())
}

/// The library next to the binary; the tests need it built (`cargo build --release`).
pub fn built_lib() -> PathBuf {
    let lib = release_dir().join("libdnsfo.so");
    assert!(
        lib.is_file(),
        "{} is missing: run `cargo build --release` first (scripts/test does)",
        lib.display()
    );
    lib
}

pub fn dnsfo() -> Command {
    clean(DNSFO)
}

/// The part of a script's output after its `== NAME` line, up to the next `== ` line.
pub fn part_of<'a>(out: &'a str, name: &str) -> Option<&'a str> {
    out.split(&format!("== {name}\n"))
        .nth(1)
        .and_then(|p| p.split("\n== ").next())
}

/// `dnsfo check`'s prose with its folded lines joined again (a continuation line starts with
/// the 15 spaces of a lead), so that a sentence can be looked for whole.
pub fn unfold(s: &str) -> String {
    s.replace("\n               ", " ")
}

/// The table row (line) of `addr` in `dnsfo check` output.
pub fn row<'a>(table: &'a str, addr: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(addr))
        .unwrap_or_else(|| panic!("no row for {addr} in:\n{table}"))
}

// ------------------------------------------------------------------------------------------
// The harness protocol
// ------------------------------------------------------------------------------------------

/// A harness VALUE as it was before escaping.
pub fn unescape(s: &str) -> String {
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

/// Everything one harness invocation reported: `harness` facts and one record per run.
pub struct Outcome {
    pub cmdline: String,
    pub fields: BTreeMap<(String, String), String>,
    /// Runs (variants) in the order they first appeared.
    pub order: Vec<String>,
    pub status: Option<i32>,
    pub stderr: String,
}

/// One client run, as reported by the harness.
pub struct Run<'a> {
    pub name: &'a str,
    pub exit: Option<i32>,
    pub timed_out: bool,
    pub elapsed_ms: u64,
    pub stdout: &'a str,
    pub stderr: &'a str,
    pub log: &'a str,
}

impl Outcome {
    /// Parses what a harness printed.
    pub fn parse(cmdline: String, out: Out) -> Outcome {
        let mut fields = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for line in out.stdout.lines() {
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
        Outcome {
            cmdline,
            fields,
            order,
            status: out.code,
            stderr: out.stderr,
        }
    }

    pub fn get(&self, section: &str, key: &str) -> &str {
        self.fields
            .get(&(section.to_string(), key.to_string()))
            .map(String::as_str)
            .unwrap_or("")
    }

    pub fn has(&self, section: &str) -> bool {
        self.order.iter().any(|v| v == section)
    }

    /// The run of `variant`; panics (with everything the harness said) when it is missing or
    /// was skipped.
    #[track_caller]
    pub fn run(&self, variant: &str) -> Run<'_> {
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
            log: self.get(variant, "log"),
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
            writeln!(f, "-- run {v}")?;
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

/// With the library preloaded (and no DNSFO_LOG) nothing of dnsfo reaches the program's stderr.
#[track_caller]
pub fn assert_quiet(o: &Outcome, run: &Run) {
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

// ------------------------------------------------------------------------------------------
// Running the harness
// ------------------------------------------------------------------------------------------

/// `python3 SCRIPT ARGS...` from the repository root (`$DNSFO_TEST_PYTHON` instead of python3
/// if set), without the caller's LD_PRELOAD and DNSFO_* variables, except `DNSFO_LIB`: the
/// library under test (e.g. an older build, to show that a test fails there).
fn python(script: &str, args: &[&str]) -> Command {
    let python = std::env::var("DNSFO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = clean(python);
    if let Some(lib) = std::env::var_os("DNSFO_LIB") {
        cmd.env("DNSFO_LIB", lib);
    }
    cmd.arg(script).args(args).current_dir(REPO);
    cmd
}

/// Runs `python3 SCRIPT ARGS...` from the repository root, killed (with everything it started)
/// after `deadline`: (stdout, stderr, exit status; `None` when killed).
pub fn run_python(
    script: &str,
    args: &[&str],
    deadline: Duration,
) -> (String, String, Option<i32>) {
    let out = run(python(script, args), deadline);
    (out.stdout, out.stderr, out.code)
}

/// Runs `python3 SCRIPT run ARGS...` (from the repository root), killing it after `deadline`,
/// and checks that the harness itself worked and found the library.
#[track_caller]
pub fn invoke(script: &str, args: &[&str], deadline: Duration) -> Outcome {
    let mut full = vec!["run"];
    full.extend_from_slice(args);
    let cmdline = format!("python3 {script} run {}", args.join(" "));
    let outcome = Outcome::parse(cmdline, run(python(script, &full), deadline));
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
    if outcome.get("harness", "lib_stale") == "1" {
        eprintln!(
            "warning: {} is older than src/ or Cargo.toml: run `cargo build --release`",
            outcome.get("harness", "lib")
        );
    }
    outcome
}

/// `client` against `addrs` (resolver order), once per variant.
#[track_caller]
pub fn scenario(
    script: &str,
    client: &str,
    addrs: &[&str],
    variants: &[&str],
    extra: &[&str],
    deadline: Duration,
) -> Outcome {
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
    invoke(script, &args, deadline)
}

/// Why the hermetic harness cannot run here, if it cannot.
pub fn hermetic_unavailable() -> Option<String> {
    if !have("python3") {
        return Some("python3 not found (Debian: python3)".into());
    }
    let ok = Command::new("unshare")
        .args(["-rmn", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return Some("`unshare -rmn true` fails: no unprivileged user namespaces here".into());
    }
    None
}

/// One harness run of `command` (placeholders {name} {port} expand) in a namespace where the
/// name `svc` has `addrs` (KIND:IP, resolver order), without the library (variant `plain`): the
/// command itself sets LD_PRELOAD or runs `dnsfo` where it wants to.
pub struct Hermetic(pub Outcome);

impl Hermetic {
    #[track_caller]
    pub fn run(addrs: &[&str], command: &[&str], timeout_s: u32) -> Hermetic {
        let plain = format!("plain:{timeout_s}");
        let mut args: Vec<&str> = Vec::new();
        for a in addrs {
            args.extend(["--addr", a]);
        }
        args.extend(["--variant", &plain, "--"]);
        args.extend_from_slice(command);
        Hermetic(invoke(
            HERMETIC,
            &args,
            Duration::from_secs(u64::from(timeout_s) + 60),
        ))
    }

    pub fn get(&self, section: &str, key: &str) -> &str {
        self.0.get(section, key)
    }

    /// The command's stdout, exit status and elapsed ms (variant `plain`).
    pub fn stdout(&self) -> &str {
        self.get("plain", "stdout")
    }
    pub fn exit(&self) -> &str {
        self.get("plain", "exit")
    }
    pub fn elapsed_ms(&self) -> u64 {
        self.get("plain", "elapsed_ms").parse().unwrap_or(u64::MAX)
    }
}

impl fmt::Display for Hermetic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
