//! Shared by tests/cli.rs and tests/install.rs: running a command with a hard time limit,
//! temporary directories, and the hermetic harness (scripts/lib/hermetic.py: a private
//! user + mount + network namespace with its own /etc/hosts and up/refused/silent servers).
#![allow(dead_code)]

use std::collections::BTreeMap;
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
const HARNESS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lib/hermetic.py");

/// Prints why a test does nothing, so a skip is visible in `cargo test -- --nocapture` and in
/// the captured output of a failing run.
pub fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why}");
}

/// The directory the cargo-built `dnsfo` binary and `libdnsfo.so` live in.
pub fn release_dir() -> PathBuf {
    let dir = Path::new(DNSFO).parent().unwrap();
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

pub fn dnsfo() -> Command {
    clean(DNSFO)
}

/// What a bounded run produced.
#[derive(Debug)]
pub struct Out {
    /// `None`: killed at the limit (or by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?} after {:?}\n--- stdout\n{}--- stderr\n{}---",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` (stdin from /dev/null, own process group) and kills its group at `limit`.
pub fn run(mut cmd: Command, limit: Duration) -> Out {
    use std::os::unix::process::CommandExt;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let t0 = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
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
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if t0.elapsed() >= limit {
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = t0.elapsed();
    // Kill whatever is left of the group (the whole group when the limit was hit).
    // SAFETY: the child leads its own process group; signalling it has no memory effects.
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
    let _ = child.wait();
    Out {
        code: status.and_then(|s| s.code()),
        stdout: ro.join().unwrap(),
        stderr: re.join().unwrap(),
        elapsed,
    }
}

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!("dnsfo-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
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

pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
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
/// name `svc` has `addrs` (KIND:IP, resolver order), without the library (variant `plain`).
pub struct Hermetic {
    pub fields: BTreeMap<(String, String), String>,
    pub raw: String,
}

impl Hermetic {
    pub fn run(addrs: &[&str], command: &[&str], timeout_s: u32) -> Hermetic {
        let mut cmd = clean("python3");
        cmd.arg(HARNESS).arg("run");
        for a in addrs {
            cmd.arg("--addr").arg(a);
        }
        cmd.args(["--variant", &format!("plain:{timeout_s}"), "--"]);
        cmd.args(command);
        let out = run(cmd, Duration::from_secs(u64::from(timeout_s) + 60));
        assert_eq!(out.code, Some(0), "harness failed:\n{out}");
        let mut fields = BTreeMap::new();
        for line in out.stdout.lines() {
            let mut it = line.splitn(3, ' ');
            let (Some(sec), Some(key)) = (it.next(), it.next()) else {
                continue;
            };
            fields.insert(
                (sec.to_string(), key.to_string()),
                unescape(it.next().unwrap_or("")),
            );
        }
        Hermetic {
            fields,
            raw: out.stdout,
        }
    }

    pub fn get(&self, section: &str, key: &str) -> &str {
        self.fields
            .get(&(section.to_string(), key.to_string()))
            .map(String::as_str)
            .unwrap_or("")
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

impl std::fmt::Display for Hermetic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "harness gai: {}", self.get("harness", "gai"))?;
        writeln!(
            f,
            "exit {:?} timed_out {} elapsed {} ms",
            self.exit(),
            self.get("plain", "timed_out"),
            self.get("plain", "elapsed_ms")
        )?;
        writeln!(
            f,
            "--- stdout\n{}--- stderr\n{}---",
            self.stdout(),
            self.get("plain", "stderr")
        )
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some('x') => {
                let h: String = chars.by_ref().take(2).collect();
                if let Ok(b) = u8::from_str_radix(&h, 16) {
                    out.push(char::from(b));
                }
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

/// The table row (line) of `addr` in `dnsfo check` output.
pub fn row<'a>(table: &'a str, addr: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(addr))
        .unwrap_or_else(|| panic!("no row for {addr} in:\n{table}"))
}
