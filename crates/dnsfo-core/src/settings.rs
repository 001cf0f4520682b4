//! The one table of dnsfo's settings: name, unit, default, range and meaning of every `DNSFO_*`
//! variable (and config-file key). README's settings table and the man page's ENVIRONMENT
//! section are printed from it (`dnsfo settings --markdown`, `--man`), and a test fails when
//! either differs from what it prints; `config` checks that it parses exactly these names.
//!
//! Owns: the words about each setting, and which names are settings (an unknown `DNSFO_*` name
//! gets the closest one suggested). Must never: hold parsing rules (those are `config`'s and
//! `values`'); the ranges here are what their tests hold them to.

/// One setting.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    pub name: &'static str,
    /// `ms`, `bool`, `path`, ...
    pub unit: &'static str,
    pub default: &'static str,
    /// Allowed values beyond the unit's own rule (empty: none).
    pub range: &'static str,
    /// What it does. `` `code` `` spans mark names and values.
    pub meaning: &'static str,
}

const BOOL: &str = "bool (`1`/`0`, `true`/`false`, `yes`/`no`, `on`/`off`)";

/// Every setting the library reads, in the order the documentation lists them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "DNSFO_CONFIG",
        unit: "absolute path",
        default: "none",
        range: "",
        meaning: "one more config file, read after `/etc/dnsfo.conf` and `~/.config/dnsfo/config` (see CONFIG FILES); environment only. Every setting below can also be given in a config file, as `attempt_delay_ms = 100` or `DNSFO_ATTEMPT_DELAY_MS = 100`; the environment overrides the files",
    },
    Setting {
        name: "DNSFO_DISABLE",
        unit: BOOL,
        default: "`0`",
        range: "",
        meaning: "`1` = pure pass-through",
    },
    Setting {
        name: "DNSFO_ATTEMPT_DELAY_MS",
        unit: "ms",
        default: "`250`, adaptive",
        range: "0..=60000",
        meaning: "RFC 8305 delay before the next address starts while earlier attempts keep running; `0` = all at once. Unset: adaptive (below), at most 250 ms. Set: that delay, fixed (what someone who sets a delay asks for), unless `DNSFO_ADAPTIVE_DELAY=1` makes it the ceiling",
    },
    Setting {
        name: "DNSFO_ADAPTIVE_DELAY",
        unit: "bool",
        default: "`1` unless `DNSFO_ATTEMPT_DELAY_MS` is set",
        range: "",
        meaning: "the delay follows the kernel's RTT of earlier successful connects to the name's addresses (`tcpi_rtt`, sampled at most every 10 s per address, shared through the cache): 2 × RTT + 4 × deviation (TCP's own retransmission timeout without its 200 ms floor), clamped to `DNSFO_MIN_ATTEMPT_DELAY_MS`..the attempt delay; no history: the attempt delay",
    },
    Setting {
        name: "DNSFO_MIN_ATTEMPT_DELAY_MS",
        unit: "ms",
        default: "`10`",
        range: "10..=2000",
        meaning: "the adaptive delay's floor (RFC 8305 section 5: never under 10 ms)",
    },
    Setting {
        name: "DNSFO_DEAD_TTL_MS",
        unit: "ms",
        default: "`30000`",
        range: "0..=86400000",
        meaning: "how long a failed address is skipped; doubles on each repeated failure, up to 16×",
    },
    Setting {
        name: "DNSFO_CONNECT_TIMEOUT_MS",
        unit: "ms",
        default: "none (`0`)",
        range: "0..=3600000",
        meaning: "cap on one whole connect across all addresses; the program's own `SO_SNDTIMEO` also bounds a blocking connect",
    },
    Setting {
        name: "DNSFO_FAILOVER_BUDGET_MS",
        unit: "ms",
        default: "`2000`",
        range: "0..=3600000",
        meaning: "once the address the program chose has failed, how long other addresses may still take before the program gets that failure (2 s: the least Go's dialer gives one address)",
    },
    Setting {
        name: "DNSFO_LOG",
        unit: "`env_logger` filter: a level (`error`…`trace`) or `module=level`, comma-separated",
        default: "unset: nothing written at all",
        range: "",
        meaning: "`info` = failovers; `debug` = one line per attempt (name, address, outcome, ms)",
    },
    Setting {
        name: "DNSFO_LOG_FILE",
        unit: "path",
        default: "stderr (only when `DNSFO_LOG` is set)",
        range: "",
        meaning: "the log goes there (appended)",
    },
    Setting {
        name: "DNSFO_STATS",
        unit: "bool",
        default: "`0`",
        range: "",
        meaning: "`1` = one summary line at exit (lookups learned, connects seen, failovers, addresses marked dead, time saved: an estimate from the kernel's SYN timeout), to stderr or `DNSFO_LOG_FILE`",
    },
    Setting {
        name: "DNSFO_STATS_FILE",
        unit: "absolute path; `%p` = the process id",
        default: "none",
        range: "",
        meaning: "the same counters in Prometheus text format (for node_exporter's textfile collector), replaced atomically every `DNSFO_STATS_INTERVAL_MS` and at a normal exit: a daemon's figures without waiting for it to end, at most one interval old after a kill (a signal that kills the program runs no exit code, and dnsfo does not take over the program's signals). Without `%p` only the process that started with the setting writes it (a forked child does not overwrite its parent's file)",
    },
    Setting {
        name: "DNSFO_STATS_INTERVAL_MS",
        unit: "ms",
        default: "`5000`",
        range: "100..=3600000",
        meaning: "how often `DNSFO_STATS_FILE` is refreshed",
    },
    Setting {
        name: "DNSFO_CACHE",
        unit: "bool",
        default: "`1`",
        range: "",
        meaning: "`0` = no shared winner cache",
    },
    Setting {
        name: "DNSFO_CACHE_DIR",
        unit: "absolute path",
        default: "`$XDG_RUNTIME_DIR/dnsfo`, else `~/.cache/dnsfo`",
        range: "",
        meaning: "where winners are shared between processes (created 0700; ignored unless it is the user's own, not group/world-writable, no symlinks)",
    },
    Setting {
        name: "DNSFO_NAMESERVER",
        unit: "`IP` or `IP:PORT`",
        default: "system `resolv.conf`",
        range: "",
        meaning: "the server asked when re-resolving",
    },
];

/// `DNSFO_*` variables of dnsfo's own tools, which the library ignores without a word: the
/// command's library path, and the test scripts' switches.
const TOOL_VARIABLES: &[&str] = &[
    "DNSFO_LIB",
    "DNSFO_TEST_DEPS",
    "DNSFO_TEST_PYTHON",
    "DNSFO_HERMETIC_NS",
];

/// One warning per `DNSFO_*` variable in `given` that nothing of dnsfo reads (a typo, usually:
/// the closest setting is suggested), in the order given.
pub fn unknown_settings<'a>(given: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    given
        .into_iter()
        .filter(|n| n.starts_with("DNSFO_"))
        .filter(|n| !names().any(|s| s == *n) && !TOOL_VARIABLES.contains(n))
        .map(|n| format!("dnsfo: unknown setting {n} (ignored); {}", suggestion(n)))
        .collect()
}

/// What to tell someone who wrote the unknown setting `name`: the closest setting (a typo,
/// usually), else where the settings are listed.
pub fn suggestion(name: &str) -> String {
    let closest = names()
        .map(|s| (edit_distance(name, s), s))
        .min()
        .filter(|(d, _)| *d <= 3);
    match closest {
        Some((_, s)) => format!("did you mean {s}?"),
        None => "see `man dnsfo`".to_string(),
    }
}

/// Levenshtein distance of two short ASCII names.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The names, in table order.
pub fn names() -> impl Iterator<Item = &'static str> {
    SETTINGS.iter().map(|s| s.name)
}

/// The table as README has it (GitHub-flavoured markdown), ending in a newline.
pub fn markdown() -> String {
    let mut out = String::from(
        "| variable | unit | default | range | meaning |\n| --- | --- | --- | --- | --- |\n",
    );
    for s in SETTINGS {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            s.name, s.unit, s.default, s.range, s.meaning
        ));
    }
    out
}

/// A setting's key in a config file: `DNSFO_ATTEMPT_DELAY_MS` → `attempt_delay_ms`.
pub fn file_key(name: &str) -> String {
    name.trim_start_matches("DNSFO_").to_ascii_lowercase()
}

/// The table as man page paragraphs (`.TP` per setting), ending in a newline.
pub fn man() -> String {
    man_with(false)
}

/// The same for dnsfo.conf(5): keys as a config file writes them, without `DNSFO_CONFIG`.
pub fn man_conf() -> String {
    man_with(true)
}

fn man_with(file_keys: bool) -> String {
    let mut out = String::new();
    for s in SETTINGS {
        if file_keys && s.name == "DNSFO_CONFIG" {
            continue;
        }
        let key = if file_keys {
            file_key(s.name)
        } else {
            s.name.to_string()
        };
        out.push_str(".TP\n");
        out.push_str(&format!(".B {}\n", roff(&key)));
        let mut facts = roff_text(s.unit);
        if !s.range.is_empty() {
            facts.push_str(&format!(", {}", roff_text(s.range)));
        }
        facts.push_str(&format!("; default {}.", roff_text(s.default)));
        out.push_str(&line_start(&facts));
        out.push('\n');
        out.push_str(&line_start(&format!("{}.", roff_text(s.meaning))));
        out.push('\n');
    }
    out
}

/// Plain text, one setting per paragraph (for `dnsfo settings`).
pub fn text() -> String {
    let mut out = String::new();
    for s in SETTINGS {
        let plain = |t: &str| t.replace('`', "");
        out.push_str(&format!("{}\n", s.name));
        let mut facts = plain(s.unit);
        if !s.range.is_empty() {
            facts.push_str(&format!(", {}", plain(s.range)));
        }
        out.push_str(&format!("    {facts}; default {}\n", plain(s.default)));
        out.push_str(&format!("    {}\n\n", plain(s.meaning)));
    }
    out
}

/// A word for roff: backslashes and hyphens escaped.
fn roff(s: &str) -> String {
    s.replace('\\', "\\e").replace('-', "\\-")
}

/// Text for roff: `code` spans in bold, the rest escaped.
fn roff_text(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("\\fB{}\\fR", roff(part)));
        } else {
            out.push_str(&roff(part));
        }
    }
    out
}

/// A line must not start with `.` or `'` (roff would take it for a request).
fn line_start(s: &str) -> String {
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text between `start` and `end` markers of a file of the repository.
    fn block(file: &str, start: &str, end: &str) -> String {
        let path = format!("{}/../../{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let a = text
            .find(start)
            .unwrap_or_else(|| panic!("{file}: no {start:?} marker"))
            + start.len();
        let b = text[a..]
            .find(end)
            .unwrap_or_else(|| panic!("{file}: no {end:?} marker"))
            + a;
        text[a..b].to_string()
    }

    #[test]
    fn readme_prints_this_table() {
        let got = block(
            "README.md",
            "<!-- settings: printed by `dnsfo settings --markdown` -->\n",
            "<!-- /settings -->",
        );
        assert_eq!(
            got,
            markdown(),
            "README's settings table differs from the table: run scripts/settings-sync"
        );
    }

    #[test]
    fn the_man_page_prints_this_table() {
        let got = block(
            "packaging/dnsfo.1",
            ".\\\" settings: printed by `dnsfo settings --man`\n",
            ".\\\" /settings",
        );
        assert_eq!(
            got,
            man(),
            "dnsfo.1's settings differ from the table: run scripts/settings-sync"
        );
    }

    #[test]
    fn the_config_file_man_page_prints_this_table() {
        let got = block(
            "packaging/dnsfo.conf.5",
            ".\\\" settings: printed by `dnsfo settings --man-conf`\n",
            ".\\\" /settings",
        );
        assert_eq!(
            got,
            man_conf(),
            "dnsfo.conf.5's settings differ from the table: run scripts/settings-sync"
        );
    }

    #[test]
    fn edit_distance_counts_single_changes() {
        assert_eq!(edit_distance("abc", "abd"), 1);
        assert_eq!(edit_distance("", "ab"), 2);
    }

    #[test]
    fn roff_escapes_and_bolds_code() {
        assert_eq!(roff_text("a `x-y` b"), "a \\fBx\\-y\\fR b");
        assert_eq!(line_start(".x"), "\\&.x");
    }

    #[test]
    fn every_setting_is_documented() {
        for s in SETTINGS {
            assert!(s.name.starts_with("DNSFO_"), "{}", s.name);
            assert!(
                !s.unit.is_empty() && !s.default.is_empty() && !s.meaning.is_empty(),
                "{}",
                s.name
            );
            assert!(!s.meaning.contains('|'), "{}: a | breaks the table", s.name);
        }
    }
}
