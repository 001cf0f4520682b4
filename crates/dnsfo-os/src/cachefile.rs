//! The shared winner cache's file: trust checks, bounds on what is read, and the atomic replace.
//!
//! One small text file, `winners`, in `DNSFO_CACHE_DIR` (default `$XDG_RUNTIME_DIR/dnsfo`, else
//! `~/.cache/dnsfo`); its lines are `dnsfo_core::cache`'s. Written atomically (temporary file +
//! rename), so many writers never leave a torn file; the last writer wins, which is fine for a hint.
//!
//! Owns: the file's format, its trust checks and its bounds. Must never: trust a directory or
//! file that is not the user's own, is group- or world-writable, or is reached through a
//! symlink; write through anything it does not trust; or add an address: a cached winner is
//! used only if this process's resolver returned it for that name (the caller checks).
//!
//! Robustness rules:
//! - **Regular files only.** The file is opened with `O_NONBLOCK | O_NOFOLLOW` and judged by
//!   `fstat` on the opened fd before anything is read: a FIFO, socket, device or symlink in its
//!   place is ignored (and never written through or replaced), and opening it never blocks.
//! - **Full means the entries that expire first go.** A new winner always gets in: when the
//!   cache holds `MAX_ENTRIES` entries (or would outgrow `MAX_FILE_BYTES`), the entries that
//!   expire first are dropped to make room.
//! - **No temporary file left behind.** The new content is written to an unnamed file
//!   (`O_TMPFILE`, gone with the process if it dies before the rename), then given a name unique
//!   to this attempt (pid, clock, counter) and renamed over `winners` at once; every failure
//!   unlinks that name. Where `O_TMPFILE` or `/proc` is missing, a named file (unique, `O_EXCL`)
//!   is used, unlinked on every failure. A process killed in between (`SIGKILL` between link and
//!   rename) can still leave one: each writer first removes the user's own `.winners.*.tmp`
//!   regular files that have not changed for `TMP_STALE` (leftovers of crashed processes and of
//!   older versions, whose per-pid names also made a reused pid fail forever).

use dnsfo_core::cache::{
    after_failover, now_ms, parse, render, rtt_entry, storable_name, upsert, Entry, MAX_FILE_BYTES,
};
use std::fs;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const FILE: &str = "winners";
/// Temporary files are `.winners.<unique>.tmp`.
const TMP_PREFIX: &str = ".winners.";
const TMP_SUFFIX: &str = ".tmp";
/// A temporary file unchanged for this long belongs to a writer that died (a live one links and
/// renames it within microseconds): it is removed by the next writer.
pub const TMP_STALE: Duration = Duration::from_secs(3);
/// Directory entries looked at, at most, when removing stale temporary files.
const MAX_SWEEP_ENTRIES: usize = 4096;

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// The user's own, and not group- or world-writable.
fn private(m: &fs::Metadata) -> bool {
    m.uid() == euid() && m.mode() & 0o022 == 0
}

/// Is this path a directory of the user's own, not group/world-writable, and not a symlink?
fn trusted_dir_entry(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_dir() && private(&m))
}

/// Also refuses a directory whose path goes through a symlink anywhere.
fn trusted_dir(dir: &Path) -> bool {
    match fs::canonicalize(dir) {
        Ok(real) => real == dir && trusted_dir_entry(dir),
        Err(_) => false,
    }
}

/// What is at the cache file's path.
enum Existing {
    /// Nothing: a writer may create it.
    Missing,
    /// Something dnsfo must neither read nor write through: a symlink, FIFO, socket, device or
    /// directory, a file of another user or writable by others, or one that cannot be opened.
    Untrusted,
    /// The user's own private regular file, opened for reading, with its `fstat`.
    Trusted(fs::File, fs::Metadata),
}

/// Opens `path` for reading without following a symlink and without blocking (a FIFO opens at
/// once, a device's open cannot wait), then judges what was opened by `fstat` on that very fd,
/// before anything is read: nothing can be swapped in between.
fn open_existing(path: &Path) -> Existing {
    let opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path);
    let f = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Existing::Missing,
        // ELOOP: a symlink; ENXIO: a socket (or a FIFO without writer on a write open); EACCES...
        Err(_) => return Existing::Untrusted,
    };
    match f.metadata() {
        Ok(m) if m.file_type().is_file() && private(&m) => Existing::Trusted(f, m),
        _ => Existing::Untrusted,
    }
}

/// The live entries of an opened, trusted file; nothing when it is too long or not text.
fn read_entries(f: fs::File, m: &fs::Metadata) -> Vec<Entry> {
    if m.len() > MAX_FILE_BYTES {
        return Vec::new();
    }
    // Bounded even when the file grows after the fstat.
    let mut bytes = Vec::new();
    if f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).is_err()
        || bytes.len() as u64 > MAX_FILE_BYTES
    {
        return Vec::new();
    }
    match std::str::from_utf8(&bytes) {
        Ok(text) => parse(text, now_ms()),
        Err(_) => Vec::new(),
    }
}

/// A temporary file's name, unique to this attempt: pid, wall clock (ns) and a process-wide
/// counter, so neither a reused pid nor a second writer in the process can collide with it.
fn tmp_name() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!(
        "{TMP_PREFIX}{}.{ns:x}.{seq}{TMP_SUFFIX}",
        std::process::id()
    )
}

/// `.winners.<something>.tmp`: this version's temporary files and older versions'
/// (`.winners.PID.tmp`).
fn is_tmp_name(name: &[u8]) -> bool {
    name.len() > TMP_PREFIX.len() + TMP_SUFFIX.len()
        && name.starts_with(TMP_PREFIX.as_bytes())
        && name.ends_with(TMP_SUFFIX.as_bytes())
}

/// Removes, from `dir`, the user's own temporary regular files whose last change (ctime, which
/// nobody can set back) is more than `TMP_STALE` away from `now`: leftovers of writers that died
/// between link and rename. Returns how many were removed.
fn sweep_stale_tmp(dir: &Path, now: SystemTime) -> usize {
    let Ok(rd) = fs::read_dir(dir) else {
        return 0;
    };
    let now_ms = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let mut removed = 0;
    for ent in rd.take(MAX_SWEEP_ENTRIES).flatten() {
        if !is_tmp_name(ent.file_name().as_bytes()) {
            continue;
        }
        let path = ent.path();
        let Ok(m) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !m.file_type().is_file() || m.uid() != euid() {
            continue;
        }
        let changed_ms =
            (m.ctime().max(0) as u128) * 1000 + (m.ctime_nsec().max(0) as u128) / 1_000_000;
        if now_ms.abs_diff(changed_ms) > TMP_STALE.as_millis() && fs::remove_file(&path).is_ok() {
            log::debug!("cache: removed stale temporary file {path:?}");
            removed += 1;
        }
    }
    removed
}

/// Unlinks a temporary name when dropped, unless it was renamed away: every early return and
/// every error (and an unwind) cleans up.
struct TmpName<'a> {
    path: &'a Path,
    armed: bool,
}

impl Drop for TmpName<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(self.path);
        }
    }
}

/// How the temporary file is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TmpKind {
    /// `O_TMPFILE`, written, then linked to the unique name: no name exists while writing.
    Unnamed,
    /// A unique name created `O_EXCL`, then written.
    Named,
}

/// Where replacing the file failed.
#[derive(Debug)]
enum Failed {
    /// Making the temporary file (another kind of temporary file may work).
    Tmp(io::Error),
    /// Writing it or renaming it over the target (giving up).
    Write(io::Error),
}

/// Replaces `target` (in `dir`) with `text` atomically through the temporary name `tmp`, which
/// is gone again on every path out of here.
fn replace_via(
    dir: &Path,
    tmp: &Path,
    target: &Path,
    text: &[u8],
    kind: TmpKind,
) -> Result<(), Failed> {
    let mut guard = TmpName {
        path: tmp,
        armed: false,
    };
    match kind {
        TmpKind::Unnamed => {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .mode(0o600)
                .custom_flags(libc::O_TMPFILE)
                .open(dir)
                .map_err(Failed::Tmp)?;
            f.write_all(text).map_err(Failed::Write)?;
            link_unnamed(&f, tmp).map_err(Failed::Tmp)?;
            guard.armed = true;
        }
        TmpKind::Named => {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(tmp)
                .map_err(Failed::Tmp)?;
            guard.armed = true;
            f.write_all(text).map_err(Failed::Write)?;
        }
    }
    fs::rename(tmp, target).map_err(Failed::Write)?;
    guard.armed = false;
    Ok(())
}

/// Gives an `O_TMPFILE` file the name `tmp` (which must not exist), through `/proc/self/fd`
/// (`AT_EMPTY_PATH` would need a capability).
fn link_unnamed(f: &fs::File, tmp: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    let from = CString::new(format!("/proc/self/fd/{}", f.as_raw_fd()))?;
    let to = CString::new(tmp.as_os_str().as_bytes())?;
    // SAFETY: both are valid NUL-terminated paths; linkat has no other preconditions.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Replaces `target` with `text`: an unnamed temporary file first, a named one where the file
/// system or `/proc` cannot do that (or a name collided); a fresh unique name for each attempt.
fn replace(dir: &Path, target: &Path, text: &[u8]) -> io::Result<()> {
    replace_with(
        dir,
        target,
        text,
        &[TmpKind::Unnamed, TmpKind::Named, TmpKind::Named],
    )
}

fn replace_with(dir: &Path, target: &Path, text: &[u8], kinds: &[TmpKind]) -> io::Result<()> {
    let mut last = io::Error::from(io::ErrorKind::Unsupported);
    for &kind in kinds {
        match replace_via(dir, &dir.join(tmp_name()), target, text, kind) {
            Ok(()) => return Ok(()),
            Err(Failed::Tmp(e)) => last = e,
            Err(Failed::Write(e)) => return Err(e),
        }
    }
    Err(last)
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
            // A warning, not a detail: the operator set something up wrongly (or someone else
            // owns the directory), and winners are silently not shared.
            log::warn!(
                "cache directory {dir:?} is not the user's own private directory (owner, mode 0700, no symlink); cache off"
            );
            return None;
        }
        Some(Cache {
            dir: dir.to_path_buf(),
        })
    }

    /// The file's modification time and size, to notice other processes' writes cheaply;
    /// `None` when there is no trusted regular file.
    pub fn stamp(&self) -> Option<(SystemTime, u64)> {
        match open_existing(&self.file()) {
            Existing::Trusted(_, m) => Some((m.modified().ok()?, m.len())),
            Existing::Missing | Existing::Untrusted => None,
        }
    }

    fn file(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// The live entries, or nothing when the file is missing or untrusted.
    pub fn load(&self) -> Vec<Entry> {
        match open_existing(&self.file()) {
            Existing::Trusted(f, m) => read_entries(f, &m),
            Existing::Missing => Vec::new(),
            Existing::Untrusted => {
                log::debug!(
                    "cache file {:?} is not the user's own private regular file; ignored",
                    self.file()
                );
                Vec::new()
            }
        }
    }

    /// Records a winner, valid for `ttl`.
    pub fn store(&self, name: &str, port: u16, ip: IpAddr, ttl: Duration) {
        self.store_failover(name, port, ip, &[], ttl);
    }

    /// Records what a failover found, valid for `ttl`: the winner and the addresses found dead
    /// on the way (one write).
    pub fn store_failover(
        &self,
        name: &str,
        port: u16,
        won: IpAddr,
        dead: &[IpAddr],
        ttl: Duration,
    ) {
        let expires_ms = now_ms().saturating_add(ttl.as_millis() as u64);
        self.rewrite(name, |entries| {
            after_failover(entries, name, port, won, dead, expires_ms)
        });
    }

    /// Reads the file (if trusted), lets `change` make the new entries, and replaces the file
    /// with them: the one write path of every store.
    fn rewrite(&self, name: &str, change: impl FnOnce(Vec<Entry>) -> Vec<Entry>) {
        if !storable_name(name) {
            log::debug!("cache: name {name:?} does not fit the file; not stored");
            return;
        }
        if let Err(e) = self.replace_entries(change) {
            log::debug!("cache file {:?} not written: {e}", self.file());
        }
    }

    /// Reads the file (if trusted), lets `change` make the new entries, and replaces the file.
    fn replace_entries(&self, change: impl FnOnce(Vec<Entry>) -> Vec<Entry>) -> io::Result<()> {
        let path = self.file();
        let entries = match open_existing(&path) {
            Existing::Missing => Vec::new(),
            Existing::Trusted(f, m) => read_entries(f, &m),
            Existing::Untrusted => {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "not the user's own private regular file",
                ))
            }
        };
        sweep_stale_tmp(&self.dir, SystemTime::now());
        let text = render(&change(entries));
        replace(&self.dir, &path, text.as_bytes())
    }

    /// Removes every entry (`name` `None`) or those of `name`: winners, dead addresses and
    /// RTTs alike (after an outage, stale winners must not send new processes anywhere).
    /// Returns how many live entries went.
    pub fn forget(&self, name: Option<&str>) -> io::Result<usize> {
        let mut gone = 0;
        self.replace_entries(|mut entries| {
            let before = entries.len();
            entries.retain(|e| name.is_some_and(|n| e.name != n));
            gone = before - entries.len();
            entries
        })?;
        Ok(gone)
    }

    /// The directory the cache is in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Cache {
    /// Records the RTT measured for a connect to (name, port, ip).
    pub fn store_rtt(&self, name: &str, port: u16, ip: IpAddr, srtt_us: u32, var_us: u32) {
        let entry = rtt_entry(name, port, ip, srtt_us, var_us, now_ms());
        self.rewrite(name, |entries| upsert(entries, entry));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dnsfo_core::cache::{dead_for, rtts_for, winners_for, MAX_ENTRIES, MAX_NAME_BYTES};
    use std::os::unix::fs::PermissionsExt;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dnsfo-cache-test-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_failover_stores_its_winner_and_dead_addresses() {
        let d = tmpdir("failover");
        let c = Cache::open(&d).unwrap();
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        c.store_failover(
            "svc",
            80,
            ip("127.0.0.3"),
            &[ip("127.0.0.2")],
            Duration::from_secs(60),
        );
        let l = c.load();
        assert_eq!(l.len(), 2, "{l:?}");
        assert_eq!(dead_for(&l, "svc", &[ip("127.0.0.2")]).len(), 1);
        // Later the dead one wins: it is no longer listed dead.
        c.store_failover(
            "svc",
            80,
            ip("127.0.0.2"),
            &[ip("127.0.0.3")],
            Duration::from_secs(60),
        );
        let l = c.load();
        assert!(dead_for(&l, "svc", &[ip("127.0.0.2")]).is_empty(), "{l:?}");
        assert_eq!(winners_for(&l, "svc", &[ip("127.0.0.2")]).len(), 1);
        let _ = fs::remove_dir_all(&d);
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

    /// Runs `f` on another thread and fails (instead of hanging the test run) when it takes
    /// longer than `limit`.
    fn entry(name: &str, expires_ms: u64) -> Entry {
        Entry::winner(name, 7000, "127.0.0.3".parse().unwrap(), expires_ms)
    }

    fn bounded<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(limit)
            .expect("the cache call blocked (a FIFO opened without O_NONBLOCK?)")
    }

    fn listing(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn tmp_files(d: &Path) -> Vec<String> {
        listing(d)
            .into_iter()
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    fn mkfifo(p: &Path) {
        let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
        assert_eq!(
            // SAFETY: a valid NUL-terminated path.
            unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
            0,
            "mkfifo {p:?}"
        );
    }

    #[test]
    fn full_cache_on_disk_records_the_new_winner() {
        let d = tmpdir("full");
        let c = Cache::open(&d).unwrap();
        let far = now_ms() + 86_400_000;
        let v: Vec<Entry> = (0..MAX_ENTRIES)
            .map(|i| entry(&format!("long{i}"), far + i as u64))
            .collect();
        fs::write(d.join(FILE), render(&v)).unwrap();
        c.store(
            "svc",
            7000,
            "127.0.0.3".parse().unwrap(),
            Duration::from_secs(30),
        );
        let l = c.load();
        assert_eq!(l.len(), MAX_ENTRIES);
        assert!(l.iter().any(|e| e.name == "svc"), "new winner recorded");
        assert!(
            !l.iter().any(|e| e.name == "long0"),
            "the first to expire went"
        );
        assert!(tmp_files(&d).is_empty());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn fifo_socket_symlink_and_directory_are_ignored_without_blocking() {
        let d = tmpdir("special");
        let c = Cache::open(&d).unwrap();
        let target = d.join("real");
        fs::write(&target, render(&[entry("svc", now_ms() + 60_000)])).unwrap();
        type Make = fn(&Path, &Path);
        let cases: [(&str, Make); 4] = [
            ("fifo", |p, _| mkfifo(p)),
            ("socket", |p, _| {
                std::mem::forget(std::os::unix::net::UnixListener::bind(p).unwrap());
            }),
            ("symlink", |p, t| std::os::unix::fs::symlink(t, p).unwrap()),
            ("directory", |p, _| fs::create_dir(p).unwrap()),
        ];
        for (what, make) in cases {
            let path = d.join(FILE);
            make(&path, &target);
            let kind = fs::symlink_metadata(&path).unwrap().file_type();
            let dir = d.clone();
            let (stamp, loaded) = bounded(Duration::from_secs(5), move || {
                let c = Cache::open(&dir).unwrap();
                let r = (c.stamp(), c.load());
                c.store(
                    "svc",
                    7000,
                    "127.0.0.3".parse().unwrap(),
                    Duration::from_secs(30),
                );
                r
            });
            assert_eq!(stamp, None, "{what}: no stamp");
            assert!(loaded.is_empty(), "{what}: nothing read");
            assert_eq!(
                fs::symlink_metadata(&path).unwrap().file_type(),
                kind,
                "{what}: left in place, not replaced"
            );
            assert!(tmp_files(&d).is_empty(), "{what}: {:?}", listing(&d));
            if kind.is_dir() {
                fs::remove_dir(&path).unwrap();
            } else {
                fs::remove_file(&path).unwrap();
            }
        }
        // The symlink's target was never written through.
        assert_eq!(
            fs::read_to_string(&target).unwrap().lines().count(),
            1,
            "symlink target untouched"
        );
        // Control: a regular file works.
        c.store(
            "svc",
            7000,
            "127.0.0.3".parse().unwrap(),
            Duration::from_secs(30),
        );
        assert_eq!(c.load().len(), 1);
        assert!(c.stamp().is_some());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn open_of_a_fifo_never_blocks() {
        let d = tmpdir("fifo-open");
        fs::create_dir_all(&d).unwrap();
        let p = d.join("f");
        mkfifo(&p);
        let p2 = p.clone();
        let got = bounded(Duration::from_secs(5), move || {
            matches!(open_existing(&p2), Existing::Untrusted)
        });
        assert!(got, "a FIFO is untrusted");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn tmp_names_are_unique_and_recognised() {
        let a = tmp_name();
        let b = tmp_name();
        assert_ne!(a, b);
        for n in [&a, &b] {
            assert!(is_tmp_name(n.as_bytes()), "{n}");
            assert!(n.contains(&format!(".{}.", std::process::id())));
        }
        assert!(is_tmp_name(b".winners.1234.tmp"), "older versions' names");
        for n in [
            "winners",
            ".winners.tmp",
            ".winners..tmp",
            "winners.1.tmp",
            ".winners.1",
        ] {
            assert!(!is_tmp_name(n.as_bytes()), "{n}");
        }
    }

    #[test]
    fn store_leaves_no_temporary_file_even_when_the_rename_fails() {
        let d = tmpdir("norename");
        fs::create_dir_all(&d).unwrap();
        // A non-empty directory in the target's place: the rename fails after the temporary
        // file got its name.
        let target = d.join("busy");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("x"), "x").unwrap();
        for kinds in [&[TmpKind::Unnamed][..], &[TmpKind::Named][..]] {
            assert!(replace_with(&d, &target, b"data\n", kinds).is_err());
            assert_eq!(listing(&d), vec!["busy".to_string()], "{kinds:?}");
        }
        // Both kinds work where the rename can happen.
        for kinds in [&[TmpKind::Unnamed][..], &[TmpKind::Named][..]] {
            let ok = d.join("ok");
            replace_with(&d, &ok, b"data\n", kinds).unwrap();
            assert_eq!(fs::read_to_string(&ok).unwrap(), "data\n");
            assert_eq!(
                fs::metadata(&ok).unwrap().permissions().mode() & 0o777,
                0o600
            );
            assert!(tmp_files(&d).is_empty(), "{kinds:?}: {:?}", listing(&d));
            fs::remove_file(ok).unwrap();
        }
        // A directory that cannot be written to: nothing created, an error returned.
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn stale_temporary_files_of_the_user_are_swept_and_nothing_else() {
        let d = tmpdir("sweep");
        let c = Cache::open(&d).unwrap();
        // What crashed writers leave: this version's and older versions' names.
        let stale = [".winners.4242.tmp", ".winners.7.1a2b.0.tmp"];
        for n in stale {
            fs::write(d.join(n), "x").unwrap();
        }
        // Not ours to remove: other names, a directory and a symlink with a matching name.
        fs::write(d.join("keep.tmp"), "x").unwrap();
        fs::create_dir(d.join(".winners.dir.tmp")).unwrap();
        std::os::unix::fs::symlink(d.join("keep.tmp"), d.join(".winners.link.tmp")).unwrap();
        // Fresh files (a writer at this very instant) stay.
        assert_eq!(sweep_stale_tmp(&d, SystemTime::now()), 0);
        let later = SystemTime::now() + TMP_STALE + Duration::from_secs(1);
        let earlier = SystemTime::now() - TMP_STALE - Duration::from_secs(1);
        assert_eq!(sweep_stale_tmp(&d, earlier), stale.len(), "clock set back");
        for n in stale {
            fs::write(d.join(n), "x").unwrap();
        }
        assert_eq!(sweep_stale_tmp(&d, later), stale.len());
        assert_eq!(
            listing(&d),
            vec![".winners.dir.tmp", ".winners.link.tmp", "keep.tmp"]
        );
        // Another user's file with a matching name stays (needs root to make one).
        if euid() == 0 {
            let foreign = d.join(".winners.99.tmp");
            fs::write(&foreign, "x").unwrap();
            std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
            assert_eq!(sweep_stale_tmp(&d, later), 0);
            assert!(foreign.exists());
            fs::remove_file(foreign).unwrap();
        }
        // A writer sweeps: a stale leftover is gone after a store (ctime cannot be set back, so
        // wait it out).
        fs::write(d.join(".winners.4242.tmp"), "x").unwrap();
        std::thread::sleep(TMP_STALE + Duration::from_millis(200));
        c.store(
            "svc",
            7000,
            "127.0.0.3".parse().unwrap(),
            Duration::from_secs(30),
        );
        assert!(!d.join(".winners.4242.tmp").exists());
        assert_eq!(c.load().len(), 1);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_reused_pid_never_blocks_writing() {
        let d = tmpdir("pidreuse");
        let c = Cache::open(&d).unwrap();
        // A fresh leftover named as older versions named this process's temporary file.
        let mine = d.join(format!(".winners.{}.tmp", std::process::id()));
        fs::write(&mine, "x").unwrap();
        for port in [1, 2, 3] {
            c.store(
                "svc",
                port,
                "127.0.0.3".parse().unwrap(),
                Duration::from_secs(30),
            );
        }
        assert_eq!(c.load().len(), 3, "every write went through");
        assert_eq!(tmp_files(&d).len(), 1, "only the (fresh) leftover remains");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn names_that_do_not_fit_the_format_are_not_stored() {
        let d = tmpdir("names");
        let c = Cache::open(&d).unwrap();
        let long = "a".repeat(MAX_NAME_BYTES + 1);
        for bad in [
            "",
            "a b",
            "a\nevil 7000 127.0.0.9 99999999999999",
            "a\tb",
            &long,
        ] {
            c.store(
                bad,
                7000,
                "127.0.0.3".parse().unwrap(),
                Duration::from_secs(30),
            );
        }
        assert!(c.load().is_empty());
        assert!(!d.join(FILE).exists());
        c.store(
            "svc.test",
            7000,
            "127.0.0.3".parse().unwrap(),
            Duration::from_secs(30),
        );
        assert_eq!(c.load().len(), 1);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn rtt_lines_are_stored_beside_winners() {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let d = tmpdir("rtt");
        let c = Cache::open(&d).unwrap();
        c.store_rtt("svc", 80, ip("127.0.0.3"), 850, 120);
        c.store("svc", 80, ip("127.0.0.3"), Duration::from_secs(60));
        let l = c.load();
        assert_eq!(l.len(), 2, "{l:?}");
        assert_eq!(rtts_for(&l, "svc", &[ip("127.0.0.3")]).len(), 1);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn forget_removes_a_name_or_everything() {
        let d = tmpdir("forget");
        let c = Cache::open(&d).unwrap();
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        c.store_failover(
            "a.test",
            80,
            ip("127.0.0.3"),
            &[ip("127.0.0.2")],
            Duration::from_secs(60),
        );
        c.store("b.test", 80, ip("127.0.0.4"), Duration::from_secs(60));
        assert_eq!(
            c.forget(Some("a.test")).unwrap(),
            2,
            "the winner and the dead line"
        );
        let l = c.load();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].name, "b.test");
        assert_eq!(c.forget(Some("nothing.test")).unwrap(), 0);
        assert_eq!(c.forget(None).unwrap(), 1);
        assert!(c.load().is_empty());
        // An untrusted file is left alone, and says so.
        c.store("b.test", 80, ip("127.0.0.4"), Duration::from_secs(60));
        fs::set_permissions(d.join(FILE), fs::Permissions::from_mode(0o666)).unwrap();
        assert!(c.forget(None).is_err());
        fs::set_permissions(d.join(FILE), fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(c.load().len(), 1);
        let _ = fs::remove_dir_all(&d);
    }
}
