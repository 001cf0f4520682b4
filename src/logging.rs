//! Logger set-up: `env_logger` reading `DNSFO_LOG` (never `RUST_LOG`, which belongs to the host
//! program), writing to stderr or `DNSFO_LOG_FILE`.
//!
//! Owns: where diagnostics go, and the panic hook that keeps contained panics off the program's
//! stderr. Must never: write anything when `DNSFO_LOG` is unset (the program's fd 2 may be a
//! socket or a parser's pipe), or print to stdout.

use crate::config::Config;
use std::io::Write;

pub fn init(config: &Config) {
    // Contained panics are reported through the log only; the default hook would print to fd 2.
    std::panic::set_hook(Box::new(|info| {
        log::error!("internal error (contained): {info}")
    }));
    let Some(filter) = &config.log_filter else {
        return;
    };
    let mut b = env_logger::Builder::new();
    b.parse_filters(filter);
    let pid = std::process::id();
    b.format(move |buf, r| writeln!(buf, "dnsfo[{pid}] {}: {}", r.level(), r.args()));
    match &config.log_file {
        Some(path) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(f) => {
                b.target(env_logger::Target::Pipe(Box::new(f)));
            }
            Err(e) => {
                crate::sys::write_all(
                    2,
                    format!(
                        "dnsfo: cannot open DNSFO_LOG_FILE {path:?} ({e}); logging to stderr\n"
                    )
                    .as_bytes(),
                );
                b.target(env_logger::Target::Stderr);
            }
        },
        None => {
            b.target(env_logger::Target::Stderr);
        }
    }
    let _ = b.try_init();
}
