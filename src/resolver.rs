//! Re-resolution: asking the system's sources afresh when every address dnsfo knows for a name
//! has failed, so a long-running program that resolved once follows a service that moved.
//!
//! A name is answered the way the system would answer it: the `hosts:` line of
//! /etc/nsswitch.conf gives the order of /etc/hosts (`files`) and DNS (`dns`; hickory-resolver);
//! a name that /etc/hosts answers before DNS comes is never asked of DNS, so a pin there
//! (`0.0.0.0 ads.example` from a block list, a fixed address) is never bypassed and the name
//! never leaks to DNS. Sources dnsfo cannot follow (`mdns*`, `myhostname`, `ldap`...) are
//! skipped; `resolve` (systemd-resolved, which reads /etc/hosts itself) counts as /etc/hosts,
//! then DNS.
//!
//! Owns: hickory's runtime and resolver (started on first need, never at load time; one worker
//! thread that never runs the program's signal handlers and whose sockets bypass dnsfo's hooks;
//! rebuilt in a `fork()`ed child, which inherits the memory but not the thread), a short
//! negative cache, and what /etc/hosts says per name (re-read when the file changes). Must never:
//! be asked about an IP literal (the registry only holds names), run inside libuv's thread pool
//! (only connect paths call it), ask DNS before a source the system asks first, or wait longer
//! than the caller's budget.

use crate::config::Config;
use crate::forksafe::SpinLock;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;
use std::collections::HashMap;
use std::io::BufRead;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// A failed lookup is not repeated for this long.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// One lookup never takes longer than this, whatever the budget.
pub const MAX_WAIT: Duration = Duration::from_secs(3);

/// The hosts file and the name service switch, where glibc reads them.
const HOSTS: &str = "/etc/hosts";
const NSSWITCH: &str = "/etc/nsswitch.conf";
/// An /etc/hosts answer carries no TTL; it is looked at again after this long (or when a
/// connect to it fails again).
const HOSTS_VALID: Duration = Duration::from_secs(24 * 3600);
/// Most names whose /etc/hosts answer is remembered (per version of the file).
const HOSTS_CACHED: usize = 256;

/// A fresh answer.
#[derive(Clone, Debug)]
pub struct Answer {
    pub addrs: Vec<IpAddr>,
    pub valid_until: Instant,
}

/// A source of host names that dnsfo can ask as the system does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Files,
    Dns,
}

/// The sources of nsswitch.conf's `hosts:` line that dnsfo follows, in order. No file or no
/// `hosts:` line: glibc's default, `dns [!UNAVAIL=return] files`.
fn parse_nsswitch(text: Option<&str>) -> Vec<Source> {
    let line = text.and_then(|t| {
        t.lines().find_map(|l| {
            let l = l.split('#').next().unwrap_or("").trim_start();
            l.strip_prefix("hosts:")
        })
    });
    let Some(line) = line else {
        return vec![Source::Dns, Source::Files];
    };
    // Actions (`[NOTFOUND=return]`) are dropped: dnsfo only follows the order.
    let mut plain = String::with_capacity(line.len());
    let mut depth = 0usize;
    for c in line.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for word in plain.split_whitespace() {
        let add: &[Source] = match word.to_ascii_lowercase().as_str() {
            "files" => &[Source::Files],
            "dns" => &[Source::Dns],
            "resolve" => &[Source::Files, Source::Dns],
            _ => &[],
        };
        for src in add {
            if !out.contains(src) {
                out.push(*src);
            }
        }
    }
    out
}

/// The addresses of `name` (already normalised) in one line of a hosts file, added to `out`;
/// whether the line names it.
fn hosts_line(line: &[u8], name: &str, out: &mut Vec<IpAddr>) -> bool {
    let line = line.split(|b| *b == b'#').next().unwrap_or(&[]);
    let mut words = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    let Some(addr) = words.next() else {
        return false;
    };
    let named = words.any(|w| {
        let w = w.strip_suffix(b".").unwrap_or(w);
        w.eq_ignore_ascii_case(name.as_bytes())
    });
    if !named {
        return false;
    }
    // A zone (`fe80::1%eth0`) is no part of the address.
    let addr = addr.split(|b| *b == b'%').next().unwrap_or(&[]);
    if let Some(ip) = std::str::from_utf8(addr)
        .ok()
        .and_then(|a| a.parse::<IpAddr>().ok())
    {
        let ip = crate::sys::canonical_ip(ip);
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    true
}

/// What a hosts file says about `name` (normalised): `None` when it does not name it;
/// otherwise every address of every line naming it, in file order (as glibc returns them).
fn hosts_lookup(text: impl BufRead, name: &str) -> Option<Vec<IpAddr>> {
    let mut named = false;
    let mut out = Vec::new();
    for line in text.split(b'\n') {
        let Ok(line) = line else { break };
        named |= hosts_line(&line, name, &mut out);
    }
    named.then_some(out)
}

/// Identity of a version of a file: device, inode, size, modification time.
type Stamp = (u64, u64, u64, i64, i64);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

#[derive(Default)]
struct HostsCache {
    stamp: Option<Stamp>,
    answers: HashMap<String, Option<Vec<IpAddr>>>,
}

static HOSTS_CACHE: SpinLock<Option<HostsCache>> = SpinLock::new(None);

/// What /etc/hosts says about `name` now (see [`hosts_lookup`]). The file is read once per
/// version and name, outside every lock; an unreadable file names nothing.
fn from_hosts_file(name: &str) -> Option<Vec<IpAddr>> {
    let path = Path::new(HOSTS);
    let st = stamp(path);
    {
        let c = HOSTS_CACHE.lock();
        if let Some(c) = c.as_ref().filter(|c| c.stamp.is_some() && c.stamp == st) {
            if let Some(a) = c.answers.get(name) {
                return a.clone();
            }
        }
    }
    let answer = std::fs::File::open(path)
        .ok()
        .and_then(|f| hosts_lookup(std::io::BufReader::new(f), name));
    let mut c = HOSTS_CACHE.lock();
    let c = c.get_or_insert_with(HostsCache::default);
    if c.stamp != st || c.answers.len() >= HOSTS_CACHED {
        c.stamp = st;
        c.answers.clear();
    }
    c.answers.insert(name.to_string(), answer.clone());
    answer
}

/// /etc/hosts' answer for `name`: `None` when it does not name it; `Some(None)` when it names
/// it with no address dnsfo can read (nothing new, and DNS is not asked either).
fn hosts_answer(name: &str) -> Option<Option<Answer>> {
    let name = crate::registry::normalize(name);
    let addrs = from_hosts_file(&name)?;
    log::debug!("re-resolving {name}: /etc/hosts answers {addrs:?}; DNS is not asked");
    Some((!addrs.is_empty()).then(|| Answer {
        addrs,
        valid_until: Instant::now() + HOSTS_VALID,
    }))
}

/// How the system would answer `name` before DNS: /etc/hosts' answer when a source before DNS
/// has it (`Err`), or whether DNS is asked at all and /etc/hosts after it (`Ok`).
fn before_dns(name: &str) -> Result<Option<bool>, Option<Answer>> {
    let text = std::fs::read_to_string(NSSWITCH).ok();
    let sources = parse_nsswitch(text.as_deref());
    for (i, src) in sources.iter().enumerate() {
        match src {
            Source::Files => {
                if let Some(a) = hosts_answer(name) {
                    return Err(a);
                }
            }
            Source::Dns => return Ok(Some(sources[i + 1..].contains(&Source::Files))),
        }
    }
    // No DNS in the system's sources: DNS is never asked.
    Err(None)
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
    // This resolver is DNS alone: /etc/hosts is read here, in the system's order (`before_dns`).
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
        HOSTS_CACHE.force_unlock();
        PENDING.force_unlock();
    }
    // The lookups in flight were the parent's (its resolver thread answers them there).
    *PENDING.lock() = None;
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

/// Asks for `name` as the system would, and hands the answer (or `None`) to `done`: at once
/// when a source before DNS answers (reading /etc/hosts is quick), else on the resolver's
/// thread. For the reactor, which must never wait.
pub fn resolve_later(
    config: &Config,
    name: &str,
    done: impl FnOnce(Option<Answer>) + Send + 'static,
) {
    let then_files = match before_dns(name) {
        Err(answer) => return done(answer),
        Ok(then_files) => then_files.unwrap_or(false),
    };
    let done = move |name: &str, answer: Option<Answer>| {
        done(match answer {
            None if then_files => hosts_answer(name).flatten(),
            a => a,
        })
    };
    let now = Instant::now();
    if negative(name, now) {
        return done(name, None);
    }
    {
        let mut pending = PENDING.lock();
        let map = pending.get_or_insert_with(HashMap::new);
        if let Some(p) = map.get_mut(name) {
            if now.saturating_duration_since(p.since) >= SLOW {
                // Asked a while ago and still no answer: DNS is down or slow, and a connect
                // must not wait for it (its failure is remembered once the lookup ends).
                drop(pending);
                return done(name, None);
            }
            // One query per name: this caller hears the answer of the one in flight.
            p.waiters.push(Box::new(done));
            return;
        }
        if map.len() >= PENDING_MAX {
            drop(pending);
            return done(name, None);
        }
        map.insert(
            name.to_string(),
            Pending {
                since: now,
                waiters: vec![Box::new(done)],
            },
        );
    }
    let Some((resolver, handle)) = engine(config) else {
        return answered(name, None);
    };
    let name = name.to_string();
    handle.spawn(async move {
        let answer = lookup(resolver, name.clone(), MAX_WAIT).await;
        if answer.is_none() {
            remember_failure(&name);
        }
        answered(&name, answer);
    });
}

/// A lookup of `name` ended: everyone waiting for it hears the answer.
fn answered(name: &str, answer: Option<Answer>) {
    let waiters = PENDING
        .lock()
        .as_mut()
        .and_then(|m| m.remove(name))
        .map(|p| p.waiters)
        .unwrap_or_default();
    for w in waiters {
        w(name, answer.clone());
    }
}

/// A lookup in flight and the callers waiting for its answer.
struct Pending {
    since: Instant,
    waiters: Vec<Waiter>,
}

type Waiter = Box<dyn FnOnce(&str, Option<Answer>) + Send>;

/// Lookups in flight, by name.
static PENDING: SpinLock<Option<HashMap<String, Pending>>> = SpinLock::new(None);
/// Names looked up at once at most (more are answered "no news" at once).
const PENDING_MAX: usize = 256;
/// A lookup in flight for this long counts as failing for later callers: they do not wait.
const SLOW: Duration = Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn nsswitch_order() {
        use Source::{Dns, Files};
        assert_eq!(parse_nsswitch(None), vec![Dns, Files], "glibc's default");
        assert_eq!(
            parse_nsswitch(Some("passwd: files\n")),
            vec![Dns, Files],
            "no hosts line: glibc's default"
        );
        assert_eq!(
            parse_nsswitch(Some("# hosts: dns\nhosts:  files dns\n")),
            vec![Files, Dns]
        );
        assert_eq!(
            parse_nsswitch(Some(
                "hosts: files mdns4_minimal [NOTFOUND=return] dns myhostname\n"
            )),
            vec![Files, Dns]
        );
        assert_eq!(
            parse_nsswitch(Some("hosts: dns [ !UNAVAIL=return ] files\n")),
            vec![Dns, Files]
        );
        assert_eq!(
            parse_nsswitch(Some("hosts: files resolve [!UNAVAIL=return] dns\n")),
            vec![Files, Dns]
        );
        assert_eq!(
            parse_nsswitch(Some("hosts: files # dns\n")),
            vec![Files],
            "files only: DNS never asked"
        );
        assert_eq!(parse_nsswitch(Some("hosts: myhostname\n")), vec![]);
    }

    #[test]
    fn hosts_file() {
        let text = "# block list\n\
                    127.0.0.1 localhost\n\
                    0.0.0.0 ads.test tracker.test # blocked\n\
                    127.0.0.9\tPin.Test.  alias\n\
                    ::1 pin.test\n\
                    ::ffff:127.0.0.10 pin.test\n\
                    fe80::1%lo pin.test\n\
                    bogus pin.test\n\
                    #127.0.0.11 pin.test\n\
                    127.0.0.12 notpin.test pin.testx\n";
        let look = |n: &str| hosts_lookup(std::io::Cursor::new(text), n);
        assert_eq!(look("ads.test"), Some(vec![ip("0.0.0.0")]));
        assert_eq!(look("tracker.test"), Some(vec![ip("0.0.0.0")]));
        assert_eq!(
            look("pin.test"),
            Some(vec![
                ip("127.0.0.9"),
                ip("::1"),
                ip("127.0.0.10"),
                ip("fe80::1")
            ])
        );
        assert_eq!(look("alias"), Some(vec![ip("127.0.0.9")]));
        assert_eq!(look("blocked"), None, "comments name nothing");
        assert_eq!(look("svc.test"), None);
        assert_eq!(look("pin"), None);
    }
}
