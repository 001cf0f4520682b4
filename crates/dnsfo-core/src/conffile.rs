//! The config file's text, without I/O: `KEY = VALUE` lines with the same names, units and
//! checks as the `DNSFO_*` variables (written `attempt_delay_ms` or `DNSFO_ATTEMPT_DELAY_MS`),
//! `#` comments, and `[name PATTERN]` sections whose settings apply to one name (`db.internal`)
//! or every name under a domain (`*.corp.example`).
//!
//! Owns: the syntax and the per-name rules. Must never: read a file (`dnsfo_os::conffile` finds
//! them and checks who may write them), or decide a global setting's value (`config` parses
//! the values it collects here, with their origin for its warnings).

use std::time::Duration;

/// A config file as read: where it came from (for warnings) and its text.
#[derive(Clone, Debug)]
pub struct FileText {
    pub origin: String,
    pub text: String,
}

/// A value from a file: the text after `=`, and `origin:line` for warnings.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub text: String,
    pub at: String,
}

/// Settings for the names a pattern matches.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct NameRule {
    /// `db.internal` (that name) or `*.corp.example` (any name under `corp.example`).
    pub pattern: String,
    /// `exclude`: dnsfo leaves the name alone (its connects go straight to libc).
    pub exclude: bool,
    /// `attempt_delay_ms`: a fixed attempt delay for the name.
    pub attempt_delay: Option<Duration>,
}

impl NameRule {
    /// Does the rule apply to `name` (already lower-case, no trailing dot)?
    pub fn matches(&self, name: &str) -> bool {
        match self.pattern.strip_prefix("*.") {
            Some(domain) => name
                .strip_suffix(domain)
                .is_some_and(|head| head.ends_with('.') && head.len() > 1),
            None => name == self.pattern,
        }
    }
}

/// What the files say: global values by setting name (a later file wins), per-name rules (a
/// later rule for the same pattern wins), and one warning line per thing that is wrong.
#[derive(Debug, Default)]
pub struct Collected {
    pub values: Vec<(String, Value)>,
    pub rules: Vec<NameRule>,
    pub warnings: Vec<String>,
}

impl Collected {
    /// The value a file gave `name`, if any (the last one).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

/// Per-name settings, by their key in a `[name ...]` section.
const PER_NAME: &[&str] = &["exclude", "attempt_delay_ms"];

/// `attempt_delay_ms` / `DNSFO_ATTEMPT_DELAY_MS` → `DNSFO_ATTEMPT_DELAY_MS`.
fn setting_name(key: &str) -> String {
    let k = key.trim().to_ascii_uppercase();
    if k.starts_with("DNSFO_") {
        k
    } else {
        format!("DNSFO_{k}")
    }
}

/// Reads `files` in order (the later overrides the earlier).
pub fn collect(files: &[FileText]) -> Collected {
    let mut c = Collected::default();
    for f in files {
        let mut rule: Option<NameRule> = None;
        for (i, raw) in f.text.lines().enumerate() {
            let at = format!("{}:{}", f.origin, i + 1);
            let line = match raw.find('#') {
                Some(p) => &raw[..p],
                None => raw,
            }
            .trim();
            if line.is_empty() {
                continue;
            }
            if let Some(head) = line.strip_prefix('[') {
                if let Some(r) = rule.take() {
                    push_rule(&mut c.rules, r);
                }
                match head.strip_suffix(']').map(str::split_whitespace) {
                    Some(mut words) => match (words.next(), words.next(), words.next()) {
                        (Some("name"), Some(p), None) if valid_pattern(p) => {
                            rule = Some(NameRule {
                                pattern: crate::registry::normalize(p),
                                ..NameRule::default()
                            })
                        }
                        _ => c.warnings.push(format!(
                            "dnsfo: {at}: {line:?} is not a section ([name NAME] or [name *.DOMAIN]); its settings are ignored"
                        )),
                    },
                    None => c
                        .warnings
                        .push(format!("dnsfo: {at}: {line:?} lacks its closing ]; ignored")),
                }
                if rule.is_none() {
                    // Settings up to the next section belong to a section that is not there.
                    rule = Some(NameRule {
                        pattern: String::new(),
                        ..NameRule::default()
                    });
                }
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                c.warnings
                    .push(format!("dnsfo: {at}: {line:?} is not KEY = VALUE; ignored"));
                continue;
            };
            let (key, value) = (key.trim(), value.trim().to_string());
            match rule.as_mut() {
                Some(r) => per_name(r, key, &value, &at, &mut c.warnings),
                None => {
                    let name = setting_name(key);
                    if name == "DNSFO_CONFIG" {
                        c.warnings.push(format!(
                            "dnsfo: {at}: DNSFO_CONFIG names a file from the environment only; ignored"
                        ));
                    } else if crate::settings::names().any(|s| s == name) {
                        c.values.push((name, Value { text: value, at }));
                    } else {
                        c.warnings.push(format!(
                            "dnsfo: {at}: unknown setting {key} (ignored); {}",
                            crate::settings::suggestion(&name)
                        ));
                    }
                }
            }
        }
        if let Some(r) = rule.take() {
            push_rule(&mut c.rules, r);
        }
    }
    c
}

/// A rule replaces an earlier one for the same pattern; a section that was not valid is dropped.
fn push_rule(rules: &mut Vec<NameRule>, r: NameRule) {
    if r.pattern.is_empty() {
        return;
    }
    rules.retain(|o| o.pattern != r.pattern);
    rules.push(r);
}

/// A host name, or `*.` and a domain: letters, digits, `-`, `_` and dots.
fn valid_pattern(p: &str) -> bool {
    let body = p.strip_prefix("*.").unwrap_or(p);
    !body.is_empty()
        && !body.starts_with('.')
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn per_name(r: &mut NameRule, key: &str, value: &str, at: &str, warnings: &mut Vec<String>) {
    if r.pattern.is_empty() {
        return; // inside a section that was not valid (already warned about)
    }
    let k = key.trim().to_ascii_lowercase();
    let k = k.strip_prefix("dnsfo_").unwrap_or(&k);
    match k {
        "exclude" => match crate::values::parse_bool(value) {
            Some(b) => r.exclude = b,
            None => warnings.push(format!(
                "dnsfo: {at}: exclude={value:?} is not one of 1/0, true/false, yes/no, on/off; not excluded"
            )),
        },
        "attempt_delay_ms" => match crate::values::parse_ms(value, 60_000) {
            Some(n) => r.attempt_delay = Some(Duration::from_millis(n)),
            None => warnings.push(format!(
                "dnsfo: {at}: attempt_delay_ms={value:?} is not a whole number of milliseconds in 0..=60000; the global delay applies"
            )),
        },
        _ => warnings.push(format!(
            "dnsfo: {at}: {key} is not a per-name setting (those are: {}); ignored",
            PER_NAME.join(", ")
        )),
    }
}

/// The rule that applies to `name` (lower-case, no trailing dot): an exact one before a
/// wildcard, the longest wildcard first.
pub fn rule_for<'a>(rules: &'a [NameRule], name: &str) -> Option<&'a NameRule> {
    rules
        .iter()
        .filter(|r| r.matches(name))
        .max_by_key(|r| (!r.pattern.starts_with("*."), r.pattern.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(origin: &str, text: &str) -> FileText {
        FileText {
            origin: origin.into(),
            text: text.into(),
        }
    }

    #[test]
    fn keys_in_either_spelling_comments_and_the_last_file_wins() {
        let c = collect(&[
            file(
                "/etc/dnsfo.conf",
                "attempt_delay_ms = 100  # fast network\nDNSFO_LOG=info\n",
            ),
            file("~/.config/dnsfo/config", "\n# mine\nATTEMPT_DELAY_MS=50\n"),
        ]);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(
            c.get("DNSFO_ATTEMPT_DELAY_MS"),
            Some(&Value {
                text: "50".into(),
                at: "~/.config/dnsfo/config:3".into()
            })
        );
        assert_eq!(c.get("DNSFO_LOG").map(|v| v.text.as_str()), Some("info"));
        assert_eq!(c.get("DNSFO_STATS"), None);
    }

    #[test]
    fn mistakes_warn_with_file_and_line_and_are_ignored() {
        let c = collect(&[file(
            "f",
            "atempt_delay_ms = 5\nnonsense\nconfig = /x\n[name]\nexclude = 1\n[name ok.test\n[name a.test]\ncolour = red\nexclude = maybe\nattempt_delay_ms = -1\n",
        )]);
        let w = c.warnings.join("\n");
        assert!(w.contains("f:1: unknown setting atempt_delay_ms (ignored); did you mean DNSFO_ATTEMPT_DELAY_MS?"), "{w}");
        assert!(w.contains("f:2: \"nonsense\" is not KEY = VALUE"), "{w}");
        assert!(
            w.contains("f:3: DNSFO_CONFIG names a file from the environment only"),
            "{w}"
        );
        assert!(w.contains("f:4: \"[name]\" is not a section"), "{w}");
        assert!(
            w.contains("f:6: \"[name ok.test\" lacks its closing ]"),
            "{w}"
        );
        assert!(w.contains("f:8: colour is not a per-name setting"), "{w}");
        assert!(w.contains("f:9: exclude=\"maybe\""), "{w}");
        assert!(w.contains("f:10: attempt_delay_ms=\"-1\""), "{w}");
        assert_eq!(c.warnings.len(), 8, "{w}");
        assert!(c.values.is_empty());
        // The bad section's `exclude = 1` applies to nothing; a.test keeps the defaults.
        assert_eq!(
            c.rules,
            vec![NameRule {
                pattern: "a.test".into(),
                ..NameRule::default()
            }]
        );
    }

    #[test]
    fn per_name_rules_exact_before_wildcard() {
        let c = collect(&[
            file(
                "a",
                "[name DB.Internal.]\nexclude = yes\n[name *.corp.example]\nattempt_delay_ms = 500\n",
            ),
            file("b", "[name api.corp.example]\nattempt_delay_ms = 20\n[name db.internal]\nexclude = no\n"),
        ]);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let exact = rule_for(&c.rules, "db.internal").expect("a rule");
        assert!(!exact.exclude, "the later file's rule replaced the earlier");
        assert_eq!(
            rule_for(&c.rules, "api.corp.example").and_then(|r| r.attempt_delay),
            Some(Duration::from_millis(20))
        );
        assert_eq!(
            rule_for(&c.rules, "www.corp.example").and_then(|r| r.attempt_delay),
            Some(Duration::from_millis(500))
        );
        assert!(
            rule_for(&c.rules, "corp.example").is_none(),
            "the domain itself is not under it"
        );
        assert!(rule_for(&c.rules, "xcorp.example").is_none());
    }
}
