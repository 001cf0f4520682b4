//! `DNSFO_*` settings: parsed once, validated, with their defaults in one table.
//!
//! Owns: the meaning, unit, default and range of every variable. Must never: read the
//! environment after start-up, or refuse to run over a bad value (it warns once and uses the
//! default). Under secure execution (`AT_SECURE`, e.g. setuid) every variable is ignored.
//!
//! | variable | unit | default | range |
//! | --- | --- | --- | --- |
//! | `DNSFO_DISABLE` | bool | off | 1/0, true/false, yes/no, on/off |
//! | `DNSFO_ATTEMPT_DELAY_MS` | ms | 250, adaptive | 0..=60000 (0 = all addresses at once); set: fixed |
//! | `DNSFO_ADAPTIVE_DELAY` | bool | on unless `DNSFO_ATTEMPT_DELAY_MS` is set | delay from measured RTTs, at most the attempt delay |
//! | `DNSFO_MIN_ATTEMPT_DELAY_MS` | ms | 10 | 10..=2000 (RFC 8305: never under 10 ms) |
//! | `DNSFO_DEAD_TTL_MS` | ms | 30000 | 0..=86400000 |
//! | `DNSFO_CONNECT_TIMEOUT_MS` | ms | none | 0..=3600000 (0 = none) |
//! | `DNSFO_FAILOVER_BUDGET_MS` | ms | 2000 | 0..=3600000 |
//! | `DNSFO_LOG` | env_logger filter | nothing logged | e.g. `debug`, `dnsfo=trace` |
//! | `DNSFO_LOG_FILE` | path | stderr | file appended to |
//! | `DNSFO_STATS` | bool | off | 1 = one summary line at exit |
//! | `DNSFO_STATS_FILE` | absolute path (`%p` = pid) | none | Prometheus text, refreshed |
//! | `DNSFO_STATS_INTERVAL_MS` | ms | 5000 | 100..=3600000 |
//! | `DNSFO_CACHE` | bool | on | 0 = no shared winner cache |
//! | `DNSFO_CACHE_DIR` | absolute path | `$XDG_RUNTIME_DIR/dnsfo`, else `~/.cache/dnsfo` | |
//! | `DNSFO_NAMESERVER` | `IP` or `IP:PORT` | system `resolv.conf` | for re-resolution |

use crate::conffile::{self, FileText, NameRule};
pub use crate::settings::unknown_settings;
pub use crate::values::{parse_bool, parse_ms};
use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `DNSFO_DISABLE`: every hook passes straight through.
    pub disabled: bool,
    /// `DNSFO_ATTEMPT_DELAY_MS`: RFC 8305 "connection attempt delay"; with `adaptive`, its
    /// ceiling (and the delay for a name with no RTT history).
    pub attempt_delay: Duration,
    /// `DNSFO_ADAPTIVE_DELAY`: the delay follows the RTTs measured for the name
    /// (`plan::attempt_delay`). On by default; an explicit `DNSFO_ATTEMPT_DELAY_MS` means a fixed
    /// delay (what a user who sets one asks for) unless this is set too.
    pub adaptive: bool,
    /// `DNSFO_MIN_ATTEMPT_DELAY_MS`: the adaptive delay's floor.
    pub min_attempt_delay: Duration,
    /// `DNSFO_DEAD_TTL_MS`: how long a failed address is skipped (first failure; doubles after).
    pub dead_ttl: Duration,
    /// `DNSFO_CONNECT_TIMEOUT_MS`: cap on one whole connect.
    pub connect_timeout: Option<Duration>,
    /// `DNSFO_FAILOVER_BUDGET_MS`: once the address the program chose has failed, how much
    /// longer other addresses may take before the program gets that failure. The default, 2 s,
    /// is the least Go's dialer ever gives one address, and some 10 round trips of a
    /// far-away server: a live address answers well within it, a silent one never does.
    pub failover_budget: Duration,
    /// `DNSFO_LOG`: env_logger filter; `None` = write nothing at all.
    pub log_filter: Option<String>,
    /// `DNSFO_LOG_FILE`.
    pub log_file: Option<PathBuf>,
    /// `DNSFO_STATS`: a summary line at exit.
    pub stats: bool,
    /// `DNSFO_STATS_FILE`: where the counters are kept up to date (Prometheus text; `%p` in it
    /// stands for the process id).
    pub stats_file: Option<PathBuf>,
    /// `DNSFO_STATS_INTERVAL_MS`: how often the stats file is refreshed.
    pub stats_interval: Duration,
    /// `DNSFO_CACHE` and `DNSFO_CACHE_DIR`: where winners are shared (`None` = off).
    pub cache_dir: Option<PathBuf>,
    /// `DNSFO_CACHE` turned the cache off (`cache_dir` is then `None`).
    pub cache_disabled: bool,
    /// `DNSFO_NAMESERVER`: the server re-resolution asks (`None` = the system's).
    pub nameserver: Option<SocketAddr>,
    /// The config files' `[name ...]` sections.
    pub name_rules: Vec<NameRule>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            disabled: false,
            attempt_delay: Duration::from_millis(250),
            adaptive: true,
            min_attempt_delay: Duration::from_millis(10),
            dead_ttl: Duration::from_millis(30_000),
            connect_timeout: None,
            failover_budget: Duration::from_millis(2000),
            log_filter: None,
            log_file: None,
            stats: false,
            stats_file: None,
            stats_interval: Duration::from_millis(5000),
            cache_dir: None,
            cache_disabled: false,
            nameserver: None,
            name_rules: Vec::new(),
        }
    }
}

/// Is `v` an env_logger filter: comma-separated `LEVEL`, `MODULE` or `MODULE=LEVEL`? (env_logger
/// itself ignores what it cannot parse and may end up logging everything.)
fn is_log_filter(v: &str) -> bool {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let level = |l: &str| LEVELS.contains(&l.trim().to_ascii_lowercase().as_str());
    let module = |m: &str| {
        let m = m.trim();
        !m.is_empty()
            && m.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    v.split(',').all(|d| match d.split_once('=') {
        Some((m, l)) => module(m) && level(l),
        None => level(d) || module(d),
    })
}

impl Config {
    /// The settings from the config `files` (in order: system, user, `DNSFO_CONFIG`; a later
    /// one overrides an earlier) and the environment `env`, which overrides every file. A bad
    /// value from a file is warned about with its file and line.
    pub fn parse_all(
        env: impl Fn(&str) -> Option<OsString>,
        files: &[FileText],
    ) -> (Config, Vec<String>) {
        let collected = conffile::collect(files);
        let from_file = |name: &str| collected.get(name).filter(|_| env(name).is_none());
        let (mut c, warnings) = Config::parse_from(
            |k| env(k).or_else(|| from_file(k).map(|v| OsString::from(&v.text))),
            |k| from_file(k).map(|v| v.at.clone()),
        );
        let mut all = collected.warnings;
        all.extend(warnings);
        c.name_rules = collected.rules;
        (c, all)
    }

    /// The `[name ...]` rule for `name`, if any (exact before wildcard).
    pub fn rule_for(&self, name: &str) -> Option<&NameRule> {
        if self.name_rules.is_empty() {
            return None;
        }
        conffile::rule_for(&self.name_rules, &crate::registry::normal(name))
    }

    /// The attempt delay for `name` when it does not follow measured RTTs: a `[name ...]`
    /// rule's, or the configured one when the delay is not adaptive.
    pub fn fixed_delay(&self, name: &str) -> Option<Duration> {
        self.rule_for(name)
            .and_then(|r| r.attempt_delay)
            .or((!self.adaptive).then_some(self.attempt_delay))
    }

    /// Does a config file tell dnsfo to leave `name` alone?
    pub fn excluded(&self, name: &str) -> bool {
        self.rule_for(name).is_some_and(|r| r.exclude)
    }

    /// Parses the settings from `get` (the environment in production). Returns the config and
    /// one warning line per bad value.
    pub fn parse(get: impl Fn(&str) -> Option<OsString>) -> (Config, Vec<String>) {
        Config::parse_from(get, |_| None)
    }

    /// [`Config::parse`], where `origin` says which values came from a config file (its
    /// `file:line`), for the warnings to name.
    fn parse_from(
        get: impl Fn(&str) -> Option<OsString>,
        origin: impl Fn(&str) -> Option<String>,
    ) -> (Config, Vec<String>) {
        let lead = |name: &str| match origin(name) {
            Some(at) => format!("dnsfo: {at}: "),
            None => "dnsfo: ".to_string(),
        };
        let mut c = Config::default();
        let mut warnings = Vec::new();
        let mut text = |name: &str| -> Option<String> {
            let raw = get(name)?;
            match raw.into_string() {
                Ok(s) => Some(s),
                Err(_) => {
                    warnings.push(format!(
                        "{}{name} is not valid UTF-8; using the default",
                        lead(name)
                    ));
                    None
                }
            }
        };
        let disable = text("DNSFO_DISABLE");
        let stats = text("DNSFO_STATS");
        let stats_file = text("DNSFO_STATS_FILE");
        let stats_interval = text("DNSFO_STATS_INTERVAL_MS");
        let cache = text("DNSFO_CACHE");
        let cache_dir = text("DNSFO_CACHE_DIR");
        let nameserver = text("DNSFO_NAMESERVER");
        let home = crate::cache::default_dir(&get);
        let delay = text("DNSFO_ATTEMPT_DELAY_MS");
        let adaptive = text("DNSFO_ADAPTIVE_DELAY");
        let min_delay = text("DNSFO_MIN_ATTEMPT_DELAY_MS");
        // An explicit delay is a fixed one unless adaptivity is asked for as well.
        c.adaptive = delay.is_none();
        let ttl = text("DNSFO_DEAD_TTL_MS");
        let timeout = text("DNSFO_CONNECT_TIMEOUT_MS");
        let budget = text("DNSFO_FAILOVER_BUDGET_MS");
        let log = text("DNSFO_LOG").filter(|s| !s.trim().is_empty());
        c.log_file = text("DNSFO_LOG_FILE")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);

        let mut cache_on = true;
        for (name, v, field, default) in [
            ("DNSFO_DISABLE", disable, &mut c.disabled, "0"),
            ("DNSFO_STATS", stats, &mut c.stats, "0"),
            ("DNSFO_CACHE", cache, &mut cache_on, "1"),
            (
                "DNSFO_ADAPTIVE_DELAY",
                adaptive,
                &mut c.adaptive,
                "the default",
            ),
        ] {
            if let Some(v) = v {
                match parse_bool(&v) {
                    Some(b) => *field = b,
                    None => warnings.push(format!(
                        "{}{name}={v:?} is not one of 1/0, true/false, yes/no, on/off; using {default}",
                        lead(name)
                    )),
                }
            }
        }
        match log {
            Some(f) if is_log_filter(&f) => c.log_filter = Some(f),
            Some(f) => warnings.push(format!(
                "{}DNSFO_LOG={f:?} is not a log filter (a level such as debug, or module=level, comma-separated); logging stays off",
                lead("DNSFO_LOG")
            )),
            None => {}
        }
        let mut ms = |name: &str, v: Option<String>, max: u64, default: u64| -> Option<u64> {
            let v = v?;
            let parsed = parse_ms(&v, max);
            if parsed.is_none() {
                warnings.push(format!(
                    "{}{name}={v:?} is not a whole number of milliseconds in 0..={max}; using {default}",
                    lead(name)
                ));
            }
            parsed
        };
        if let Some(n) = ms("DNSFO_ATTEMPT_DELAY_MS", delay, 60_000, 250) {
            c.attempt_delay = Duration::from_millis(n);
        }
        let min_ms = ms("DNSFO_MIN_ATTEMPT_DELAY_MS", min_delay.clone(), 2000, 10);
        if let Some(n) = ms("DNSFO_DEAD_TTL_MS", ttl, 86_400_000, 30_000) {
            c.dead_ttl = Duration::from_millis(n);
        }
        if let Some(n) = ms("DNSFO_CONNECT_TIMEOUT_MS", timeout, 3_600_000, 0) {
            c.connect_timeout = (n > 0).then(|| Duration::from_millis(n));
        }
        if let Some(n) = ms("DNSFO_FAILOVER_BUDGET_MS", budget, 3_600_000, 2000) {
            c.failover_budget = Duration::from_millis(n);
        }
        match ms(
            "DNSFO_STATS_INTERVAL_MS",
            stats_interval.clone(),
            3_600_000,
            5000,
        ) {
            Some(n) if n >= 100 => c.stats_interval = Duration::from_millis(n),
            Some(_) => warnings.push(format!(
                "{}DNSFO_STATS_INTERVAL_MS={:?} is under 100 ms; using 5000",
                lead("DNSFO_STATS_INTERVAL_MS"),
                stats_interval.unwrap_or_default()
            )),
            None => {}
        }
        match stats_file.filter(|f| !f.is_empty()) {
            Some(f) if f.starts_with('/') => c.stats_file = Some(PathBuf::from(f)),
            Some(f) => warnings.push(format!(
                "{}DNSFO_STATS_FILE={f:?} is not an absolute path; no stats file",
                lead("DNSFO_STATS_FILE")
            )),
            None => {}
        }
        match min_ms {
            Some(n) if n >= 10 => c.min_attempt_delay = Duration::from_millis(n),
            Some(_) => warnings.push(format!(
                "{}DNSFO_MIN_ATTEMPT_DELAY_MS={:?} is under 10 ms (RFC 8305's least); using 10",
                lead("DNSFO_MIN_ATTEMPT_DELAY_MS"),
                min_delay.unwrap_or_default()
            )),
            None => {}
        }
        c.cache_dir = match cache_dir.filter(|d| !d.is_empty()) {
            Some(d) if d.starts_with('/') => Some(PathBuf::from(d)),
            Some(d) => {
                warnings.push(format!(
                    "{}DNSFO_CACHE_DIR={d:?} is not an absolute path; using the default",
                    lead("DNSFO_CACHE_DIR")
                ));
                home
            }
            None => home,
        };
        if !cache_on {
            c.cache_dir = None;
            c.cache_disabled = true;
        }
        if let Some(ns) = nameserver.filter(|n| !n.trim().is_empty()) {
            let ns = ns.trim();
            let parsed = ns
                .parse::<SocketAddr>()
                .ok()
                .or_else(|| ns.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)));
            match parsed {
                Some(a) => c.nameserver = Some(a),
                None => warnings.push(format!(
                    "{}DNSFO_NAMESERVER={ns:?} is not an IP address or IP:PORT; using the system's resolver",
                    lead("DNSFO_NAMESERVER")
                )),
            }
        }
        (c, warnings)
    }
}

impl std::fmt::Display for Config {
    /// One readable line of the settings in force (for the debug log at start-up).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_millis();
        if self.disabled {
            return write!(f, "disabled (DNSFO_DISABLE)");
        }
        write!(f, "attempt delay {} ms", ms(self.attempt_delay))?;
        if self.adaptive {
            write!(
                f,
                " (adaptive, from measured RTTs, at least {} ms)",
                ms(self.min_attempt_delay)
            )?;
        } else {
            write!(f, " (fixed)")?;
        }
        write!(
            f,
            ", dead addresses skipped {} s, failover budget {} ms, connect timeout ",
            self.dead_ttl.as_secs_f64(),
            ms(self.failover_budget)
        )?;
        match self.connect_timeout {
            Some(t) => write!(f, "{} ms", ms(t))?,
            None => write!(f, "none")?,
        }
        match &self.cache_dir {
            Some(d) => write!(f, ", shared cache {}", d.display())?,
            None => write!(f, ", shared cache off")?,
        }
        match self.nameserver {
            Some(n) => write!(f, ", re-resolution asks {n}")?,
            None => write!(f, ", re-resolution asks the system's servers")?,
        }
        if self.stats {
            write!(f, ", stats at exit")?;
        }
        if !self.name_rules.is_empty() {
            write!(f, ", {} per-name rule(s)", self.name_rules.len())?;
        }
        if let Some(p) = &self.stats_file {
            write!(
                f,
                ", stats file {} every {} ms",
                p.display(),
                ms(self.stats_interval)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parser asks for exactly the settings of the one table (`settings::SETTINGS`), which
    /// README and the man page print: none undocumented, none documented but never read.
    #[test]
    fn reads_exactly_the_settings_of_the_table() {
        let asked = std::cell::RefCell::new(Vec::new());
        let _ = Config::parse(|k| {
            asked.borrow_mut().push(k.to_string());
            None
        });
        let mut asked: Vec<String> = asked
            .into_inner()
            .into_iter()
            .filter(|k| k.starts_with("DNSFO_"))
            .collect();
        asked.sort();
        asked.dedup();
        // DNSFO_CONFIG names a file: read by the file loader (dnsfo_os::conffile), not here.
        let mut table: Vec<String> = crate::settings::names()
            .filter(|n| *n != "DNSFO_CONFIG")
            .map(String::from)
            .collect();
        table.sort();
        assert_eq!(asked, table);
    }

    #[test]
    fn environment_over_files_over_defaults_and_file_warnings_say_where() {
        let files = [
            FileText {
                origin: "/etc/dnsfo.conf".into(),
                text: "attempt_delay_ms = 100\nfailover_budget_ms = 900\ndead_ttl_ms = soon\n"
                    .into(),
            },
            FileText {
                origin: "/home/u/.config/dnsfo/config".into(),
                text: "attempt_delay_ms = 40\n[name slow.test]\nattempt_delay_ms = 600\n".into(),
            },
        ];
        let (c, w) = Config::parse_all(|_| None, &files);
        assert_eq!(
            c.attempt_delay,
            Duration::from_millis(40),
            "the user file wins"
        );
        assert!(
            !c.adaptive,
            "a delay set in a file is a fixed one, as from the environment"
        );
        assert_eq!(c.failover_budget, Duration::from_millis(900));
        assert_eq!(
            c.dead_ttl,
            Duration::from_millis(30_000),
            "a bad value: the default"
        );
        assert_eq!(
            w,
            vec!["dnsfo: /etc/dnsfo.conf:3: DNSFO_DEAD_TTL_MS=\"soon\" is not a whole number of milliseconds in 0..=86400000; using 30000".to_string()]
        );
        assert_eq!(
            c.rule_for("SLOW.test.").and_then(|r| r.attempt_delay),
            Some(Duration::from_millis(600))
        );
        let env = |k: &str| (k == "DNSFO_ATTEMPT_DELAY_MS").then(|| OsString::from("250"));
        let (c, w) = Config::parse_all(env, &files);
        assert_eq!(
            c.attempt_delay,
            Duration::from_millis(250),
            "the environment wins"
        );
        assert_eq!(w.len(), 1);
        // A bad value in the environment is the environment's, even when a file has one too.
        let env = |k: &str| (k == "DNSFO_FAILOVER_BUDGET_MS").then(|| OsString::from("x"));
        let (c, w) = Config::parse_all(env, &files);
        assert_eq!(c.failover_budget, Duration::from_millis(2000));
        assert!(
            w.iter()
                .any(|l| l.starts_with("dnsfo: DNSFO_FAILOVER_BUDGET_MS=\"x\"")),
            "{w:?}"
        );
    }

    #[test]
    fn stats_file_and_interval() {
        let (c, w) = Config::parse(|k| match k {
            "DNSFO_STATS_FILE" => Some("/run/dnsfo-%p.prom".into()),
            "DNSFO_STATS_INTERVAL_MS" => Some("1000".into()),
            _ => None,
        });
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.stats_file, Some(PathBuf::from("/run/dnsfo-%p.prom")));
        assert_eq!(c.stats_interval, Duration::from_millis(1000));
        let (c, w) = Config::parse(|k| match k {
            "DNSFO_STATS_FILE" => Some("relative.prom".into()),
            "DNSFO_STATS_INTERVAL_MS" => Some("5".into()),
            _ => None,
        });
        assert_eq!(
            (c.stats_file, c.stats_interval),
            (None, Duration::from_secs(5))
        );
        assert_eq!(w.len(), 2, "{w:?}");
    }

    #[test]
    fn settings_read_as_one_line() {
        let c = Config::default();
        let line = c.to_string();
        assert!(
            line.starts_with("attempt delay 250 ms (adaptive, from measured RTTs, at least 10 ms)"),
            "{line}"
        );
        assert!(
            line.contains("connect timeout none") && !line.contains('{'),
            "{line}"
        );
    }

    #[test]
    fn unknown_dnsfo_variables_are_named_with_the_closest_setting() {
        let w = unknown_settings([
            "PATH",
            "DNSFO_LOG",
            "DNSFO_LIB",
            "DNSFO_ATEMPT_DELAY_MS",
            "DNSFO_VERBOSE",
        ]);
        assert_eq!(
            w,
            [
                "dnsfo: unknown setting DNSFO_ATEMPT_DELAY_MS (ignored); did you mean DNSFO_ATTEMPT_DELAY_MS?",
                "dnsfo: unknown setting DNSFO_VERBOSE (ignored); see `man dnsfo`",
            ]
        );
        assert!(unknown_settings(crate::settings::names()).is_empty());
    }
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> (Config, Vec<String>) {
        let m: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        Config::parse(|k| m.get(k).cloned())
    }

    #[test]
    fn cache_and_nameserver() {
        let (c, w) = parse(&[("HOME", "/home/u"), ("DNSFO_NAMESERVER", "127.0.0.53")]);
        assert!(w.is_empty());
        assert_eq!(c.cache_dir, Some(PathBuf::from("/home/u/.cache/dnsfo")));
        assert_eq!(c.nameserver, Some("127.0.0.53:53".parse().unwrap()));
        let (c, _) = parse(&[
            ("XDG_RUNTIME_DIR", "/run/user/1"),
            ("HOME", "/h"),
            ("DNSFO_NAMESERVER", "[::1]:5353"),
        ]);
        assert_eq!(c.cache_dir, Some(PathBuf::from("/run/user/1/dnsfo")));
        assert_eq!(c.nameserver, Some("[::1]:5353".parse().unwrap()));
        let (c, w) = parse(&[
            ("HOME", "/h"),
            ("DNSFO_CACHE", "0"),
            ("DNSFO_NAMESERVER", "dns.example"),
        ]);
        assert_eq!(c.cache_dir, None);
        assert_eq!(c.nameserver, None);
        assert_eq!(w.len(), 1);
        let (c, w) = parse(&[("HOME", "/h"), ("DNSFO_CACHE_DIR", "rel/dir")]);
        assert_eq!(c.cache_dir, Some(PathBuf::from("/h/.cache/dnsfo")));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn defaults_without_variables() {
        let (c, w) = parse(&[]);
        assert_eq!(c, Config::default());
        assert!(w.is_empty());
        assert_eq!(c.attempt_delay, Duration::from_millis(250));
        assert_eq!(c.dead_ttl, Duration::from_secs(30));
        assert_eq!(c.connect_timeout, None);
    }

    #[test]
    fn adaptive_delay_settings() {
        let ms = Duration::from_millis;
        let (c, w) = parse(&[]);
        assert!(c.adaptive && w.is_empty());
        assert_eq!((c.attempt_delay, c.min_attempt_delay), (ms(250), ms(10)));
        // An explicit delay is fixed...
        let (c, _) = parse(&[("DNSFO_ATTEMPT_DELAY_MS", "300")]);
        assert!(!c.adaptive);
        // ...unless adaptivity is asked for: then it is the ceiling.
        let (c, w) = parse(&[
            ("DNSFO_ATTEMPT_DELAY_MS", "300"),
            ("DNSFO_ADAPTIVE_DELAY", "1"),
            ("DNSFO_MIN_ATTEMPT_DELAY_MS", "20"),
        ]);
        assert!(c.adaptive && w.is_empty(), "{w:?}");
        assert_eq!((c.attempt_delay, c.min_attempt_delay), (ms(300), ms(20)));
        let (c, _) = parse(&[("DNSFO_ADAPTIVE_DELAY", "off")]);
        assert!(!c.adaptive);
        // Under RFC 8305's 10 ms, or not a number: a warning and the default.
        for bad in ["5", "0", "x", "2001"] {
            let (c, w) = parse(&[("DNSFO_MIN_ATTEMPT_DELAY_MS", bad)]);
            assert_eq!(c.min_attempt_delay, ms(10), "{bad}");
            assert_eq!(w.len(), 1, "{bad}: {w:?}");
        }
        let (c, w) = parse(&[("DNSFO_ADAPTIVE_DELAY", "maybe")]);
        assert!(c.adaptive);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn every_variable_parses() {
        let (c, w) = parse(&[
            ("DNSFO_DISABLE", "yes"),
            ("DNSFO_ATTEMPT_DELAY_MS", "0"),
            ("DNSFO_DEAD_TTL_MS", "1000"),
            ("DNSFO_CONNECT_TIMEOUT_MS", "1500"),
            ("DNSFO_LOG", "debug"),
            ("DNSFO_LOG_FILE", "/tmp/x.log"),
            ("DNSFO_STATS", "1"),
        ]);
        assert!(w.is_empty(), "{w:?}");
        assert!(c.disabled);
        assert_eq!(c.attempt_delay, Duration::ZERO);
        assert_eq!(c.dead_ttl, Duration::from_secs(1));
        assert_eq!(c.connect_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(c.log_filter.as_deref(), Some("debug"));
        assert_eq!(c.log_file, Some(PathBuf::from("/tmp/x.log")));
        assert!(c.stats);
        let (c, _) = parse(&[("DNSFO_CONNECT_TIMEOUT_MS", "0"), ("DNSFO_DISABLE", "off")]);
        assert_eq!(c.connect_timeout, None);
        assert!(!c.disabled);
    }

    #[test]
    fn bad_values_warn_once_each_and_fall_back() {
        for bad in [
            "abc",
            "-5",
            "99999999999999999999999",
            "1.5",
            " ",
            "250ms",
            "60001",
        ] {
            let (c, w) = parse(&[("DNSFO_ATTEMPT_DELAY_MS", bad)]);
            assert_eq!(c.attempt_delay, Duration::from_millis(250), "{bad}");
            assert_eq!(w.len(), 1, "{bad}: {w:?}");
            assert!(w[0].contains("DNSFO_ATTEMPT_DELAY_MS") && w[0].contains("using 250"));
        }
        let (c, w) = parse(&[
            ("DNSFO_DEAD_TTL_MS", "-1"),
            ("DNSFO_CONNECT_TIMEOUT_MS", "x"),
            ("DNSFO_DISABLE", "maybe"),
            ("DNSFO_STATS", "2"),
        ]);
        assert_eq!(w.len(), 4);
        assert_eq!(c, Config::default());
    }

    #[test]
    fn log_filter_is_validated() {
        for ok in [
            "debug",
            "dnsfo=trace",
            "warn,dnsfo::dial=debug",
            "INFO",
            "abc",
        ] {
            let (c, w) = parse(&[("DNSFO_LOG", ok)]);
            assert!(w.is_empty(), "{ok}: {w:?}");
            assert_eq!(c.log_filter.as_deref(), Some(ok));
        }
        for bad in ["=,=", "-5", "dnsfo=loud", "a b", ","] {
            let (c, w) = parse(&[("DNSFO_LOG", bad)]);
            assert_eq!(w.len(), 1, "{bad}");
            assert_eq!(c.log_filter, None, "{bad}");
        }
    }

    #[test]
    fn empty_booleans_warn() {
        for v in ["DNSFO_DISABLE", "DNSFO_STATS", "DNSFO_CACHE"] {
            let (_, w) = parse(&[(v, "")]);
            assert_eq!(w.len(), 1, "{v}");
        }
    }

    #[test]
    fn empty_log_filter_means_no_log() {
        let (c, w) = parse(&[("DNSFO_LOG", ""), ("DNSFO_LOG_FILE", "")]);
        assert!(w.is_empty());
        assert_eq!(c.log_filter, None);
        assert_eq!(c.log_file, None);
    }

    #[test]
    fn non_utf8_warns() {
        use std::os::unix::ffi::OsStringExt;
        let (c, w) = Config::parse(|k| {
            (k == "DNSFO_DEAD_TTL_MS").then(|| OsString::from_vec(vec![0xff, 0x31]))
        });
        assert_eq!(w.len(), 1);
        assert_eq!(c.dead_ttl, Duration::from_secs(30));
    }
}
