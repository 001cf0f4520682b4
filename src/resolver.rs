//! Re-resolution: asking DNS afresh (hickory-resolver) when every address dnsfo knows for a name
//! has failed, so a long-running program that resolved once follows a service that moved.
//!
//! Owns: hickory's runtime and resolver (started on first need, never at load time; one worker
//! thread that never runs the program's signal handlers and whose sockets bypass dnsfo's hooks;
//! rebuilt in a `fork()`ed child, which inherits the memory but not the thread), and a short
//! negative cache. Must never: be asked about an IP literal (the registry only holds names),
//! run inside libuv's thread pool (only connect paths call it), or wait longer than the
//! caller's budget.

use crate::config::Config;
use crate::forksafe::SpinLock;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A failed lookup is not repeated for this long.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// One lookup never takes longer than this, whatever the budget.
pub const MAX_WAIT: Duration = Duration::from_secs(3);

/// A fresh answer.
#[derive(Clone, Debug)]
pub struct Answer {
    pub addrs: Vec<IpAddr>,
    pub valid_until: Instant,
}

struct Engine {
    pid: u32,
    runtime: tokio::runtime::Runtime,
    resolver: TokioResolver,
}

static ENGINE: SpinLock<Option<Engine>> = SpinLock::new(None);
static NEGATIVE: SpinLock<Option<HashMap<String, Instant>>> = SpinLock::new(None);

fn build(config: &Config) -> Option<Engine> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(1)
        .thread_name("dnsfo-dns")
        .on_thread_start(|| {
            // dnsfo's own thread: every hook it reaches passes through; no program signals.
            std::mem::forget(crate::guard::enter());
            crate::sys::block_all_signals();
        })
        .enable_all()
        .build()
        .map_err(|e| log::warn!("cannot start the resolver runtime: {e}"))
        .ok()?;
    let builder = match config.nameserver {
        Some(ns) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = ns.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = ns.port();
            let server = NameServerConfig::new(ns.ip(), true, vec![udp, tcp]);
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![server]),
                TokioRuntimeProvider::default(),
            )
        }
        None => TokioResolver::builder_tokio()
            .map_err(|e| log::warn!("cannot read the system resolver configuration: {e}"))
            .ok()?,
    };
    let mut builder = builder;
    let opts = builder.options_mut();
    opts.timeout = Duration::from_secs(1);
    opts.attempts = 2;
    // Always ask DNS: the hosts file already gave its answer through libc.
    opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
    let resolver = {
        let _ctx = runtime.enter();
        builder
            .build()
            .map_err(|e| log::warn!("cannot build the resolver: {e}"))
            .ok()?
    };
    Some(Engine {
        pid: std::process::id(),
        runtime,
        resolver,
    })
}

/// The resolver and a handle to drive it, building them on first use (again in a forked child).
fn engine(config: &Config) -> Option<(TokioResolver, tokio::runtime::Handle)> {
    let mut e = ENGINE.lock();
    if e.as_ref().is_some_and(|e| e.pid != std::process::id()) {
        // Inherited from the parent without its thread: dropping it would wait for that
        // thread forever. Leak it instead (once per fork).
        std::mem::forget(e.take());
    }
    if e.is_none() {
        *e = build(config);
    }
    e.as_ref()
        .map(|e| (e.resolver.clone(), e.runtime.handle().clone()))
}

/// In a `fork()`ed child no other thread exists, so a lock found held was held by a thread
/// that is gone: release it (the data behind it is plain and consistent between statements).
pub fn after_fork_child() {
    // SAFETY: the holder (if any) does not exist in this process; nobody else can be inside.
    unsafe {
        ENGINE.force_unlock();
        NEGATIVE.force_unlock();
    }
}

fn negative(name: &str, now: Instant) -> bool {
    let mut n = NEGATIVE.lock();
    let map = n.get_or_insert_with(HashMap::new);
    map.retain(|_, until| *until > now);
    map.contains_key(name)
}

fn remember_failure(name: &str) {
    let mut n = NEGATIVE.lock();
    let map = n.get_or_insert_with(HashMap::new);
    if map.len() < 1024 {
        map.insert(name.to_string(), Instant::now() + NEGATIVE_TTL);
    }
}

async fn lookup(resolver: TokioResolver, name: String, wait: Duration) -> Option<Answer> {
    let fqdn = if name.ends_with('.') {
        name.clone()
    } else {
        format!("{name}.")
    };
    match tokio::time::timeout(wait, resolver.lookup_ip(fqdn.as_str())).await {
        Ok(Ok(l)) => {
            let addrs: Vec<IpAddr> = l.iter().map(crate::sys::canonical_ip).collect();
            (!addrs.is_empty()).then(|| Answer {
                addrs,
                valid_until: l.valid_until(),
            })
        }
        Ok(Err(e)) => {
            log::debug!("re-resolving {name}: {e}");
            None
        }
        Err(_) => {
            log::debug!(
                "re-resolving {name}: no answer within {} ms",
                wait.as_millis()
            );
            None
        }
    }
}

/// Asks DNS for `name` now, waiting at most `budget` (capped at [`MAX_WAIT`]). For callers that
/// may block: a blocking connect, whose thread waits anyway.
pub fn resolve_now(config: &Config, name: &str, budget: Duration) -> Option<Answer> {
    if negative(name, Instant::now()) {
        return None;
    }
    let (resolver, handle) = engine(config)?;
    let wait = budget.min(MAX_WAIT);
    let answer = handle.block_on(lookup(resolver, name.to_string(), wait));
    if answer.is_none() {
        remember_failure(name);
    }
    log::debug!(
        "re-resolved {name}: {:?}",
        answer.as_ref().map(|a| &a.addrs)
    );
    answer
}

/// Asks DNS for `name` in the background and hands the answer (or `None`) to `done`, on the
/// resolver's thread. For the reactor, which must never wait.
pub fn resolve_later(
    config: &Config,
    name: &str,
    done: impl FnOnce(Option<Answer>) + Send + 'static,
) {
    if negative(name, Instant::now()) {
        return done(None);
    }
    let Some((resolver, handle)) = engine(config) else {
        return done(None);
    };
    let name = name.to_string();
    handle.spawn(async move {
        let answer = lookup(resolver, name.clone(), MAX_WAIT).await;
        if answer.is_none() {
            remember_failure(&name);
        }
        done(answer);
    });
}
