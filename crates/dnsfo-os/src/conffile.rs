//! Finding dnsfo's config files and deciding whether to believe them.
//!
//! In order (a later file overrides an earlier one, and the environment overrides them all):
//! `/etc/dnsfo.conf`, the user's `$XDG_CONFIG_HOME/dnsfo/config` (else `~/.config/dnsfo/config`),
//! then the file `DNSFO_CONFIG` names. A file is read only if it is a regular file (not through a
//! symbolic link) that nobody but its owner may write, and its owner is root or (for the user's
//! files) the user. Under secure execution (setuid programs, `AT_SECURE`) only `/etc/dnsfo.conf`
//! is read, and only when root owns it: the environment and the home directory belong to
//! whoever started the program.
//!
//! Owns: where the files are and those trust checks. Must never: parse a setting (that is
//! `dnsfo_core::conffile`), or fail: a missing file is no file, a refused one a warning.

use dnsfo_core::conffile::FileText;
use dnsfo_core::config::Config;
use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The system-wide file.
pub const SYSTEM: &str = "/etc/dnsfo.conf";
/// Larger files are refused (a config file is a few lines).
const MAX_LEN: u64 = 1 << 20;

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// The settings as the library reads them in this process: the config files, then `env` over
/// them (not under `secure` execution, where only a root-owned `/etc/dnsfo.conf` counts), with
/// every warning (refused files, bad values with their file and line).
pub fn config(secure: bool, env: impl Fn(&str) -> Option<OsString>) -> (Config, Vec<String>) {
    let (files, mut warnings) = load(secure, &env);
    let (config, more) = if secure {
        Config::parse_all(|_| None, &files)
    } else {
        Config::parse_all(&env, &files)
    };
    warnings.extend(more);
    (config, warnings)
}

/// The files to read and the warnings about refused ones. `env` is the environment (ignored
/// under `secure` execution).
pub fn load(secure: bool, env: impl Fn(&str) -> Option<OsString>) -> (Vec<FileText>, Vec<String>) {
    let mut files = Vec::new();
    let mut warnings = Vec::new();
    let mut take = |path: &Path, owners: &[u32], must_exist: bool| match read_trusted(path, owners)
    {
        Ok(Some(text)) => files.push(FileText {
            origin: path.display().to_string(),
            text,
        }),
        Ok(None) if must_exist => warnings.push(format!(
            "dnsfo: DNSFO_CONFIG={}: no such file; no config file read from it",
            path.display()
        )),
        Ok(None) => {}
        Err(why) => warnings.push(format!("dnsfo: {}: {why}; ignored", path.display())),
    };
    take(Path::new(SYSTEM), &[0], false);
    if secure {
        return (files, warnings);
    }
    let me = euid();
    if let Some(user) = user_file(&env) {
        take(&user, &[me, 0], false);
    }
    match env("DNSFO_CONFIG").filter(|v| !v.is_empty()) {
        Some(p) if Path::new(&p).is_absolute() => take(Path::new(&p), &[me, 0], true),
        Some(p) => warnings.push(format!(
            "dnsfo: DNSFO_CONFIG={:?} is not an absolute path; no config file read from it",
            p.to_string_lossy()
        )),
        None => {}
    }
    (files, warnings)
}

/// `$XDG_CONFIG_HOME/dnsfo/config`, else `$HOME/.config/dnsfo/config` (absolute paths only).
pub fn user_file(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let abs = |v: OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    env("XDG_CONFIG_HOME")
        .and_then(abs)
        .or_else(|| env("HOME").and_then(abs).map(|h| h.join(".config")))
        .map(|d| d.join("dnsfo").join("config"))
}

/// The text of `path` if it may be believed: `Ok(None)` when there is no such file, `Err(why)`
/// when there is one that is refused.
fn read_trusted(path: &Path, owners: &[u32]) -> Result<Option<String>, String> {
    let mut f = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err("is a symbolic link".into()),
        Err(e) => return Err(format!("cannot be read ({e})")),
    };
    let m = f.metadata().map_err(|e| format!("cannot be read ({e})"))?;
    if !m.file_type().is_file() {
        return Err("is not a regular file".into());
    }
    if !owners.contains(&m.uid()) {
        return Err(format!(
            "belongs to uid {}, not to {}",
            m.uid(),
            if owners == [0] { "root" } else { "you or root" }
        ));
    }
    if m.mode() & 0o022 != 0 {
        return Err("may be written by others than its owner".into());
    }
    if m.len() > MAX_LEN {
        return Err("is larger than 1 MiB".into());
    }
    let mut text = String::new();
    f.by_ref()
        .take(MAX_LEN)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot be read as text ({e})"))?;
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dnsfo-conffile-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("temp dir");
        d
    }

    #[test]
    fn trusted_files_only() {
        let d = tmp("trust");
        let me = euid();
        let good = d.join("good");
        fs::write(&good, "attempt_delay_ms = 1\n").expect("write");
        fs::set_permissions(&good, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(
            read_trusted(&good, &[me]),
            Ok(Some("attempt_delay_ms = 1\n".into()))
        );
        assert_eq!(read_trusted(&d.join("missing"), &[me]), Ok(None));
        let open = d.join("open");
        fs::write(&open, "x=1\n").expect("write");
        fs::set_permissions(&open, fs::Permissions::from_mode(0o666)).expect("chmod");
        assert!(read_trusted(&open, &[me])
            .unwrap_err()
            .contains("written by others"));
        let link = d.join("link");
        std::os::unix::fs::symlink(&good, &link).expect("symlink");
        assert_eq!(read_trusted(&link, &[me]), Err("is a symbolic link".into()));
        assert!(read_trusted(&d, &[me]).is_err(), "a directory");
        if me != 0 {
            assert!(read_trusted(&good, &[0])
                .unwrap_err()
                .contains("not to root"));
        }
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn user_file_and_dnsfo_config_only_when_not_secure() {
        let d = tmp("load");
        let xdg = d.join("xdg");
        fs::create_dir_all(xdg.join("dnsfo")).expect("mkdir");
        fs::write(xdg.join("dnsfo/config"), "a=1\n").expect("write");
        let extra = d.join("extra.conf");
        fs::write(&extra, "b=2\n").expect("write");
        for p in [xdg.join("dnsfo/config"), extra.clone()] {
            fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        let env = |k: &str| match k {
            "XDG_CONFIG_HOME" => Some(xdg.clone().into_os_string()),
            "DNSFO_CONFIG" => Some(extra.clone().into_os_string()),
            _ => None,
        };
        let (files, w) = load(false, env);
        let texts: Vec<&str> = files
            .iter()
            .filter(|f| f.origin != SYSTEM)
            .map(|f| f.text.as_str())
            .collect();
        assert_eq!(texts, ["a=1\n", "b=2\n"], "{w:?}");
        let (files, _) = load(true, env);
        assert!(files.iter().all(|f| f.origin == SYSTEM));
        let (_, w) = load(false, |k: &str| {
            (k == "DNSFO_CONFIG").then(|| OsString::from("relative.conf"))
        });
        assert!(
            w.iter().any(|l| l.contains("not an absolute path")),
            "{w:?}"
        );
        let missing = d.join("nope");
        let (_, w) = load(false, |k: &str| {
            (k == "DNSFO_CONFIG").then(|| missing.clone().into_os_string())
        });
        assert!(w.iter().any(|l| l.contains("no such file")), "{w:?}");
        let _ = fs::remove_dir_all(&d);
    }
}
