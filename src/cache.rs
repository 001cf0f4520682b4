//! The shared winner cache: lets a short-lived process start where the last one left off.
//!
//! One small text file, `winners`, in `DNSFO_CACHE_DIR` (default `$XDG_RUNTIME_DIR/dnsfo`, else
//! `~/.cache/dnsfo`): a line per (name, port) with the address that won and when the entry
//! expires (`name port ip expires_ms`), and a line per address found dead in that failover
//! (`name port ip expires_ms dead`), so that a later process connecting to the dead address goes
//! to the winner at once while its connects to other live addresses go where it chose (the
//! program's choice stands); and a line per address whose round trip was measured
//! (`name port ip expires_ms rtt SRTT_US RTTVAR_US`), so that a new process starts with an
//! attempt delay fit for the network. Lines of older versions (no fifth field) are winners. Written atomically (temporary file + rename), so many writers never leave a torn
//! file; the last writer wins, which is fine for a hint.
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

use std::fs;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Entries kept at most (the ones that expire first are dropped to make room).
pub const MAX_ENTRIES: usize = 256;
const FILE: &str = "winners";
/// A file longer than this is not ours: it is ignored (and the content written never exceeds it).
const MAX_FILE_BYTES: u64 = 64 * 1024;
/// Temporary files are `.winners.<unique>.tmp`.
const TMP_PREFIX: &str = ".winners.";
const TMP_SUFFIX: &str = ".tmp";
/// A temporary file unchanged for this long belongs to a writer that died (a live one links and
/// renames it within microseconds): it is removed by the next writer.
pub const TMP_STALE: Duration = Duration::from_secs(3);
/// Directory entries looked at, at most, when removing stale temporary files.
const MAX_SWEEP_ENTRIES: usize = 4096;
/// Longest name stored (a DNS name has at most 253 characters).
const MAX_NAME_BYTES: usize = 253;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub port: u16,
    pub ip: IpAddr,
    /// Milliseconds since the Unix epoch.
    pub expires_ms: u64,
    pub kind: Kind,
}

/// What an entry says about its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// It won the last failover of (name, port).
    Winner,
    /// It was found dead in that failover.
    Dead,
    /// A connect to it succeeded with this kernel-measured RTT (µs).
    Rtt { srtt_us: u32, var_us: u32 },
}

impl Entry {
    fn is_rtt(&self) -> bool {
        matches!(self.kind, Kind::Rtt { .. })
    }

    /// Entries with the same key replace each other: one winner per (name, port), one line per
    /// dead address.
    fn same_key(&self, other: &Entry) -> bool {
        self.name == other.name
            && self.port == other.port
            && std::mem::discriminant(&self.kind) == std::mem::discriminant(&other.kind)
            && (self.kind == Kind::Winner || self.ip == other.ip)
    }
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

/// Parses the file's text; malformed lines are skipped, expired entries dropped; of more than
/// `MAX_ENTRIES`, the ones that expire last are kept.
pub fn parse(text: &str, now_ms: u64) -> Vec<Entry> {
    let mut entries: Vec<Entry> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let e = Entry {
                name: f.next()?.to_string(),
                port: f.next()?.parse().ok()?,
                ip: f.next()?.parse().ok()?,
                expires_ms: f.next()?.parse().ok()?,
                kind: match f.next() {
                    None => Kind::Winner,
                    Some("dead") => Kind::Dead,
                    Some("rtt") => Kind::Rtt {
                        srtt_us: f.next()?.parse().ok()?,
                        var_us: f.next()?.parse().ok()?,
                    },
                    Some(_) => return None,
                },
            };
            (f.next().is_none() && e.expires_ms > now_ms).then_some(e)
        })
        .collect();
    if entries.len() > MAX_ENTRIES {
        entries.sort_by_key(|e| std::cmp::Reverse(e.expires_ms));
        entries.truncate(MAX_ENTRIES);
    }
    entries
}

fn line(e: &Entry) -> String {
    let kind = match e.kind {
        Kind::Winner => String::new(),
        Kind::Dead => " dead".to_string(),
        Kind::Rtt { srtt_us, var_us } => format!(" rtt {srtt_us} {var_us}"),
    };
    format!("{} {} {} {}{kind}\n", e.name, e.port, e.ip, e.expires_ms)
}

pub fn render(entries: &[Entry]) -> String {
    entries.iter().map(line).collect()
}

/// Removes the entry that expires first (the earliest in the list among equals), RTT lines
/// before any other: a winner or a dead address saves a failover, an RTT only tunes a delay.
/// `rtt_only`: nothing but an RTT line may go.
fn drop_first_to_expire(entries: &mut Vec<Entry>, rtt_only: bool) -> Option<Entry> {
    let i = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| !rtt_only || e.is_rtt())
        .min_by_key(|(_, e)| (!e.is_rtt(), e.expires_ms))
        .map(|(i, _)| i)?;
    Some(entries.remove(i))
}

/// Replaces the entry with the same key (the winner of (name, port), or that address's dead or
/// RTT line). The new entry always gets in: when the cache is full
/// (`MAX_ENTRIES`, or the file would outgrow `MAX_FILE_BYTES`), the other entries that expire
/// first are dropped to make room. The order of the entries kept does not change; the new one
/// comes last.
pub fn upsert(mut entries: Vec<Entry>, new: Entry) -> Vec<Entry> {
    entries.retain(|e| !e.same_key(&new));
    let mut bytes: usize = entries.iter().map(|e| line(e).len()).sum::<usize>() + line(&new).len();
    while entries.len() >= MAX_ENTRIES || bytes as u64 > MAX_FILE_BYTES {
        match drop_first_to_expire(&mut entries, new.is_rtt()) {
            Some(gone) => bytes -= line(&gone).len(),
            // A new RTT line never pushes a winner or a dead address out.
            None if new.is_rtt() => return entries,
            None => break,
        }
    }
    entries.push(new);
    entries
}

/// A name that fits the file's format: one field, printable, no longer than a DNS name.
fn storable_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name.bytes().all(|b| b.is_ascii_graphic() || b >= 0x80)
        && !name.chars().any(char::is_whitespace)
}

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
            log::debug!(
                "cache directory {dir:?} is not the user's own private directory; cache off"
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
        let entry = |ip: IpAddr, dead: bool| Entry {
            name: name.to_string(),
            port,
            ip,
            expires_ms,
            kind: if dead { Kind::Dead } else { Kind::Winner },
        };
        self.rewrite(name, |mut entries| {
            // The winner is no longer dead.
            entries.retain(|e| {
                !(e.kind == Kind::Dead && e.name == name && e.port == port && e.ip == won)
            });
            for ip in dead
                .iter()
                .filter(|ip| **ip != won)
                .take(MAX_DEAD_PER_FAILOVER)
            {
                entries = upsert(entries, entry(*ip, true));
            }
            upsert(entries, entry(won, false))
        });
    }

    /// Reads the file (if trusted), lets `change` make the new entries, and replaces the file
    /// with them: the one write path of every store.
    fn rewrite(&self, name: &str, change: impl FnOnce(Vec<Entry>) -> Vec<Entry>) {
        let path = self.file();
        if !storable_name(name) {
            log::debug!("cache: name {name:?} does not fit the file; not stored");
            return;
        }
        let entries = match open_existing(&path) {
            Existing::Missing => Vec::new(),
            Existing::Trusted(f, m) => read_entries(f, &m),
            Existing::Untrusted => {
                log::debug!("cache file {path:?} is not trusted; not written");
                return;
            }
        };
        sweep_stale_tmp(&self.dir, SystemTime::now());
        let text = render(&change(entries));
        if let Err(e) = replace(&self.dir, &path, text.as_bytes()) {
            log::debug!("cache file {path:?} not written: {e}");
        }
    }
}

/// RTT lines live this long: a network's round trips change slowly, and a stale one only sets
/// the first attempt delay of a process (clamped, and replaced by its own measurement).
pub const RTT_TTL: Duration = Duration::from_secs(600);

impl Cache {
    /// Records the RTT measured for a connect to (name, port, ip).
    pub fn store_rtt(&self, name: &str, port: u16, ip: IpAddr, srtt_us: u32, var_us: u32) {
        let entry = Entry {
            name: name.to_string(),
            port,
            ip,
            expires_ms: now_ms().saturating_add(RTT_TTL.as_millis() as u64),
            kind: Kind::Rtt { srtt_us, var_us },
        };
        self.rewrite(name, |entries| upsert(entries, entry));
    }
}

/// Dead addresses recorded per failover at most (a name with many dead addresses must not
/// push everyone else's winners out).
const MAX_DEAD_PER_FAILOVER: usize = 8;

/// Winners from the cache for `name` whose address is one this process's resolver returned.
pub fn winners_for<'a>(entries: &'a [Entry], name: &str, returned: &[IpAddr]) -> Vec<&'a Entry> {
    entries
        .iter()
        .filter(|e| e.kind == Kind::Winner && e.name == name && returned.contains(&e.ip))
        .collect()
}

/// Addresses the cache says are dead for `name`, among those this process's resolver returned.
pub fn dead_for<'a>(entries: &'a [Entry], name: &str, returned: &[IpAddr]) -> Vec<&'a Entry> {
    entries
        .iter()
        .filter(|e| e.kind == Kind::Dead && e.name == name && returned.contains(&e.ip))
        .collect()
}

/// Measured RTTs from the cache for `name`, for addresses this process's resolver returned only.
pub fn rtts_for<'a>(entries: &'a [Entry], name: &str, returned: &[IpAddr]) -> Vec<&'a Entry> {
    entries
        .iter()
        .filter(|e| matches!(e.kind, Kind::Rtt { .. }))
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
                kind: Kind::Winner,
            },
            Entry {
                name: "b".into(),
                port: 81,
                ip: "::1".parse().unwrap(),
                expires_ms: 500,
                kind: Kind::Winner,
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
    fn dead_addresses_roundtrip_and_have_their_own_lines() {
        let now = 1_000;
        let text =
            "svc 80 127.0.0.3 5000\nsvc 80 127.0.0.2 5000 dead\nsvc 80 127.0.0.4 5000 dead\n\
                    svc 80 127.0.0.5 5000 alive\n";
        let e = parse(text, now);
        assert_eq!(
            e.len(),
            3,
            "an unknown fifth field is a malformed line: {e:?}"
        );
        assert_eq!(parse(&render(&e), now), e);
        let returned: Vec<IpAddr> = ["127.0.0.2", "127.0.0.3"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let w = winners_for(&e, "svc", &returned);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].ip, returned[1]);
        let d = dead_for(&e, "svc", &returned);
        assert_eq!(d.len(), 1, "only dead addresses the resolver returned");
        assert_eq!(d[0].ip, returned[0]);
        // A new winner replaces the winner only; a dead line replaces that dead line only.
        let mut new = e[0].clone();
        new.ip = "127.0.0.9".parse().unwrap();
        let e2 = upsert(e.clone(), new);
        assert_eq!(e2.len(), 3);
        assert_eq!(e2.iter().filter(|x| x.kind == Kind::Dead).count(), 2);
    }

    #[test]
    fn rtt_lines_roundtrip_and_count_only_for_returned_addresses() {
        let now = 1_000;
        let text = "svc 80 127.0.0.3 5000 rtt 850 120\nsvc 80 127.0.0.4 5000 rtt 9 1\n\
                    svc 80 127.0.0.5 5000 rtt x 1\nsvc 80 127.0.0.6 5000 rtt 1\n";
        let e = parse(text, now);
        assert_eq!(e.len(), 2, "malformed rtt lines are skipped: {e:?}");
        assert_eq!(parse(&render(&e), now), e);
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        // 127.0.0.4 is in the file but not in this process's answer: its history is not used.
        let r = rtts_for(&e, "svc", &[ip("127.0.0.3"), ip("127.0.0.9")]);
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].kind,
            Kind::Rtt {
                srtt_us: 850,
                var_us: 120
            }
        );
        assert!(rtts_for(&e, "other", &[ip("127.0.0.3")]).is_empty());
        // An rtt line is neither a winner nor dead; a new measurement replaces the old one only.
        assert!(winners_for(&e, "svc", &[ip("127.0.0.3")]).is_empty());
        assert!(dead_for(&e, "svc", &[ip("127.0.0.3")]).is_empty());
        let mut new = e[0].clone();
        new.kind = Kind::Rtt {
            srtt_us: 900,
            var_us: 100,
        };
        let e2 = upsert(e.clone(), new);
        assert_eq!(e2.len(), 2);
        // Full: RTT lines go first; an RTT line never pushes a winner out.
        let mut full: Vec<Entry> = (0..MAX_ENTRIES)
            .map(|i| entry(&format!("w{i}.test"), 2_000 + i as u64))
            .collect();
        let rtt = |name: &str, exp: u64| Entry {
            kind: Kind::Rtt {
                srtt_us: 5,
                var_us: 1,
            },
            ..entry(name, exp)
        };
        full = upsert(full, rtt("r.test", 9_999_999));
        assert_eq!(full.len(), MAX_ENTRIES);
        assert!(
            !full.iter().any(|x| x.name == "r.test"),
            "no room made for an RTT line"
        );
        full.pop();
        full = upsert(full, rtt("r.test", 9_999_999));
        assert!(full.iter().any(|x| x.name == "r.test"));
        full = upsert(full, entry("new.test", 3_000));
        assert!(full.iter().any(|x| x.name == "new.test"));
        assert!(
            !full.iter().any(|x| x.name == "r.test"),
            "the RTT line went first"
        );
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
                    kind: Kind::Winner,
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
                kind: Kind::Winner,
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

    fn entry(name: &str, expires_ms: u64) -> Entry {
        Entry {
            name: name.into(),
            port: 7000,
            ip: "127.0.0.3".parse().unwrap(),
            expires_ms,
            kind: Kind::Winner,
        }
    }

    /// Runs `f` on another thread and fails (instead of hanging the test run) when it takes
    /// longer than `limit`.
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
    fn full_cache_drops_what_expires_first_and_keeps_the_new_winner() {
        let far = now_ms() + 86_400_000;
        // Full of long-lived entries; one of them expires a little earlier than the rest.
        let mut v: Vec<Entry> = (0..MAX_ENTRIES)
            .map(|i| entry(&format!("long{i}"), far + i as u64))
            .collect();
        v[100].expires_ms = far - 5;
        let new = entry("svc", now_ms() + 30_000);
        let out = upsert(v.clone(), new.clone());
        assert_eq!(out.len(), MAX_ENTRIES);
        assert_eq!(out.last(), Some(&new), "the new winner is kept");
        assert!(
            !out.iter().any(|e| e.name == "long100"),
            "the first to expire went"
        );
        assert_eq!(
            out.iter().filter(|e| e.name.starts_with("long")).count(),
            MAX_ENTRIES - 1
        );
        // The rest keep their order.
        let kept: Vec<&str> = out[..MAX_ENTRIES - 1]
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        let want: Vec<String> = (0..MAX_ENTRIES)
            .filter(|&i| i != 100)
            .map(|i| format!("long{i}"))
            .collect();
        assert_eq!(kept, want);
        // Replacing an existing key in a full cache drops nothing else.
        let again = upsert(out.clone(), entry("long7", far + 1_000));
        assert_eq!(again.len(), MAX_ENTRIES);
        assert!(again.iter().any(|e| e.name == "svc"));
        assert_eq!(again.iter().filter(|e| e.name == "long7").count(), 1);
    }

    #[test]
    fn full_by_size_drops_what_expires_first() {
        let far = now_ms() + 86_400_000;
        let long = "x".repeat(MAX_NAME_BYTES - 4);
        let v: Vec<Entry> = (0..MAX_ENTRIES)
            .map(|i| entry(&format!("{long}{i:03}"), far - i as u64))
            .collect();
        assert!(
            render(&v).len() as u64 > MAX_FILE_BYTES,
            "the test needs an oversize cache"
        );
        let new = entry("svc", now_ms() + 30_000);
        let out = upsert(v, new.clone());
        assert!(render(&out).len() as u64 <= MAX_FILE_BYTES);
        assert_eq!(out.last(), Some(&new));
        // Those expiring first (the highest numbers here) went; the survivors are the latest.
        let n = out.len() - 1;
        let want: Vec<String> = (0..n).map(|i| format!("{long}{i:03}")).collect();
        let got: Vec<&str> = out[..n].iter().map(|e| e.name.as_str()).collect();
        assert_eq!(got, want);
        // Parsing an over-long list keeps the entries that expire last.
        let text: String = (0..MAX_ENTRIES + 10)
            .map(|i| line(&entry(&format!("n{i}"), far + i as u64)))
            .collect();
        let parsed = parse(&text, 0);
        assert_eq!(parsed.len(), MAX_ENTRIES);
        assert!(parsed.iter().all(|e| e.expires_ms >= far + 10));
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
        fs::write(&target, line(&entry("svc", now_ms() + 60_000))).unwrap();
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
}
