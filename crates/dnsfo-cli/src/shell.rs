//! `dnsfo on | off | status` for the current shell (printed for `eval`, as `. torsocks on`
//! does) and `dnsfo env` (the lines a service manager or a container needs).
//!
//! Owns: the text those print. Must never: change anything itself (a child process cannot
//! change its shell's environment; the shell evaluates what is printed).

use crate::run;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

pub const USAGE: &str = "\
Usage: eval \"$(dnsfo on)\"      turn dnsfo on for this shell and what it starts
       eval \"$(dnsfo off)\"     turn it off again
       dnsfo status            say whether it is on in this environment
       dnsfo env [--systemd | --docker]
                               the environment lines that put dnsfo in a service:
                               KEY=VALUE (an EnvironmentFile, docker --env-file),
                               Environment=KEY=VALUE (a systemd unit or drop-in),
                               ENV KEY=VALUE (a Dockerfile)

'on' appends libdnsfo.so to LD_PRELOAD (once), 'off' removes it and leaves the rest of
LD_PRELOAD as it was. Programs already running are not changed: restart them.

Exit status: 0; for status, 0 when on and 1 when off; 2 usage error; 125 library not found.
";

/// Single-quoted for a POSIX shell.
fn quoted(v: &OsStr) -> String {
    format!("'{}'", v.to_string_lossy().replace('\'', r"'\''"))
}

/// `LD_PRELOAD` without `lib`, the other entries as they were.
fn without(current: &OsStr, lib: &Path) -> OsString {
    let kept: Vec<&[u8]> = run::preload_entries(current)
        .filter(|e| !run::is_preload_of(e, lib))
        .collect();
    OsString::from_vec(kept.join(&b' '))
}

fn has(current: &OsStr, lib: &Path) -> bool {
    run::preload_entries(current).any(|e| run::is_preload_of(e, lib))
}

pub fn main(cmd: &str, argv: Vec<OsString>) -> u8 {
    if argv.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return 0;
    }
    let format = match (cmd, argv.as_slice()) {
        ("env", []) => "",
        ("env", [f]) if f == "--systemd" => "Environment=",
        ("env", [f]) if f == "--docker" => "ENV ",
        ("on" | "off" | "status", []) => "",
        _ => {
            eprintln!("dnsfo {cmd}: unexpected arguments (try 'dnsfo {cmd} --help')");
            return 2;
        }
    };
    let lib = match run::find_lib() {
        Ok(l) => l,
        Err(msg) => {
            eprintln!("dnsfo {cmd}: {msg}");
            return 125;
        }
    };
    let current = std::env::var_os("LD_PRELOAD").unwrap_or_default();
    match cmd {
        "on" => {
            let new = run::appended_preload(Some(current), &lib);
            println!("export LD_PRELOAD={}", quoted(&new));
            0
        }
        "off" => {
            let rest = without(&current, &lib);
            if rest.is_empty() {
                println!("unset LD_PRELOAD");
            } else {
                println!("export LD_PRELOAD={}", quoted(&rest));
            }
            0
        }
        "status" => {
            if has(&current, &lib) {
                println!("dnsfo is on: LD_PRELOAD has {}", lib.display());
                0
            } else {
                println!("dnsfo is off: LD_PRELOAD does not have {}", lib.display());
                1
            }
        }
        _ => {
            println!("{format}LD_PRELOAD={}", lib.display());
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_removal() {
        assert_eq!(quoted(OsStr::new("a b")), "'a b'");
        assert_eq!(quoted(OsStr::new("it's")), r"'it'\''s'");
        let lib = Path::new("/opt/dnsfo/lib/libdnsfo.so");
        let cur = OsStr::new("/x/a.so /opt/dnsfo/lib/libdnsfo.so:/y/b.so");
        assert_eq!(without(cur, lib), OsString::from("/x/a.so /y/b.so"));
        assert!(has(cur, lib));
        assert!(!has(OsStr::new("/x/a.so"), lib));
        assert!(!has(OsStr::new(""), lib));
        assert_eq!(
            without(OsStr::new("/opt/dnsfo/lib/libdnsfo.so"), lib),
            OsString::new()
        );
    }
}
