//! The shared winner cache: lets a short-lived process start where the last one left off.
//!
//! One small text file, `winners`, in `DNSFO_CACHE_DIR` (default `$XDG_RUNTIME_DIR/dnsfo`, else
//! `~/.cache/dnsfo`): a line per (name, port) with the address that won and when the entry
//! expires. Written atomically (temporary file + rename), so many writers never leave a torn
//! file; the last writer wins, which is fine for a hint.
//!
//! Owns: the file's format, its trust checks and its bounds. Must never: trust a directory or
//! file that is not the user's own, is group- or world-writable, or is reached through a
//! symlink; write through anything it does not trust; or add an address: a cached winner is
//! used only if this process's resolver returned it for that name (the caller checks).

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Entries kept at most (oldest expiry dropped first).
pub const MAX_ENTRIES: usize = 256;
const FILE: &str = "winners";
/// Lines longer than this are not ours: the file is ignored.
const MAX_FILE_BYTES: u64 = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub port: u16,
    pub ip: IpAddr,
    /// Milliseconds since the Unix epoch.
    pub expires_ms: u64,
}

/// The default directory, from the environment the program was started with.
pub fn default_dir(get: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    if let Some(d) = get("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("dnsfo"));
    }
    get("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".cache").join("dnsfo"))
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Parses the file's text; malformed lines are skipped, expired entries dropped.
pub fn parse(text: &str, now_ms: u64) -> Vec<Entry> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let e = Entry {
                name: f.next()?.to_string(),
                port: f.next()?.parse().ok()?,
                ip: f.next()?.parse().ok()?,
                expires_ms: f.next()?.parse().ok()?,
            };
            (f.next().is_none() && e.expires_ms > now_ms).then_some(e)
        })
        .take(MAX_ENTRIES)
        .collect()
}

pub fn render(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|e| format!("{} {} {} {}\n", e.name, e.port, e.ip, e.expires_ms))
        .collect()
}

/// Replaces the entry for (name, port), keeping the newest `MAX_ENTRIES`.
pub fn upsert(mut entries: Vec<Entry>, new: Entry) -> Vec<Entry> {
    entries.retain(|e| !(e.name == new.name && e.port == new.port));
    entries.push(new);
    if entries.len() > MAX_ENTRIES {
        entries.sort_by_key(|e| std::cmp::Reverse(e.expires_ms));
        entries.truncate(MAX_ENTRIES);
    }
    entries
}

/// Is this path the user's own, not group/world-writable, and not a symlink?
fn trusted(path: &Path, want_dir: bool) -> bool {
    let Ok(m) = fs::symlink_metadata(path) else {
        return false;
    };
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let kind_ok = if want_dir {
        m.file_type().is_dir()
    } else {
        m.file_type().is_file()
    };
    kind_ok && m.uid() == uid && m.mode() & 0o022 == 0
}

/// Also refuses a directory whose path goes through a symlink anywhere.
fn trusted_dir(dir: &Path) -> bool {
    match fs::canonicalize(dir) {
        Ok(real) => real == dir && trusted(dir, true),
        Err(_) => false,
    }
}

pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache in `dir` (absolute), creating the directory 0700 when missing. `None` when it
    /// cannot be trusted.
    pub fn open(dir: &Path) -> Option<Cache> {
        if !dir.is_absolute() {
            log::debug!("cache directory {dir:?} is not absolute; cache off");
            return None;
        }
        if fs::symlink_metadata(dir).is_err() {
            let _ = fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir);
        }
        if !trusted_dir(dir) {
            log::debug!(
                "cache directory {dir:?} is not the user's own private directory; cache off"
            );
            return None;
        }
        Some(Cache {
            dir: dir.to_path_buf(),
        })
    }

    /// The file's modification time and size, to notice other processes' writes cheaply.
    pub fn stamp(&self) -> Option<(SystemTime, u64)> {
        fs::symlink_metadata(self.file())
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    }

    fn file(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// The live entries, or nothing when the file is missing or untrusted.
    pub fn load(&self) -> Vec<Entry> {
        use std::io::Read;
        let path = self.file();
        // Opened without following a symlink, then judged by what was opened (no race between
        // the check and the read).
        let Ok(mut f) = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        else {
            return Vec::new();
        };
        let Ok(m) = f.metadata() else {
            return Vec::new();
        };
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        if !m.file_type().is_file() || m.uid() != uid || m.mode() & 0o022 != 0 {
            log::debug!("cache file {path:?} is not the user's own private file; ignored");
            return Vec::new();
        }
        if m.len() > MAX_FILE_BYTES {
            return Vec::new();
        }
        let mut text = String::new();
        match f.read_to_string(&mut text) {
            Ok(_) => parse(&text, now_ms()),
            Err(_) => Vec::new(),
        }
    }

    /// Records a winner, valid for `ttl`.
    pub fn store(&self, name: &str, port: u16, ip: IpAddr, ttl: Duration) {
        let path = self.file();
        if fs::symlink_metadata(&path).is_ok() && !trusted(&path, false) {
            log::debug!("cache file {path:?} is not trusted; not written");
            return;
        }
        let entry = Entry {
            name: name.to_string(),
            port,
            ip,
            expires_ms: now_ms() + ttl.as_millis() as u64,
        };
        let text = render(&upsert(self.load(), entry));
        let tmp = self.dir.join(format!(".{FILE}.{}.tmp", std::process::id()));
        let written = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .and_then(|mut f| f.write_all(text.as_bytes()));
        let placed = written.and_then(|_| fs::rename(&tmp, &path));
        if let Err(e) = placed {
            log::debug!("cache file {path:?} not written: {e}");
            let _ = fs::remove_file(&tmp);
        }
    }
}

/// Winners from the cache for `name` whose address is one this process's resolver returned.
pub fn winners_for<'a>(entries: &'a [Entry], name: &str, returned: &[IpAddr]) -> Vec<&'a Entry> {
    entries
        .iter()
        .filter(|e| e.name == name && returned.contains(&e.ip))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dnsfo-cache-test-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn parse_render_roundtrip_and_expiry() {
        let e = vec![
            Entry {
                name: "a".into(),
                port: 80,
                ip: "127.0.0.3".parse().unwrap(),
                expires_ms: 2000,
            },
            Entry {
                name: "b".into(),
                port: 81,
                ip: "::1".parse().unwrap(),
                expires_ms: 500,
            },
        ];
        let text = render(&e);
        assert_eq!(parse(&text, 100), e);
        assert_eq!(parse(&text, 1000), e[..1].to_vec(), "expired dropped");
        assert!(parse(
            "garbage\na 80 127.0.0.1\na x 127.0.0.1 9\na 80 127.0.0.1 9 extra\n",
            0
        )
        .is_empty());
    }

    #[test]
    fn upsert_replaces_and_bounds() {
        let mut v = Vec::new();
        for i in 0..(MAX_ENTRIES + 20) {
            v = upsert(
                v,
                Entry {
                    name: format!("n{i}"),
                    port: 1,
                    ip: "127.0.0.1".parse().unwrap(),
                    expires_ms: i as u64,
                },
            );
        }
        assert_eq!(v.len(), MAX_ENTRIES);
        v = upsert(
            v,
            Entry {
                name: "n300".into(),
                port: 1,
                ip: "127.0.0.2".parse().unwrap(),
                expires_ms: 9999,
            },
        );
        assert_eq!(v.iter().filter(|e| e.name == "n300").count(), 1);
    }

    #[test]
    fn store_load_and_trust() {
        let d = tmpdir("trust");
        let c = Cache::open(&d).expect("fresh dir is trusted");
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
        c.store(
            "svc",
            80,
            "127.0.0.3".parse().unwrap(),
            Duration::from_secs(30),
        );
        let l = c.load();
        assert_eq!(l.len(), 1);
        assert_eq!(
            fs::metadata(d.join(FILE)).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Only addresses the resolver returned.
        assert_eq!(
            winners_for(&l, "svc", &["127.0.0.3".parse().unwrap()]).len(),
            1
        );
        assert!(winners_for(&l, "svc", &["127.0.0.4".parse().unwrap()]).is_empty());
        // Group-writable file: ignored and not written through.
        fs::set_permissions(d.join(FILE), fs::Permissions::from_mode(0o620)).unwrap();
        assert!(c.load().is_empty());
        c.store(
            "svc",
            81,
            "127.0.0.3".parse().unwrap(),
            Duration::from_secs(30),
        );
        fs::set_permissions(d.join(FILE), fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(c.load().len(), 1, "the untrusted file was left alone");
        // A symlinked directory is refused.
        let link = tmpdir("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        assert!(Cache::open(&link).is_none());
        // A group-writable directory is refused.
        fs::set_permissions(&d, fs::Permissions::from_mode(0o770)).unwrap();
        assert!(Cache::open(&d).is_none());
        let _ = fs::remove_file(&link);
        let _ = fs::remove_dir_all(&d);
    }
}
