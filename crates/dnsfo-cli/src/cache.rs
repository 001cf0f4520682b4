//! `dnsfo cache list|flush [NAME]`: what the shared winner cache holds, and emptying it (after an
//! outage, so that no process starts at a winner that has since died).
//!
//! Owns: the command. Must never: read or write a cache directory or file the library would not
//! trust (it opens them through `dnsfo_os::cachefile`, as the library does).

use crate::args::{Item, Parser};
use dnsfo_core::cache::{now_ms, Kind};
use dnsfo_core::config::Config;
use dnsfo_os::cachefile::Cache;
use std::ffi::OsString;
use std::path::PathBuf;

pub const USAGE: &str = "\
Usage: dnsfo cache list
       dnsfo cache flush [NAME]

The shared winner cache (DNSFO_CACHE_DIR, else $XDG_RUNTIME_DIR/dnsfo, else ~/.cache/dnsfo), as
the library reads it: a line per (name, port) with the address that won its last failover, the
addresses found dead then, and measured round trips, each with the time it has left.

  list          print the live entries: NAME PORT ADDRESS KIND EXPIRES_IN
  flush [NAME]  remove every entry, or NAME's (restart-free: a process reads the file again
                when it changes)

Options:
  -h, --help    show this help and exit

Exit status: 0 done; 1 the cache is off, missing or not trusted (nothing read or written);
2 usage error.
";

/// Why there is no cache to read, as the library would find it.
pub enum Unusable {
    /// `DNSFO_CACHE=0`.
    Disabled,
    /// No directory to be had: neither `DNSFO_CACHE_DIR`, nor HOME or XDG_RUNTIME_DIR.
    NoDirectory,
    /// The directory does not exist (yet).
    Missing(PathBuf),
    /// Not the user's own private directory: the library does not use it.
    Untrusted(PathBuf),
}

/// The cache this environment's settings point the library at (`config`: read from it), opened
/// through the library's own trust checks; never created here.
pub fn open_as_the_library(config: &Config) -> Result<Cache, Unusable> {
    let dir: PathBuf = match &config.cache_dir {
        Some(d) => d.clone(),
        None if config.cache_disabled => return Err(Unusable::Disabled),
        None => return Err(Unusable::NoDirectory),
    };
    if std::fs::symlink_metadata(&dir).is_err() {
        return Err(Unusable::Missing(dir));
    }
    Cache::open(&dir).ok_or(Unusable::Untrusted(dir))
}

/// The cache, or why there is none, in words.
fn open() -> Result<Cache, String> {
    let (config, warnings) = dnsfo_os::conffile::config(false, |k| std::env::var_os(k));
    for w in warnings {
        eprintln!("{w}");
    }
    open_as_the_library(&config).map_err(|why| match why {
        Unusable::Disabled => "the cache is off (DNSFO_CACHE=0)".to_string(),
        Unusable::NoDirectory => "no cache directory (no HOME or XDG_RUNTIME_DIR)".to_string(),
        Unusable::Missing(dir) => format!("{}: no cache there (yet)", dir.display()),
        Unusable::Untrusted(dir) => format!(
            "{}: not the user's own private directory; the library does not use it either",
            dir.display()
        ),
    })
}

pub fn main(argv: Vec<OsString>) -> u8 {
    let mut p = Parser::new(argv);
    let mut words: Vec<String> = Vec::new();
    while let Some(item) = p.next_item() {
        match item {
            Item::End => {
                words.extend(
                    p.rest()
                        .into_iter()
                        .map(|a| a.to_string_lossy().into_owned()),
                );
                break;
            }
            Item::Pos(a) => words.push(a.to_string_lossy().into_owned()),
            Item::Opt { name, .. } if name == "-h" || name == "--help" => {
                print!("{USAGE}");
                return 0;
            }
            Item::Opt { name, .. } => {
                eprintln!("dnsfo cache: unknown option '{name}' (try 'dnsfo cache --help')");
                return 2;
            }
        }
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let action = match words.as_slice() {
        ["list"] => None,
        ["flush"] => Some(None),
        ["flush", name] => Some(Some(*name)),
        _ => {
            eprintln!(
                "dnsfo cache: expected 'list', 'flush' or 'flush NAME' (try 'dnsfo cache --help')"
            );
            return 2;
        }
    };
    let cache = match open() {
        Ok(c) => c,
        Err(why) => {
            eprintln!("dnsfo cache: {why}");
            return 1;
        }
    };
    match action {
        None => {
            list(&cache);
            0
        }
        Some(name) => match cache.forget(name) {
            Ok(n) => {
                println!(
                    "dnsfo cache: removed {n} entr{} from {}",
                    if n == 1 { "y" } else { "ies" },
                    cache.dir().display()
                );
                0
            }
            Err(e) => {
                eprintln!("dnsfo cache: {}: {e}; not changed", cache.dir().display());
                1
            }
        },
    }
}

fn list(cache: &Cache) {
    let now = now_ms();
    for e in cache.load() {
        let kind = match e.kind {
            Kind::Winner => "winner".to_string(),
            Kind::Dead => "dead".to_string(),
            Kind::Rtt { srtt_us, var_us } => format!("rtt {srtt_us}us±{var_us}us"),
        };
        let left_s = e.expires_ms.saturating_sub(now).div_ceil(1000);
        println!("{} {} {} {kind} {left_s}s", e.name, e.port, e.ip);
    }
}
