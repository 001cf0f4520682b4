//! Hand-rolled option parsing shared by the subcommands: `--opt VALUE`, `--opt=VALUE`, short
//! flags, `--` ends the options. Errors are usage errors (exit status 2).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// One command-line item.
pub enum Item {
    /// `-x` or `--name`, with the value given after `=` if any.
    Opt {
        name: String,
        inline: Option<OsString>,
    },
    /// An argument that is not an option.
    Pos(OsString),
    /// `--`.
    End,
}

pub struct Parser {
    args: std::vec::IntoIter<OsString>,
}

impl Parser {
    pub fn new(args: Vec<OsString>) -> Parser {
        Parser {
            args: args.into_iter(),
        }
    }

    pub fn next_item(&mut self) -> Option<Item> {
        let a = self.args.next()?;
        let bytes = a.as_bytes();
        if bytes == b"--" {
            return Some(Item::End);
        }
        if bytes.len() < 2 || bytes[0] != b'-' {
            return Some(Item::Pos(a));
        }
        if bytes.starts_with(b"--") {
            if let Some(eq) = bytes.iter().position(|&b| b == b'=') {
                let name = String::from_utf8_lossy(&bytes[..eq]).into_owned();
                let value = OsStr::from_bytes(&bytes[eq + 1..]).to_os_string();
                return Some(Item::Opt {
                    name,
                    inline: Some(value),
                });
            }
        }
        Some(Item::Opt {
            name: String::from_utf8_lossy(bytes).into_owned(),
            inline: None,
        })
    }

    /// The value of option `name`: after `=`, else the next argument.
    pub fn value(&mut self, name: &str, inline: Option<OsString>) -> Result<OsString, String> {
        match inline {
            Some(v) => Ok(v),
            None => self
                .args
                .next()
                .ok_or_else(|| format!("{name} needs a value")),
        }
    }

    /// Everything not consumed yet.
    pub fn rest(self) -> Vec<OsString> {
        self.args.collect()
    }
}

/// A flag must not be given a value (`--verbose=1`).
pub fn no_value(name: &str, inline: &Option<OsString>) -> Result<(), String> {
    match inline {
        Some(_) => Err(format!("{name} takes no value")),
        None => Ok(()),
    }
}

/// A whole number of milliseconds in `0..=max`: `dnsfo_core::config::parse_ms`, the rule of
/// every `DNSFO_*_MS` setting, with an error that says which part is wrong.
pub fn parse_ms(name: &str, value: &OsStr, max: u64) -> Result<u64, String> {
    let v = value.to_string_lossy();
    if let Some(n) = dnsfo_core::config::parse_ms(&v, max) {
        return Ok(n);
    }
    let t = v.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        Err(format!(
            "{name}: {t} ms is out of range (expected 0..={max})"
        ))
    } else {
        Err(format!(
            "{name}: '{v}' is not a whole number of milliseconds (expected 0..={max})"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms_values() {
        let p = |s: &str| parse_ms("--x", OsStr::new(s), 1000);
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("000"), Ok(0));
        assert_eq!(p("0250"), Ok(250));
        assert_eq!(p("1000"), Ok(1000));
        assert!(p("1001").unwrap_err().contains("out of range"));
        assert!(p("99999999999999999999999")
            .unwrap_err()
            .contains("out of range"));
        assert!(p("").is_err());
        assert!(p("-1").is_err());
        assert!(p("1.5").is_err());
        assert!(p("10ms").unwrap_err().contains("not a whole number"));
    }

    #[test]
    fn items() {
        let mut p = Parser::new(
            ["--a=1", "--b", "2", "-v", "--", "x"]
                .iter()
                .map(OsString::from)
                .collect(),
        );
        let Some(Item::Opt { name, inline }) = p.next_item() else {
            panic!()
        };
        assert_eq!((name.as_str(), inline), ("--a", Some(OsString::from("1"))));
        let Some(Item::Opt { name, inline }) = p.next_item() else {
            panic!()
        };
        assert_eq!(name, "--b");
        assert_eq!(p.value(&name, inline).unwrap(), "2");
        assert!(matches!(p.next_item(), Some(Item::Opt { name, .. }) if name == "-v"));
        assert!(matches!(p.next_item(), Some(Item::End)));
        assert_eq!(p.rest(), vec![OsString::from("x")]);
        let mut p = Parser::new(vec![OsString::from("-"), OsString::from("--b")]);
        assert!(matches!(p.next_item(), Some(Item::Pos(_))));
        assert!(p.next_item().is_some());
        assert!(p.value("--b", None).is_err());
    }
}
