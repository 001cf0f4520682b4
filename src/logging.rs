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
    // Lines from several processes in one DNSFO_LOG_FILE must be told apart and ordered: each
    // starts with the time and the program (its pid read per line: a fork child logs its own).
    let program = program_name();
    b.format(move |buf, r| {
        writeln!(
            buf,
            "{} {program}[{}] dnsfo {}: {}",
            rfc3339_millis(std::time::SystemTime::now()),
            std::process::id(),
            r.level(),
            r.args()
        )
    });
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

/// `2026-12-02T07:11:29.123Z` (UTC; days to a civil date as in Howard Hinnant's `civil_from_days`).
/// The program's name as log lines and stats label it: the file name of its `argv[0]`.
pub fn program_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "?".into())
}

fn rfc3339_millis(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339_millis;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rfc3339_utc() {
        let at =
            |s: u64, ms: u64| rfc3339_millis(UNIX_EPOCH + Duration::from_millis(s * 1000 + ms));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_796_195_489, 123), "2026-12-02T07:11:29.123Z");
        assert_eq!(at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z");
    }
}
