//! `dnsfo run [options] [--] program [args...]`: the same as `scripts/dnsfo-run`; a program
//! that `LD_PRELOAD` cannot reach (statically linked, or Go) runs under the supervisor
//! (`dnsfo_supervise`) instead, and a set-user-ID one with a warning.
//!
//! Finds the library, appends it to `LD_PRELOAD`, sets the `DNSFO_*` variables the options ask
//! for, then `exec`s the program (same pid, same stdin/stdout/stderr).

use crate::args::{self, Item, Parser};
use crate::elf::{self, Kind};
use crate::term::Style;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const USAGE: &str = "\
Usage: dnsfo run [options] [--] program [args...]

Run PROGRAM with libdnsfo.so preloaded: a TCP connect to a dead address of a name with several
addresses lands on a live address of the same name; the winner is remembered. The same as
dnsfo-run. A program that LD_PRELOAD cannot reach (statically linked, or Go) runs under the
supervisor instead: its connects are handed to dnsfo by a seccomp filter and steered from
outside the process, with the same rules (said on stderr unless -q).

Options:
  --attempt-delay MS   delay before trying the next address (DNSFO_ATTEMPT_DELAY_MS;
                       default 250, 0..=60000, 0 = all addresses at once)
  --timeout MS         cap on one whole connect across all addresses
                       (DNSFO_CONNECT_TIMEOUT_MS; default 0 = none, 0..=3600000)
  --dead-ttl MS        how long a failed address is skipped, doubling on repeated failure
                       up to 16x (DNSFO_DEAD_TTL_MS; default 30000, 0..=86400000)
  -v, --verbose        log one line per attempt (DNSFO_LOG=debug); to stderr unless --log-file
  --log-file PATH      append the log to PATH (DNSFO_LOG_FILE); turns on debug logging
                       unless DNSFO_LOG or -v already sets a level
  --disable            preload the library but make it a pure pass-through (DNSFO_DISABLE=1)
  --supervise          always use the supervisor (seccomp), never LD_PRELOAD
  --no-supervise       never use the supervisor: LD_PRELOAD only (a warning when it
                       cannot reach the program)
  -q, --quiet          no note or warning about how dnsfo reaches the program
  -h, --help           show this help and exit
  -V, --version        show the version and exit

Options take their value as the next argument or after '=' (--timeout=5000). Options end at
'--' or at the first argument that is not an option.

Library: $DNSFO_LIB if set; else ../lib/dnsfo/libdnsfo.so or ../lib/libdnsfo.so next to the
dnsfo executable (installed layout); else libdnsfo.so beside it in a cargo target directory
(target/release). The library is appended to any LD_PRELOAD.

Exit status: the program's own (under the supervisor, 128+N if signal N ended it); 2 for a
usage error; 125 if the library cannot be found;
126 if the program is not executable; 127 if the program is not found.
";

struct Opts {
    attempt_delay: Option<u64>,
    timeout: Option<u64>,
    dead_ttl: Option<u64>,
    verbose: bool,
    log_file: Option<OsString>,
    disable: bool,
    quiet: bool,
    /// `--supervise` / `--no-supervise`; `None`: the supervisor when LD_PRELOAD cannot reach it.
    supervise: Option<bool>,
}

enum Parsed {
    Run(Opts, Vec<OsString>),
    Exit(u8),
}

fn parse(argv: Vec<OsString>) -> Result<Parsed, String> {
    let mut o = Opts {
        attempt_delay: None,
        timeout: None,
        dead_ttl: None,
        verbose: false,
        log_file: None,
        disable: false,
        quiet: false,
        supervise: None,
    };
    let mut p = Parser::new(argv);
    let mut program: Vec<OsString> = Vec::new();
    while let Some(item) = p.next_item() {
        match item {
            Item::End => break,
            Item::Pos(a) => {
                program.push(a);
                break;
            }
            Item::Opt { name, inline } => match name.as_str() {
                "--attempt-delay" => {
                    let v = p.value(&name, inline)?;
                    o.attempt_delay = Some(args::parse_ms(&name, &v, 60_000)?);
                }
                "--timeout" => {
                    let v = p.value(&name, inline)?;
                    o.timeout = Some(args::parse_ms(&name, &v, 3_600_000)?);
                }
                "--dead-ttl" => {
                    let v = p.value(&name, inline)?;
                    o.dead_ttl = Some(args::parse_ms(&name, &v, 86_400_000)?);
                }
                "--log-file" => {
                    let v = p.value(&name, inline)?;
                    if v.is_empty() {
                        return Err("--log-file needs a non-empty path".into());
                    }
                    o.log_file = Some(v);
                }
                "-v" | "--verbose" => {
                    args::no_value(&name, &inline)?;
                    o.verbose = true;
                }
                "--disable" => {
                    args::no_value(&name, &inline)?;
                    o.disable = true;
                }
                "--supervise" | "--no-supervise" => {
                    args::no_value(&name, &inline)?;
                    o.supervise = Some(name == "--supervise");
                }
                "-q" | "--quiet" => {
                    args::no_value(&name, &inline)?;
                    o.quiet = true;
                }
                "-h" | "--help" => {
                    print!("{USAGE}");
                    return Ok(Parsed::Exit(0));
                }
                "-V" | "--version" => return Ok(Parsed::Exit(crate::version())),
                _ => return Err(format!("unknown option '{name}'")),
            },
        }
    }
    program.extend(p.rest());
    if program.is_empty() {
        return Err("no program given (usage: dnsfo run [options] [--] program [args...])".into());
    }
    Ok(Parsed::Run(o, program))
}

pub fn main(argv: Vec<OsString>) -> u8 {
    let (o, program) = match parse(argv) {
        Ok(Parsed::Run(o, prog)) => (o, prog),
        Ok(Parsed::Exit(code)) => return code,
        Err(msg) => {
            eprintln!("dnsfo run: {msg} (try 'dnsfo run --help')");
            return 2;
        }
    };
    let prog = &program[0];
    // The program: fail clearly before touching the library.
    let path = if prog.as_bytes().contains(&b'/') {
        let p = PathBuf::from(prog);
        if !p.exists() {
            eprintln!("dnsfo run: {}: no such file", p.display());
            return 127;
        }
        if !p.is_file() || !crate::which::executable(&p) {
            eprintln!("dnsfo run: {}: not an executable file", p.display());
            return 126;
        }
        p
    } else {
        match crate::which::which(prog) {
            Some(p) => p,
            None => {
                eprintln!(
                    "dnsfo run: {}: command not found on PATH",
                    prog.to_string_lossy()
                );
                return 127;
            }
        }
    };
    let settings = settings(&o);
    if let Some(why) = supervisor_wanted(&o, &path) {
        if let Some(why) = why.filter(|_| !o.quiet) {
            eprintln!(
                "dnsfo: {} {why}: supervising its connects from outside the process (seccomp) instead of LD_PRELOAD.",
                path.display()
            );
        }
        for (k, v) in &settings {
            std::env::set_var(k, v);
        }
        return dnsfo_supervise::supervise(&program);
    }
    let lib = match find_lib() {
        Ok(l) => l,
        Err(msg) => {
            eprintln!("dnsfo run: {msg}");
            return 125;
        }
    };
    if !o.quiet {
        let w = unreachable_warning(&path).or_else(|| clears_environment(&path, &program[1..]));
        if let Some(w) = w {
            let st = Style::for_fd(2);
            eprintln!(
                "dnsfo: {} {w}; running it anyway, without failover.",
                st.yellow("warning:")
            );
        }
    }

    let mut cmd = Command::new(prog);
    cmd.args(&program[1..]);
    cmd.env(
        "LD_PRELOAD",
        appended_preload(std::env::var_os("LD_PRELOAD"), &lib),
    );
    cmd.envs(settings);
    let err = cmd.exec();
    let code = match err.raw_os_error() {
        Some(libc::ENOENT) => 127,
        _ => 126,
    };
    eprintln!("dnsfo run: {}: {err}", path.display());
    code
}

/// The `DNSFO_*` variables the options ask for.
fn settings(o: &Opts) -> Vec<(&'static str, OsString)> {
    let mut v: Vec<(&'static str, OsString)> = Vec::new();
    let mut ms = |k, x: Option<u64>| {
        if let Some(x) = x {
            v.push((k, x.to_string().into()));
        }
    };
    ms("DNSFO_ATTEMPT_DELAY_MS", o.attempt_delay);
    ms("DNSFO_CONNECT_TIMEOUT_MS", o.timeout);
    ms("DNSFO_DEAD_TTL_MS", o.dead_ttl);
    if o.disable {
        v.push(("DNSFO_DISABLE", "1".into()));
    }
    let log_level_set = std::env::var_os("DNSFO_LOG").is_some_and(|v| !v.is_empty());
    if o.verbose || (o.log_file.is_some() && !log_level_set) {
        v.push(("DNSFO_LOG", "debug".into()));
    }
    if let Some(f) = &o.log_file {
        // Absolute, so a program that changes directory still writes to the same file.
        let abs = std::path::absolute(f).unwrap_or_else(|_| PathBuf::from(f));
        v.push(("DNSFO_LOG_FILE", abs.into()));
    }
    v
}

/// Should the program run under the supervisor (`dnsfo_supervise`) rather than with the
/// library? `Some(Some(why))`: yes, chosen because LD_PRELOAD cannot reach it (said on stderr);
/// `Some(None)`: yes, asked for. Never for a set-user-ID program (the supervisor's
/// `no_new_privs` would take its privileges), nor where the kernel cannot.
fn supervisor_wanted(o: &Opts, path: &Path) -> Option<Option<&'static str>> {
    if o.disable || o.supervise == Some(false) {
        return None;
    }
    let why = match o.supervise {
        Some(true) => None,
        _ => Some(supervised_kind(path)?),
    };
    if let Some(secure) = secure_execution(path) {
        if !o.quiet {
            eprintln!(
                "dnsfo: {} {secure}; no supervisor either (it would lose its privileges).",
                path.display()
            );
        }
        return None;
    }
    if let Err(e) = dnsfo_supervise::available() {
        if !o.quiet {
            eprintln!("dnsfo: cannot supervise {}: {e}.", path.display());
        }
        return None;
    }
    Some(why)
}

/// What makes the program one the library cannot reach but the supervisor can: statically
/// linked, or Go.
fn supervised_kind(path: &Path) -> Option<&'static str> {
    match elf::inspect(path).ok()? {
        Kind::Elf(e) if e.go => Some("is a Go program"),
        Kind::Elf(e) if !e.interp => Some("is statically linked"),
        _ => None,
    }
}

/// Does the program (`env -i`, `sudo`) start the real one without the environment dnsfo is in?
/// Then that one gets neither `LD_PRELOAD` nor the `DNSFO_*` settings.
fn clears_environment(path: &Path, args: &[OsString]) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let arg = |a: &OsString| a.to_str().unwrap_or("").to_string();
    match name {
        "env" => {
            let mut clears = false;
            for a in args.iter().map(arg) {
                match a.as_str() {
                    "-i" | "--ignore-environment" | "-" => clears = true,
                    s if s.starts_with("LD_PRELOAD=") => return None,
                    s if s.starts_with('-') && !s.starts_with("--") && s[1..].contains('i') => {
                        clears = true
                    }
                    s if s.contains('=') || s.starts_with('-') => {}
                    _ => break, // the command env runs
                }
            }
            clears.then(|| {
                "env -i clears the environment: the program it starts gets no LD_PRELOAD and no DNSFO_* (put LD_PRELOAD=... after -i, or run dnsfo inside it)".to_string()
            })
        }
        "sudo" | "doas" => Some(format!(
            "{name} removes LD_PRELOAD from the environment of the program it starts (run dnsfo inside it: {name} dnsfo run -- ...)"
        )),
        _ => None,
    }
}

/// Why `LD_PRELOAD` cannot reach the program at `path`, if it cannot.
pub fn unreachable_warning(path: &Path) -> Option<String> {
    let shown = path.display();
    if let Some(why) = secure_execution(path) {
        return Some(format!("{shown} {why}"));
    }
    match elf::inspect(path).ok()? {
        Kind::Elf(e) => verdict(&e).map(|why| format!("{shown} {why}")),
        Kind::Script(Some(interp)) => match elf::inspect(&interp).ok()? {
            Kind::Elf(e) => verdict(&e).map(|why| {
                format!(
                    "{shown} is a script whose interpreter {} {why}",
                    interp.display()
                )
            }),
            _ => None,
        },
        Kind::Script(None) | Kind::Other => None,
    }
}

/// Would executing `path` from this process be a secure execution (set-user-ID or set-group-ID
/// to someone else)? The dynamic loader then ignores `LD_PRELOAD` for libraries outside the
/// system directories, and the library's environment settings, so dnsfo is not in it.
fn secure_execution(path: &Path) -> Option<&'static str> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    if on_nosuid_mount(path) {
        return None; // the kernel ignores the bits there
    }
    // SAFETY: geteuid and getegid have no preconditions.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if m.mode() & libc::S_ISUID != 0 && m.uid() != euid {
        Some(
            "is set-user-ID: the dynamic loader ignores LD_PRELOAD for it (secure execution),              so libdnsfo.so will not be in the process",
        )
    } else if m.mode() & libc::S_ISGID != 0 && m.gid() != egid {
        Some(
            "is set-group-ID: the dynamic loader ignores LD_PRELOAD for it (secure execution),              so libdnsfo.so will not be in the process",
        )
    } else {
        None
    }
}

/// Is `path` on a file system mounted `nosuid`?
fn on_nosuid_mount(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statvfs is plain old data; all-zero is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` is ours to fill.
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    r == 0 && st.f_flag & libc::ST_NOSUID != 0
}

fn verdict(e: &elf::Elf) -> Option<&'static str> {
    if e.go {
        Some(
            "is a Go program: Go resolves names and connects with its own code (raw system \
             calls), which libdnsfo.so cannot see",
        )
    } else if !e.interp {
        Some(
            "is statically linked: no dynamic loader runs, so LD_PRELOAD cannot load \
             libdnsfo.so into it",
        )
    } else {
        None
    }
}

/// Where `libdnsfo.so` is, or why it cannot be found.
pub fn find_lib() -> Result<PathBuf, String> {
    if let Some(l) = std::env::var_os("DNSFO_LIB").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(&l);
        if !p.is_file() {
            return Err(format!("DNSFO_LIB={}: no such file", p.display()));
        }
        return check_lib_path(std::fs::canonicalize(&p).unwrap_or(p));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate myself: {e}"))?;
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let prefix = dir.parent().unwrap_or(Path::new("/"));
    let mut candidates = vec![
        prefix.join("lib/dnsfo/libdnsfo.so"),
        prefix.join("lib/libdnsfo.so"),
    ];
    // A cargo target directory (target/<profile>/dnsfo): the library is built beside the binary;
    // a debug binary also accepts the release library.
    if dir.join("deps").is_dir() {
        candidates.push(dir.join("libdnsfo.so"));
        candidates.push(prefix.join("release/libdnsfo.so"));
    }
    for c in &candidates {
        if c.is_file() {
            return check_lib_path(std::fs::canonicalize(c).unwrap_or_else(|_| c.clone()));
        }
    }
    let looked: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
    let fix = if dir.join("deps").is_dir() {
        "build it with 'cargo build --release'"
    } else {
        "install dnsfo with its library (make install: bin/ and lib/dnsfo/ side by side)"
    };
    Err(format!(
        "libdnsfo.so not found (looked at {}); set DNSFO_LIB, or {fix}",
        looked.join(", ")
    ))
}

fn check_lib_path(p: PathBuf) -> Result<PathBuf, String> {
    if p.as_os_str()
        .as_bytes()
        .iter()
        .any(|b| b.is_ascii_whitespace() || *b == b':')
    {
        return Err(format!(
            "library path '{}' contains a space or ':', which LD_PRELOAD cannot express; set DNSFO_LIB to another path",
            p.display()
        ));
    }
    Ok(p)
}

/// `LD_PRELOAD`'s entries, separated by spaces or colons as the loader reads them.
pub fn preload_entries(v: &OsStr) -> impl Iterator<Item = &[u8]> {
    v.as_bytes()
        .split(|b| matches!(b, b' ' | b'\t' | b':'))
        .filter(|e| !e.is_empty())
}

/// Is this `LD_PRELOAD` entry `lib`: the same path, or an absolute one that resolves to it?
pub fn is_preload_of(entry: &[u8], lib: &Path) -> bool {
    let e = Path::new(OsStr::from_bytes(entry));
    e == lib || (e.is_absolute() && std::fs::canonicalize(e).is_ok_and(|c| c == lib))
}

/// `LD_PRELOAD` with `lib` appended, unless it is already there.
pub fn appended_preload(current: Option<OsString>, lib: &Path) -> OsString {
    let current = current.unwrap_or_default();
    let already = preload_entries(&current).any(|e| is_preload_of(e, lib));
    if already {
        return current;
    }
    let mut out = current.into_vec();
    if !out.is_empty() {
        out.push(b' ');
    }
    out.extend_from_slice(lib.as_os_str().as_bytes());
    OsString::from_vec(out)
}

/// `check` and `demo` must see the network as a plain program does: if `libdnsfo.so` is
/// preloaded into this process, re-execute without it (once: the new process has none); if the
/// library is in the process all the same (`/etc/ld.so.preload`, another file name), it is told
/// to pass everything through.
pub fn without_own_library() {
    drop_own_preload();
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name; null when no such symbol.
    let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"dnsfo_pass_through".as_ptr()) };
    if !f.is_null() {
        // SAFETY: the symbol is libdnsfo's `extern "C" fn()` (src/hooks/control.rs).
        let f: extern "C" fn() = unsafe { std::mem::transmute(f) };
        f();
    }
}

fn drop_own_preload() {
    let Some(current) = std::env::var_os("LD_PRELOAD") else {
        return;
    };
    let entries: Vec<&[u8]> = preload_entries(&current).collect();
    let is_ours =
        |e: &[u8]| Path::new(OsStr::from_bytes(e)).file_name() == Some(OsStr::new("libdnsfo.so"));
    if !entries.iter().any(|e| is_ours(e)) {
        return;
    }
    let kept: Vec<&[u8]> = entries.into_iter().filter(|e| !is_ours(e)).collect();
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0(std::env::args_os().next().unwrap_or_else(|| "dnsfo".into()));
    cmd.args(std::env::args_os().skip(1));
    if kept.is_empty() {
        cmd.env_remove("LD_PRELOAD");
    } else {
        cmd.env("LD_PRELOAD", OsStr::from_bytes(&kept.join(&b' ')));
    }
    let _ = cmd.exec(); // on failure: carry on with the library loaded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cleared_environment_is_noticed() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        let env = Path::new("/usr/bin/env");
        assert!(clears_environment(env, &args(&["-i", "prog"])).is_some());
        assert!(clears_environment(env, &args(&["-iu", "X", "prog"])).is_some());
        assert!(clears_environment(env, &args(&["--ignore-environment", "A=1", "prog"])).is_some());
        assert!(clears_environment(env, &args(&["-i", "LD_PRELOAD=/x.so", "prog"])).is_none());
        assert!(clears_environment(env, &args(&["A=1", "prog", "-i"])).is_none());
        assert!(clears_environment(env, &args(&["--unset=X", "prog"])).is_none());
        assert!(clears_environment(Path::new("/usr/bin/sudo"), &args(&["prog"])).is_some());
        assert!(clears_environment(Path::new("/usr/bin/python3"), &args(&["-i"])).is_none());
    }

    #[test]
    fn preload_is_appended_once() {
        let lib = Path::new("/opt/x/libdnsfo.so");
        assert_eq!(appended_preload(None, lib), "/opt/x/libdnsfo.so");
        assert_eq!(appended_preload(Some("".into()), lib), "/opt/x/libdnsfo.so");
        assert_eq!(
            appended_preload(Some("/a.so".into()), lib),
            "/a.so /opt/x/libdnsfo.so"
        );
        assert_eq!(
            appended_preload(Some("/a.so:/opt/x/libdnsfo.so".into()), lib),
            "/a.so:/opt/x/libdnsfo.so"
        );
    }

    #[test]
    fn options() {
        let v = |a: &[&str]| parse(a.iter().map(OsString::from).collect());
        let Ok(Parsed::Run(o, prog)) =
            v(&["--timeout=5", "--attempt-delay", "7", "-v", "ls", "-l"])
        else {
            panic!()
        };
        assert_eq!(
            (o.timeout, o.attempt_delay, o.verbose),
            (Some(5), Some(7), true)
        );
        assert_eq!(prog, vec![OsString::from("ls"), OsString::from("-l")]);
        let Ok(Parsed::Run(_, prog)) = v(&["--", "-x"]) else {
            panic!()
        };
        assert_eq!(prog, vec![OsString::from("-x")]);
        assert!(v(&[]).is_err());
        assert!(v(&["--bogus", "ls"]).is_err());
        assert!(v(&["--timeout", "x", "ls"]).is_err());
        assert!(v(&["--verbose=1", "ls"]).is_err());
        assert!(v(&["--log-file="]).is_err());
    }
}
