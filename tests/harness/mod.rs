//! Shared by the end-to-end test files: runs one of the Python harness scripts
//! (`scripts/lib/hermetic.py` or an extension of it) as `python3 SCRIPT run ARGS...` under a hard
//! deadline and parses what it prints: lines `SECTION KEY VALUE`, where SECTION is `harness` or
//! one client run (a variant), and VALUE is escaped (`\n`, `\t`, `\xNN`).

#![allow(dead_code)] // each test file uses its own subset

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

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

impl Outcome {
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

/// Runs `python3 SCRIPT ARGS...` from the repository root, killing it after `deadline`:
/// (stdout, stderr, exit status; `None` when killed).
pub fn run_python(
    script: &str,
    args: &[&str],
    deadline: Duration,
) -> (String, String, Option<i32>) {
    let python = std::env::var("DNSFO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(&python)
        .arg(script)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python} {script}: {e}"));
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
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    (
        out_t.join().unwrap_or_default(),
        err_t.join().unwrap_or_default(),
        status,
    )
}

/// Runs `python3 SCRIPT run ARGS...` (from the repository root), killing it after `deadline`,
/// and checks that the harness itself worked and found the library.
#[track_caller]
pub fn invoke(script: &str, args: &[&str], deadline: Duration) -> Outcome {
    let mut full = vec!["run"];
    full.extend_from_slice(args);
    let (stdout, stderr, status) = run_python(script, &full, deadline);
    let cmdline = format!("python3 {script} run {}", args.join(" "));
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
