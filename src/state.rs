//! The one place for process-wide state: configuration, the name registry, connect health and
//! the per-fd table.
//!
//! Owns: initialisation (once, on the first hook call that needs it, never at load time) and the
//! `fork()` protocol for the locks. Must never: hold a lock across a blocking call (every lock
//! here guards plain data for microseconds), or initialise itself re-entrantly (hooks reach this
//! only with the re-entrancy guard held).

use crate::config::Config;
use crate::fdtable::FdTable;
use crate::forksafe::Renewable;
use crate::health::Health;
use crate::registry::Registry;
use parking_lot::{Mutex, RwLock};
use std::sync::OnceLock;

pub struct State {
    pub config: Config,
    pub registry: Renewable<RwLock<Registry>>,
    pub health: Renewable<RwLock<Health>>,
    /// The shared winner cache and its last-read content (reloaded when the file changes).
    pub cache: Option<crate::cache::Cache>,
    pub cached: Renewable<Mutex<CachedWinners>>,
}

#[derive(Default)]
pub struct CachedWinners {
    pub checked: Option<std::time::Instant>,
    pub stamp: Option<(std::time::SystemTime, u64)>,
    pub entries: Vec<crate::cache::Entry>,
    /// When this process last shared each address's RTT.
    pub rtt_shared: std::collections::HashMap<std::net::SocketAddr, std::time::Instant>,
}

static STATE: OnceLock<State> = OnceLock::new();
/// This process's id as dnsfo last saw it (at start, after each `fork()`): a `vfork` child,
/// which shares dnsfo's memory but runs no fork handler, tells itself apart by it.
static PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// This process's id as of start-up or the last `fork()` (not updated in a `vfork` child).
pub fn pid() -> u32 {
    PID.load(std::sync::atomic::Ordering::Relaxed)
}
/// Sockets the program created; outside `State` because it is a large static table.
pub static FDS: FdTable = FdTable::new();

/// Set by [`pass_through_from_now_on`]: this process wants the network as it is.
static OFF: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on every hook of this process passes straight through (for `dnsfo check`, which must
/// see the network as a plain program does however the library got into it: `LD_PRELOAD` under
/// another file name, `/etc/ld.so.preload`).
pub fn pass_through_from_now_on() {
    OFF.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The state, initialised on first use; `None` when dnsfo is disabled.
pub fn get() -> Option<&'static State> {
    if OFF.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    let s = STATE.get_or_init(init);
    (!s.config.disabled && !crate::alloc::exhausted()).then_some(s)
}

fn init() -> State {
    crate::alloc::arm();
    PID.store(crate::sys::getpid(), std::sync::atomic::Ordering::Relaxed);
    crate::copies::init();
    let config = if crate::sys::secure_execution() {
        // The environment belongs to whoever started a setuid program: trust none of it.
        Config::default()
    } else {
        let (config, mut warnings) = Config::parse(|k| std::env::var_os(k));
        let names: Vec<String> = std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .collect();
        warnings.extend(crate::config::unknown_settings(
            names.iter().map(String::as_str),
        ));
        for w in warnings {
            crate::sys::write_all(2, format!("{w}\n").as_bytes());
        }
        config
    };
    crate::logging::init(&config);
    if config.stats && !config.disabled {
        crate::stats::enable(config.log_file.clone());
    }
    crate::sys::register_atfork(prepare_fork, after_fork, after_fork_child);
    log::debug!(
        "initialised: dnsfo {} in {}: {config}",
        env!("CARGO_PKG_VERSION"),
        std::env::args_os()
            .next()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let cache = config
        .cache_dir
        .as_deref()
        .and_then(crate::cache::Cache::open);
    State {
        config,
        registry: Renewable::new(RwLock::new(Registry::default())),
        health: Renewable::new(RwLock::new(Health::default())),
        cache,
        cached: Renewable::new(Mutex::new(CachedWinners::default())),
    }
}

/// `fork()`: take every lock first, so that no other thread is in the middle of an update when
/// the process is copied (see `forksafe`).
extern "C" fn prepare_fork() {
    crate::dial::reactor::prepare_fork();
    if let Some(s) = STATE.get() {
        std::mem::forget(s.registry.write());
        std::mem::forget(s.health.write());
        std::mem::forget(s.cached.lock());
    }
}

/// The parent: its own threads are all there, so a plain unlock is right.
extern "C" fn after_fork() {
    if let Some(s) = STATE.get() {
        // SAFETY: `prepare_fork` acquired exactly these locks in this thread and leaked the
        // guards; releasing them here is the matching unlock.
        unsafe {
            s.cached.force_unlock();
            s.health.force_unlock_write();
            s.registry.force_unlock_write();
        }
    }
    crate::dial::reactor::after_fork();
}

/// The child: other threads' waits were copied with the locks, so each lock is replaced by a
/// fresh one holding the same (consistent: nobody was updating it) data.
extern "C" fn after_fork_child() {
    PID.store(crate::sys::getpid(), std::sync::atomic::Ordering::Relaxed);
    if let Some(s) = STATE.get() {
        // SAFETY: a fork child handler, single-threaded; `prepare_fork` held every lock, so the
        // data is whole, and it is moved (not copied) into the fresh lock; the old one is leaked.
        unsafe {
            s.registry
                .renew(|old| RwLock::new(std::ptr::read(old.data_ptr())));
            s.health
                .renew(|old| RwLock::new(std::ptr::read(old.data_ptr())));
            s.cached
                .renew(|old| Mutex::new(std::ptr::read(old.data_ptr())));
        }
    }
    FDS.after_fork_child();
    crate::dial::reactor::after_fork_child();
    crate::resolver::after_fork_child();
}
