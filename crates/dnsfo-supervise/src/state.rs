//! The supervisor's memory, one place: the settings, the names the supervised programs can
//! know (`/etc/hosts`, and the DNS answers relayed to them), the health memory, and the shared
//! winner cache (the same file and format the library uses, so supervised and preloaded
//! programs learn from each other).
//!
//! Owns: reading `/etc/hosts` again when it changes, what an outcome teaches and shares. Must
//! never: hold a lock while waiting on the network, or know a name's address that neither the
//! hosts file nor an answer the program received gave.

use crate::dnsmsg::{Answer, TYPE_A};
use crate::hosts;
use dnsfo_core::cache::{self, Entry};
use dnsfo_core::config::Config;
use dnsfo_core::health::Health;
use dnsfo_core::outcome::{dead_after, failover_of, Outcome};
use dnsfo_core::registry::{Known, Registry, Scope};
use dnsfo_os::cachefile::Cache;
use parking_lot::{Mutex, RwLock};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// `/etc/hosts` and the shared cache are looked at again at most this often.
const RECHECK: Duration = Duration::from_secs(1);

#[derive(Default)]
struct FileStamp {
    checked: Option<Instant>,
    stamp: Option<(SystemTime, u64)>,
}

impl FileStamp {
    /// Has the file changed since the last look (looking at most once per [`RECHECK`])?
    fn changed(&mut self, now: Instant, read: impl FnOnce() -> Option<(SystemTime, u64)>) -> bool {
        if self
            .checked
            .is_some_and(|t| now.duration_since(t) < RECHECK)
        {
            return false;
        }
        self.checked = Some(now);
        let stamp = read();
        let changed = stamp != self.stamp;
        self.stamp = stamp;
        changed
    }
}

pub struct State {
    pub config: Config,
    registry: RwLock<Registry>,
    pub health: RwLock<Health>,
    cache: Option<Cache>,
    cached: Mutex<(FileStamp, Vec<Entry>)>,
    hosts_path: PathBuf,
    hosts: Mutex<FileStamp>,
}

impl State {
    pub fn new(config: Config, hosts_path: PathBuf) -> State {
        let cache = config.cache_dir.as_deref().and_then(Cache::open);
        let s = State {
            config,
            registry: RwLock::new(Registry::default()),
            health: RwLock::new(Health::default()),
            cache,
            cached: Mutex::new((FileStamp::default(), Vec::new())),
            hosts_path,
            hosts: Mutex::new(FileStamp::default()),
        };
        s.reread_hosts(Instant::now());
        s
    }

    /// Learns the hosts file again if it changed.
    fn reread_hosts(&self, now: Instant) {
        let path = &self.hosts_path;
        let stamp = || {
            let m = std::fs::metadata(path).ok()?;
            Some((m.modified().ok()?, m.len()))
        };
        if !self.hosts.lock().changed(now, stamp) {
            return;
        }
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        let names = hosts::parse(&text);
        let mut reg = self.registry.write();
        for (name, addrs) in &names {
            reg.learn(name, Scope::Both, addrs, None);
        }
        log::debug!("{}: {} names", path.display(), names.len());
    }

    /// Learns what a DNS answer the program received says (its addresses for one family).
    pub fn learn_answer(&self, a: &Answer) {
        if a.addrs.is_empty() {
            return; // "no such address" says nothing about what another family holds
        }
        let scope = if a.qtype == TYPE_A {
            Scope::V4
        } else {
            Scope::V6
        };
        log::debug!("{}: DNS answer {:?}", a.name, a.addrs);
        self.registry.write().learn(&a.name, scope, &a.addrs, None);
    }

    /// The name a connect to `ip` is for, when that is certain: `ip` is an address of exactly
    /// one known name (the supervisor sees no `getaddrinfo` answers to tell shared addresses
    /// apart, so a shared address is nobody's).
    pub fn name_for(&self, ip: IpAddr) -> Option<Arc<Known>> {
        self.reread_hosts(Instant::now());
        let reg = self.registry.read();
        if !reg.knows(&ip) {
            return None;
        }
        reg.name_for(&ip, || 0)
    }

    /// What other processes (supervised or preloaded) found for `name`, among `addrs` (the
    /// addresses this supervisor knows for it): their winners, dead addresses and RTTs.
    pub fn seed_from_cache(&self, name: &str, addrs: &[IpAddr]) {
        let Some(c) = &self.cache else { return };
        let now = Instant::now();
        let seeds = {
            let mut cached = self.cached.lock();
            if cached.0.changed(now, || c.stamp()) {
                cached.1 = c.load();
            }
            cache::Seeds::of(&cached.1, name, addrs, cache::now_ms())
        };
        if seeds.is_empty() || !self.health.read().seeds_news(name, &seeds, now) {
            return;
        }
        self.health.write().seed(name, &seeds, now);
    }

    /// The attempt delay for a connect of `name` to `candidates`: fixed (a `[name ...]` rule,
    /// or a configured delay that is not adaptive), else from the RTTs measured for them.
    pub fn delay_for(&self, name: &str, candidates: &[SocketAddr]) -> Duration {
        let c = &self.config;
        if let Some(d) = c.fixed_delay(name) {
            return d;
        }
        let rtt = self.health.read().rtt_of(candidates.iter().copied());
        dnsfo_core::plan::attempt_delay(rtt, c.min_attempt_delay, c.attempt_delay)
    }

    /// Records a connect's outcomes: the health memory, and after a failover the winner in
    /// the shared cache; RTT samples that changed are shared too.
    pub fn record(&self, name: &str, outcomes: &[Outcome], delay: Duration) {
        let now = Instant::now();
        let slow = dead_after(delay);
        if let (Some(c), Some((win, dead))) = (&self.cache, failover_of(outcomes, slow)) {
            c.store_failover(name, win.port(), win.ip(), &dead, self.config.dead_ttl);
        }
        if self.health.read().unchanged_by(name, outcomes, now) {
            return;
        }
        let measured =
            self.health
                .write()
                .record_outcomes(name, outcomes, slow, self.config.dead_ttl, now);
        if let Some(c) = &self.cache {
            for (addr, rtt) in measured {
                c.store_rtt(name, addr.port(), addr.ip(), rtt.srtt_us, rtt.var_us);
            }
        }
    }
}
