//! The rules every setting's value follows, whatever its source (environment, config file,
//! the command's options): booleans and milliseconds.
//!
//! Owns: those two syntaxes. Must never: know a setting's name or default (that is `config`).

/// A boolean setting's value: `1`/`0`, `true`/`false`, `yes`/`no`, `on`/`off`.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// A whole number of milliseconds in `0..=max`, surrounding blanks allowed: the rule of every
/// `DNSFO_*_MS` setting and of the command's millisecond options.
pub fn parse_ms(v: &str, max: u64) -> Option<u64> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u64>().ok().filter(|&n| n <= max)
}
