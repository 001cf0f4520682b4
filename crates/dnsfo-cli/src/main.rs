//! `dnsfo`: the operator's command. `dnsfo run` starts a program with `libdnsfo.so` preloaded,
//! `dnsfo check` shows what dnsfo sees for a name, `dnsfo demo` shows the before/after.
//!
//! This binary must never link the library (the library exports `connect`, `close`, ... and would
//! hook the binary itself): it finds `libdnsfo.so` on disk for `run`, and shares only the pure core
//! (`dnsfo_core`: settings, planner, cache format) and the OS helpers (`dnsfo_os`: the cache
//! file), so `check` reads the settings and orders addresses exactly as the library does.
//!
//! Exit status: a subcommand's own (see each `--help`); 2 for a usage error at the top level.

mod args;
mod cache;
mod check;
mod demo;
mod elf;
mod live;
mod ns;
mod run;
mod shell;
mod term;
mod which;

use std::ffi::OsString;
use std::process::ExitCode;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

const USAGE: &str = "\
Usage: dnsfo <command> [options] [arguments]

DNS failover for programs you cannot change: a TCP connect to a dead address of a name with
several addresses lands on a live address of the same name.

Commands:
  run [options] [--] program [args...]
                        run PROGRAM with libdnsfo.so preloaded (like dnsfo-run)
  check [options] NAME[:PORT]
                        resolve NAME like the system, probe every address in parallel, show
                        which one dnsfo would pick and why
  demo [options]        before/after demonstration in a private network namespace
                        (nothing leaves this machine)
  cache list | flush [NAME]
                        show or empty the shared winner cache
  on | off | status     dnsfo for this shell: eval \"$(dnsfo on)\"
  env [--systemd | --docker]
                        the environment lines for a service or a container
  settings [--markdown | --man]
                        every DNSFO_* setting: unit, default, range, meaning
  help [command]        show the help of a command

Options:
  -h, --help            show this help and exit
  -V, --version         show the version (and the library's) and exit

Run 'dnsfo <command> --help' for a command's options. Settings are DNSFO_* environment variables
('dnsfo settings', 'man dnsfo'); 'dnsfo run' sets the common ones from its options.

Exit status: the command's own; 2 for a usage error.
";

fn main() -> ExitCode {
    let mut argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    if argv.is_empty() {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    }
    let cmd = argv.remove(0);
    let code = match cmd.to_str().unwrap_or("") {
        "run" => run::main(argv),
        "check" => {
            run::without_own_library();
            check::main(argv)
        }
        "demo" => {
            run::without_own_library();
            demo::main(argv)
        }
        "cache" => cache::main(argv),
        c @ ("on" | "off" | "status" | "env") => shell::main(c, argv),
        "settings" => settings(&argv),
        "help" => help(&argv),
        "-h" | "--help" => {
            print!("{USAGE}");
            0
        }
        "-V" | "--version" | "version" => version(),
        other => {
            eprintln!(
                "dnsfo: unknown command '{}' (commands: run, check, demo, cache, on, off, status, env, settings; try 'dnsfo --help')",
                if other.is_empty() {
                    cmd.to_string_lossy().into_owned()
                } else {
                    other.to_string()
                }
            );
            2
        }
    };
    ExitCode::from(code)
}

/// `dnsfo --version`: the command's version and the library's it would preload (read from the
/// library file: a mismatch after a half-done upgrade shows here).
pub fn version() -> u8 {
    println!("dnsfo {VERSION}");
    match run::find_lib() {
        Ok(lib) => match dnsfo_os::version::of_library(&lib) {
            Some(v) if v == VERSION => println!("library {} ({v})", lib.display()),
            Some(v) => println!(
                "library {} ({v}: not this command's {VERSION}; reinstall both)",
                lib.display()
            ),
            None => println!(
                "library {} (no version: not a dnsfo library?)",
                lib.display()
            ),
        },
        Err(msg) => println!("library: {msg}"),
    }
    0
}

const SETTINGS_USAGE: &str = "\
Usage: dnsfo settings [--markdown | --man | --man-conf]

Every DNSFO_* setting the library reads: unit, default, range and meaning. --markdown prints
README's table, --man dnsfo(1)'s paragraphs, --man-conf dnsfo.conf(5)'s (all printed from the
same table).
";

fn settings(args: &[OsString]) -> u8 {
    use dnsfo_core::settings;
    match args
        .iter()
        .map(|a| a.to_str().unwrap_or("?"))
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => print!("{}", settings::text()),
        ["--markdown"] => print!("{}", settings::markdown()),
        ["--man"] => print!("{}", settings::man()),
        ["--man-conf"] => print!("{}", settings::man_conf()),
        ["-h" | "--help"] => print!("{SETTINGS_USAGE}"),
        _ => {
            eprint!("dnsfo settings: unknown arguments\n{SETTINGS_USAGE}");
            return 2;
        }
    }
    0
}

fn help(args: &[OsString]) -> u8 {
    match args.first().and_then(|a| a.to_str()) {
        None => {
            print!("{USAGE}");
            0
        }
        Some("run") => {
            print!("{}", run::USAGE);
            0
        }
        Some("check") => {
            print!("{}", check::USAGE);
            0
        }
        Some("demo") => {
            print!("{}", demo::USAGE);
            0
        }
        Some("cache") => {
            print!("{}", cache::USAGE);
            0
        }
        Some("on" | "off" | "status" | "env") => {
            print!("{}", shell::USAGE);
            0
        }
        Some("settings") => {
            print!("{SETTINGS_USAGE}");
            0
        }
        Some(other) => {
            eprintln!("dnsfo help: unknown command '{other}' (commands: run, check, demo, cache, on, off, status, env, settings)");
            2
        }
    }
}
