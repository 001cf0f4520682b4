//! `DNSFO_STATS=1`: the summary line at exit; `DNSFO_STATS_FILE`: the same counters in Prometheus
//! text format, kept up to date by a small thread while the program runs (the counters are
//! `dnsfo_core::stats`).
//!
//! Owns: arming and writing the exit line, and the stats file's writer thread. Must never:
//! write anything unless asked, take a lock, or start a thread unless a stats file is asked for.

pub use dnsfo_core::stats::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Duration;

static SINK: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Arms the exit line; `log_file` is where it goes (stderr when `None`).
pub fn enable(log_file: Option<PathBuf>) {
    if SINK.set(log_file).is_ok() {
        crate::sys::at_exit(report);
    }
}

extern "C" fn report() {
    let Some(_entered) = crate::guard::enter() else {
        return;
    };
    let _ = crate::guard::contain(|| {
        let text = format!("{}\n", line());
        match SINK.get().and_then(|p| p.as_ref()) {
            Some(path) => {
                use std::io::Write;
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                {
                    let _ = f.write_all(text.as_bytes());
                }
            }
            None => crate::sys::write_all(2, text.as_bytes()),
        }
    });
}

/// The stats file as configured: its path template, refresh interval, and the pid of the
/// process that read the setting.
struct FileSetting {
    template: PathBuf,
    every: Duration,
    first_pid: u32,
    program: String,
}

static FILE: OnceLock<FileSetting> = OnceLock::new();
/// The pid whose writer thread runs (0: none).
static WRITER: AtomicU32 = AtomicU32::new(0);

/// Keeps `path` (`%p`: the pid) up to date every `every`, from a thread of its own, and writes it
/// a last time at exit.
pub fn enable_file(path: PathBuf, every: Duration) {
    let setting = FileSetting {
        template: path,
        every,
        first_pid: crate::sys::noted_pid(),
        program: crate::logging::program_name(),
    };
    if FILE.set(setting).is_ok() {
        crate::sys::at_exit(write_at_exit);
        start_writer();
    }
}

/// In a `fork()` child: its counters start from zero, and it writes its own file when the path
/// names the pid (without `%p` the file is its parent's). The thread starts at the child's
/// first count, not in the fork handler.
pub fn after_fork_child() {
    reset();
}

/// Counts `n` more (and, in a process that writes a stats file but has no writer yet: a fork
/// child, starts one).
pub fn add(counter: &std::sync::atomic::AtomicU64, n: u64) {
    dnsfo_core::stats::add(counter, n);
    if FILE.get().is_some() && WRITER.load(Relaxed) != crate::sys::noted_pid() {
        start_writer();
    }
}

/// The file this process writes, if any.
fn own_path() -> Option<PathBuf> {
    let f = FILE.get()?;
    let pid = crate::sys::noted_pid();
    let text = f.template.to_string_lossy();
    if text.contains("%p") {
        Some(PathBuf::from(text.replace("%p", &pid.to_string())))
    } else {
        (pid == f.first_pid).then(|| f.template.clone())
    }
}

fn start_writer() {
    let Some(f) = FILE.get() else { return };
    let pid = crate::sys::noted_pid();
    let old = WRITER.load(Relaxed);
    // Claimed once per process, also when it has no file of its own (a fork child of a path
    // without `%p`): later counts then cost two loads.
    if old == pid
        || WRITER.compare_exchange(old, pid, Relaxed, Relaxed).is_err()
        || own_path().is_none()
    {
        return;
    }
    let every = f.every;
    let spawned = std::thread::Builder::new()
        .name("dnsfo-stats".into())
        .spawn(move || {
            // Everything this thread calls goes straight to libc (its close, its rename).
            let Some(_entered) = crate::guard::enter() else {
                return;
            };
            // Every interval, changed or not: the file's timestamp says the process still runs.
            loop {
                let _ = crate::guard::contain(write_file);
                std::thread::sleep(every);
            }
        });
    if spawned.is_err() {
        log::debug!("stats file: no thread to write it; written at exit only");
    }
}

extern "C" fn write_at_exit() {
    let Some(_entered) = crate::guard::enter() else {
        return;
    };
    let _ = crate::guard::contain(write_file);
}

/// Writes the file whole and in place at once (a temporary file beside it, renamed over it):
/// a reader never sees half of it.
fn write_file() {
    let (Some(f), Some(path)) = (FILE.get(), own_path()) else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let text = prometheus(
        &f.program,
        crate::sys::noted_pid(),
        env!("CARGO_PKG_VERSION"),
        now,
    );
    // Unique per write: the exit's write may meet the thread's in the same process.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut tmp = path.clone().into_os_string();
    tmp.push(format!(
        ".tmp.{}.{}",
        crate::sys::noted_pid(),
        WRITES.fetch_add(1, Relaxed)
    ));
    let tmp = PathBuf::from(tmp);
    if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, &path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}
