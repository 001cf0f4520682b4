//! The one place for process-wide state: configuration, the name registry, connect health and
//! the per-fd table.
//!
//! Owns: the data and its locks, and what `fork()` does to those locks (taken before, released
//! or renewed after). Must never: hold a lock across a blocking call (every lock here guards
//! plain data for microseconds). When the state is made and the fork handlers that call these
//! are `crate::lifecycle`'s.

use crate::config::Config;
use crate::fdtable::FdTable;
use crate::forksafe::Renewable;
use crate::health::Health;
use crate::registry::Registry;
use parking_lot::{Mutex, RwLock};

pub struct State {
    pub config: Config,
    pub registry: Renewable<RwLock<Registry>>,
    pub health: Renewable<RwLock<Health>>,
    /// The shared winner cache and its last-read content (reloaded when the file changes).
    pub cache: Option<dnsfo_os::cachefile::Cache>,
    pub cached: Renewable<Mutex<CachedWinners>>,
}

#[derive(Default)]
pub struct CachedWinners {
    pub checked: Option<std::time::Instant>,
    pub stamp: Option<(std::time::SystemTime, u64)>,
    pub entries: Vec<dnsfo_core::cache::Entry>,
    /// When this process last shared each address's RTT.
    pub rtt_shared: std::collections::HashMap<std::net::SocketAddr, std::time::Instant>,
}

/// Sockets the program created; outside `State` because it is a large static table.
pub static FDS: FdTable = FdTable::new();

impl State {
    /// A fresh state for these settings (the cache opened when it can be trusted).
    pub fn new(config: Config) -> State {
        let cache = config
            .cache_dir
            .as_deref()
            .and_then(dnsfo_os::cachefile::Cache::open);
        State {
            config,
            registry: Renewable::new(RwLock::new(Registry::default())),
            health: Renewable::new(RwLock::new(Health::default())),
            cache,
            cached: Renewable::new(Mutex::new(CachedWinners::default())),
        }
    }

    /// Before `fork()`: takes every lock, so that no other thread is in the middle of an update
    /// when the process is copied (see `forksafe`). The guards are leaked: [`Self::unlock_after_fork`]
    /// or [`Self::renew_after_fork`] ends them.
    pub fn lock_for_fork(&self) {
        std::mem::forget(self.registry.write());
        std::mem::forget(self.health.write());
        std::mem::forget(self.cached.lock());
    }

    /// In the parent after `fork()`: its own threads are all there, so a plain unlock is right.
    ///
    /// # Safety
    /// Only after [`Self::lock_for_fork`] in this same thread, once.
    pub unsafe fn unlock_after_fork(&self) {
        // SAFETY: `lock_for_fork` acquired exactly these locks in this thread and leaked the
        // guards (the caller's promise); releasing them here is the matching unlock.
        unsafe {
            self.cached.force_unlock();
            self.health.force_unlock_write();
            self.registry.force_unlock_write();
        }
    }

    /// In the child after `fork()`: other threads' waits were copied with the locks, so each lock
    /// is replaced by a fresh one holding the same (consistent: nobody was updating it) data.
    ///
    /// # Safety
    /// Only in a fork child handler (single-threaded), after [`Self::lock_for_fork`], once.
    pub unsafe fn renew_after_fork(&self) {
        // SAFETY: single-threaded (the caller's promise); `lock_for_fork` held every lock, so the
        // data is whole, and it is moved (not copied) into the fresh lock; the old one is leaked.
        unsafe {
            self.registry
                .renew(|old| RwLock::new(std::ptr::read(old.data_ptr())));
            self.health
                .renew(|old| RwLock::new(std::ptr::read(old.data_ptr())));
            self.cached
                .renew(|old| Mutex::new(std::ptr::read(old.data_ptr())));
        }
    }
}
