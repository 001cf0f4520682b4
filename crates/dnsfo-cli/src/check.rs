//! `dnsfo check NAME[:PORT]`: what dnsfo sees for a name. Resolves it as the system does
//! (`getaddrinfo`, `AF_UNSPEC`, `SOCK_STREAM`, the system's order), probes every address at once
//! with a bounded TCP connect, and shows the order dnsfo's planner (`dnsfo_core::plan`, the library's
//! own code) would try them in, which address it would end up on, and roughly how fast, against
//! what a program that only tries the first address gets.

use crate::args::{self, Item, Parser};
use crate::cache::Unusable;
use crate::live::Live;
use crate::term::Style;
use dnsfo_core::config::Config;
use dnsfo_core::schedule::Schedule;
use dnsfo_core::{cache, plan};
use std::ffi::{CStr, CString, OsString};
use std::fmt::Write as _;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const USAGE: &str = "\
Usage: dnsfo check [options] NAME[:PORT] | URL

Resolve NAME as the system does (getaddrinfo, every address family, the system's order), probe
every address in parallel with a TCP connect, and print one row per address: address, family,
result (open, refused, unreachable, no answer), time, and the order dnsfo would try them in.
Then: which address a program gets without dnsfo (the first one) and with it (the first live
address in dnsfo's order, and about how long that takes with the attempt delay), and what the
shared winner cache (DNSFO_CACHE_DIR, read as the library reads it) holds for NAME:PORT: a
cached winner is what a fresh program tries first.

PORT is a number or a service name (postgresql) and defaults to 80. An IPv6 literal with a port is
written [ADDR]:PORT. A URL (https://NAME/...) gives NAME and the port (its own, or the scheme's).

Options:
  --timeout MS         give each probe this long to answer (default 2000, 1..=60000)
  --attempt-delay MS   the attempt delay dnsfo would use (default: DNSFO_ATTEMPT_DELAY_MS,
                       else 250; 0..=60000)
  --json               print the result as one JSON object instead of a table
  -h, --help           show this help and exit
  -V, --version        show the version and exit

Probes run in this process without the library (however it was loaded: LD_PRELOAD under any
file name, /etc/ld.so.preload), so the table shows the network as a plain program sees it.
DNSFO_CONNECT_TIMEOUT_MS, when set, caps the estimated connect time as it would cap the real one.

Exit status (the Nagios/Icinga plugin convention, so it can serve as a monitoring check):
  0  healthy: every address answers
  1  degraded: some address answers, some do not
  2  down: no address answers
  3  NAME cannot be resolved
  64 usage error
With --json, an error is JSON on stdout too:
  {\"error\":{\"kind\":\"usage\" or \"resolve\",\"message\":...,\"exit\":N}}
";

/// What the shared winner cache (`dnsfo_os::cachefile`, read as the library reads it) says about this
/// (name, port): a fresh program starts from it.
#[derive(Debug)]
enum Cached {
    /// `DNSFO_CACHE=0`, or no directory can be derived (no HOME, no XDG_RUNTIME_DIR).
    Off(&'static str),
    /// The directory does not exist yet: nothing was ever cached by this user.
    Missing(PathBuf),
    /// Not the user's own private directory: the library ignores it.
    Untrusted(PathBuf),
    /// No live entry for this name and port (among the addresses resolved now).
    NoEntry(PathBuf),
    Winner {
        dir: PathBuf,
        ip: IpAddr,
        expires_in_ms: u64,
    },
}

impl Cached {
    fn read(host: &str, port: u16, known: &[IpAddr], config: &Config) -> Cached {
        let c = match crate::cache::open_as_the_library(config) {
            Ok(c) => c,
            Err(Unusable::Disabled) => return Cached::Off("DNSFO_CACHE=0"),
            Err(Unusable::NoDirectory) => return Cached::Off("no HOME or XDG_RUNTIME_DIR"),
            Err(Unusable::Missing(dir)) => return Cached::Missing(dir),
            Err(Unusable::Untrusted(dir)) => return Cached::Untrusted(dir),
        };
        let dir = c.dir().to_path_buf();
        let entries = c.load();
        let now = cache::now_ms();
        match cache::winners_for(&entries, host, known)
            .into_iter()
            .find(|e| e.port == port)
        {
            Some(e) => Cached::Winner {
                dir,
                ip: e.ip,
                expires_in_ms: e.expires_ms.saturating_sub(now),
            },
            None => Cached::NoEntry(dir),
        }
    }

    fn winner(&self) -> Option<IpAddr> {
        match self {
            Cached::Winner { ip, .. } => Some(*ip),
            _ => None,
        }
    }

    fn describe(&self, host: &str, port: u16) -> String {
        let file = |d: &PathBuf| d.join("winners").display().to_string();
        match self {
            Cached::Off(why) => format!("off ({why})"),
            Cached::Missing(d) => format!("empty ({} does not exist yet)", d.display()),
            Cached::Untrusted(d) => format!(
                "ignored: {} is not this user's own private directory",
                d.display()
            ),
            Cached::NoEntry(d) => format!("no winner for {host}:{port} in {}", file(d)),
            Cached::Winner {
                dir,
                ip,
                expires_in_ms,
            } => format!(
                "{ip} won for {host}:{port} (in {}, for {:.0} s more): a fresh program tries it first",
                file(dir),
                *expires_in_ms as f64 / 1000.0
            ),
        }
    }

    fn json(&self) -> String {
        let (state, dir) = match self {
            Cached::Off(_) => ("off", None),
            Cached::Missing(d) => ("missing", Some(d)),
            Cached::Untrusted(d) => ("untrusted", Some(d)),
            Cached::NoEntry(d) => ("no_entry", Some(d)),
            Cached::Winner { dir, .. } => ("winner", Some(dir)),
        };
        let mut s = format!(
            "{{\"state\":\"{state}\",\"dir\":{}",
            dir.map_or("null".to_string(), |d| json_str(&d.display().to_string()))
        );
        if let Cached::Winner {
            ip, expires_in_ms, ..
        } = self
        {
            let _ = write!(
                s,
                ",\"winner\":{},\"expires_in_ms\":{expires_in_ms}",
                json_str(&ip.to_string())
            );
        }
        s.push('}');
        s
    }
}

/// At most this many addresses are probed (threads are one per address).
const MAX_ADDRS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Open,
    Refused,
    Unreachable,
    NoAnswer,
    Error,
}

impl Outcome {
    fn text(self) -> &'static str {
        match self {
            Outcome::Open => "open",
            Outcome::Refused => "refused",
            Outcome::Unreachable => "unreachable",
            Outcome::NoAnswer => "no answer",
            Outcome::Error => "error",
        }
    }
    fn key(self) -> &'static str {
        match self {
            Outcome::NoAnswer => "no_answer",
            o => o.text(),
        }
    }
}

#[derive(Clone, Debug)]
struct Probe {
    addr: SocketAddr,
    outcome: Outcome,
    /// errno of the failure, if any.
    errno: Option<i32>,
    ms: f64,
}

struct Opts {
    target: String,
    probe_timeout: u64,
    attempt_delay: Option<u64>,
    json: bool,
}

/// Exit statuses. The first four are the Nagios/Icinga plugin convention (OK, WARNING,
/// CRITICAL, UNKNOWN), so that `dnsfo check` works as a monitoring check unchanged.
pub mod exit {
    /// Every address answers.
    pub const HEALTHY: u8 = 0;
    /// Some address answers, some do not: programs without failover may fail.
    pub const DEGRADED: u8 = 1;
    /// No address answers.
    pub const DOWN: u8 = 2;
    /// NAME cannot be resolved (nothing to judge).
    pub const RESOLVE_ERROR: u8 = 3;
    /// Bad arguments (sysexits' EX_USAGE: never mistaken for a state).
    pub const USAGE: u8 = 64;
}

/// The state of a name from its probes, with its exit status.
fn state(probes: &[Probe]) -> (&'static str, u8) {
    let open = probes.iter().filter(|p| p.outcome == Outcome::Open).count();
    match open {
        0 => ("down", exit::DOWN),
        n if n == probes.len() => ("healthy", exit::HEALTHY),
        _ => ("degraded", exit::DEGRADED),
    }
}

/// Reports an error as text on stderr and, under `--json`, as a JSON object on stdout too (a
/// consumer of the JSON always gets JSON).
fn fail(json: bool, kind: &str, msg: &str, status: u8) -> u8 {
    eprintln!("dnsfo check: {msg}");
    if json {
        println!(
            "{{\"error\":{{\"kind\":{},\"message\":{},\"exit\":{status}}}}}",
            json_str(kind),
            json_str(msg)
        );
    }
    status
}

pub fn main(argv: Vec<OsString>) -> u8 {
    // Known before the arguments are understood: an error in them is JSON too.
    let json = argv.iter().any(|a| a == "--json");
    let o = match parse(argv) {
        Ok(Some(o)) => o,
        Ok(None) => return 0,
        Err(msg) => {
            let msg = format!("{msg} (try 'dnsfo check --help')");
            return fail(json, "usage", &msg, exit::USAGE);
        }
    };
    let (host, port) = match parse_target(&o.target) {
        Ok(t) => t,
        Err(msg) => return fail(o.json, "usage", &msg, exit::USAGE),
    };
    let mut addrs = match resolve(&host, port) {
        Ok(a) => a,
        Err(msg) => {
            return fail(
                o.json,
                "resolve",
                &format!("{host}: {msg}"),
                exit::RESOLVE_ERROR,
            );
        }
    };
    let total = addrs.len();
    addrs.truncate(MAX_ADDRS);
    // The settings as the library would read them from this environment (same rules, same
    // warnings).
    let (config, warnings) = dnsfo_os::conffile::config(false, |k| std::env::var_os(k));
    for w in warnings {
        eprintln!("{w}");
    }
    let style = Style::for_fd(1);
    if !o.json {
        // At once: the probes may take the whole timeout.
        print!(
            "{}",
            header(&host, port, addrs.len(), total, o.probe_timeout, style)
        );
        let _ = std::io::Write::flush(&mut std::io::stdout());
    }
    // SAFETY: isatty only inspects the descriptor.
    let tty = unsafe { libc::isatty(1) } == 1;
    let mut live = Live::new(tty && !o.json, style, &addrs);
    let probes = probe_all(&addrs, Duration::from_millis(o.probe_timeout), &mut live);
    live.finish();
    let report = Report::new(&host, port, &o, probes, &config, total);
    if o.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table(style));
    }
    state(&report.probes).1
}

fn parse(argv: Vec<OsString>) -> Result<Option<Opts>, String> {
    let mut target = None;
    let mut probe_timeout = 2000;
    let mut attempt_delay = None;
    let mut json = false;
    let mut p = Parser::new(argv);
    let mut positional = Vec::new();
    while let Some(item) = p.next_item() {
        match item {
            Item::End => {
                positional.extend(p.rest());
                break;
            }
            Item::Pos(a) => positional.push(a),
            Item::Opt { name, inline } => match name.as_str() {
                "--timeout" => {
                    let v = p.value(&name, inline)?;
                    probe_timeout = args::parse_ms(&name, &v, 60_000)?;
                    if probe_timeout == 0 {
                        return Err("--timeout: 0 ms is out of range (expected 1..=60000)".into());
                    }
                }
                "--attempt-delay" => {
                    let v = p.value(&name, inline)?;
                    attempt_delay = Some(args::parse_ms(&name, &v, 60_000)?);
                }
                "--json" => {
                    args::no_value(&name, &inline)?;
                    json = true;
                }
                "-h" | "--help" => {
                    print!("{USAGE}");
                    return Ok(None);
                }
                "-V" | "--version" => {
                    crate::version();
                    return Ok(None);
                }
                _ => return Err(format!("unknown option '{name}'")),
            },
        }
    }
    for a in positional {
        if target.is_some() {
            return Err(format!(
                "one NAME[:PORT] only ('{}' is extra)",
                a.to_string_lossy()
            ));
        }
        target = Some(
            a.into_string()
                .map_err(|a| format!("'{}' is not valid UTF-8", a.to_string_lossy()))?,
        );
    }
    let target = target.ok_or("no NAME given (usage: dnsfo check [options] NAME[:PORT])")?;
    Ok(Some(Opts {
        target,
        probe_timeout,
        attempt_delay,
        json,
    }))
}

/// `NAME`, `NAME:PORT`, `[V6]:PORT`, `[V6]` or a bare IPv6 literal, where PORT is a number or a
/// service name (`postgresql`); or a URL (`SCHEME://[USER@]HOST[:PORT][/...]`, the port from the
/// scheme when not given). The port defaults to 80.
fn parse_target(s: &str) -> Result<(String, u16), String> {
    if let Some((scheme, rest)) = s.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = split_host_port(hostport, s)?;
        let port = match port {
            Some(p) => port_number(p, s)?,
            None => service_port(scheme).ok_or_else(|| {
                format!("'{s}': no port for the scheme '{scheme}'; write it: {scheme}://HOST:PORT/")
            })?,
        };
        return Ok((host.to_string(), port));
    }
    let (host, port) = split_host_port(s, s)?;
    let port = match port {
        None => 80,
        Some(p) => port_number(p, s)?,
    };
    Ok((host.to_string(), port))
}

/// `HOST[:PORT]` or `[V6][:PORT]` (a bare IPv6 literal has no port).
fn split_host_port<'a>(s: &'a str, whole: &str) -> Result<(&'a str, Option<&'a str>), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let close = rest
            .find(']')
            .ok_or_else(|| format!("'{whole}': missing ']' after the IPv6 address"))?;
        let host = &rest[..close];
        let after = &rest[close + 1..];
        let port = match after {
            "" => None,
            p if p.starts_with(':') => Some(&p[1..]),
            _ => return Err(format!("'{whole}': expected [ADDRESS]:PORT")),
        };
        (host, port)
    } else if s.matches(':').count() > 1 {
        // A bare IPv6 literal: all of it is the address. `::1:8080` is the address ::1:8080,
        // which someone who meant port 8080 of ::1 would not guess: say how it was read.
        if let Some((addr, last)) = s.rsplit_once(':') {
            if !addr.is_empty() && !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
                eprintln!(
                    "dnsfo check: note: '{s}' is the IPv6 address {s} (port 80); for port {last} of {addr}, write [{addr}]:{last}"
                );
            }
        }
        (s, None)
    } else if let Some((h, p)) = s.split_once(':') {
        (h, Some(p))
    } else {
        (s, None)
    };
    if host.is_empty() {
        return Err(format!("'{whole}': empty name"));
    }
    Ok((host, port))
}

/// A port number in 1..=65535, or a TCP service name from the system's services database.
fn port_number(p: &str, whole: &str) -> Result<u16, String> {
    if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
        return match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "'{whole}': port '{p}' is not a number in 1..=65535"
            )),
        };
    }
    service_port(p).ok_or_else(|| {
        format!("'{whole}': port '{p}' is neither a number in 1..=65535 nor a known TCP service")
    })
}

/// The TCP port of a service name (`/etc/services`: `http`, `postgresql`, ...).
fn service_port(name: &str) -> Option<u16> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return None;
    }
    let c = CString::new(name).ok()?;
    // SAFETY: two NUL-terminated strings; the result is null or a static entry of libc's that
    // is read at once, before any other call could reuse it.
    let e = unsafe { libc::getservbyname(c.as_ptr(), c"tcp".as_ptr()) };
    if e.is_null() {
        return None;
    }
    // SAFETY: non-null: libc's servent, s_port in network byte order.
    let port = u16::from_be(unsafe { (*e).s_port } as u16);
    (port != 0).then_some(port)
}

/// Every address of `host`, as the system's `getaddrinfo` orders them (duplicates dropped).
pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let c_host = CString::new(host).map_err(|_| "name contains a NUL byte".to_string())?;
    // SAFETY: a zeroed addrinfo is a valid "no hints" value; fields are then set.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C string, hints and out-pointer; the list is freed below.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 {
        if rc == libc::EAI_SYSTEM {
            return Err(format!(
                "cannot resolve: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: gai_strerror returns a static string.
        let msg = unsafe { CStr::from_ptr(libc::gai_strerror(rc)) };
        return Err(format!("cannot resolve: {}", msg.to_string_lossy()));
    }
    let mut out: Vec<SocketAddr> = Vec::new();
    let mut cur = res;
    let mut guard = 0;
    while !cur.is_null() && guard < 4096 {
        guard += 1;
        // SAFETY: `cur` is a node of the list getaddrinfo returned.
        let ai = unsafe { &*cur };
        // SAFETY: getaddrinfo's node points to `ai_addrlen` readable bytes (or is null).
        let read = unsafe { dnsfo_os::sockaddr::read(ai.ai_addr, ai.ai_addrlen) };
        if let Some(a) = read.map(|a| SocketAddr::new(a.ip(), port)) {
            if !out.contains(&a) {
                out.push(a);
            }
        }
        cur = ai.ai_next;
    }
    // SAFETY: `res` came from getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(res) };
    if out.is_empty() {
        return Err("no TCP address".into());
    }
    Ok(out)
}

/// How often the live line is redrawn while probes are still going.
const LIVE_TICK: Duration = Duration::from_millis(200);

/// One TCP connect per address, all at once; each bounded by `timeout`. Each result goes to
/// `live` as it comes.
fn probe_all(addrs: &[SocketAddr], timeout: Duration, live: &mut Live) -> Vec<Probe> {
    let (tx, rx) = std::sync::mpsc::channel();
    for (i, &addr) in addrs.iter().enumerate() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let r = TcpStream::connect_timeout(&addr, timeout);
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            let (outcome, errno) = match &r {
                Ok(_) => (Outcome::Open, None),
                Err(e) => classify(e),
            };
            drop(r);
            let _ = tx.send((
                i,
                Probe {
                    addr,
                    outcome,
                    errno,
                    ms,
                },
            ));
        });
    }
    drop(tx);
    let mut got: Vec<Option<Probe>> = vec![None; addrs.len()];
    // Every probe ends by its timeout; the margin only guards against a thread that died.
    let deadline = Instant::now() + timeout + Duration::from_secs(5);
    while Instant::now() < deadline {
        match rx.recv_timeout(LIVE_TICK) {
            Ok((i, p)) => {
                live.done(
                    p.addr,
                    &Report::result_text(&p),
                    &time_text(&p, timeout),
                    p.outcome == Outcome::Open,
                );
                got[i] = Some(p);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let pending: Vec<SocketAddr> = addrs
                    .iter()
                    .zip(&got)
                    .filter(|(_, g)| g.is_none())
                    .map(|(a, _)| *a)
                    .collect();
                live.waiting(&pending);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    got.into_iter()
        .zip(addrs)
        .map(|(p, &addr)| {
            p.unwrap_or(Probe {
                addr,
                outcome: Outcome::Error,
                errno: None,
                ms: 0.0,
            })
        })
        .collect()
}

/// A probe's time as the report shows it.
fn time_text(p: &Probe, timeout: Duration) -> String {
    if p.outcome == Outcome::NoAnswer {
        format!(">{} ms", timeout.as_millis())
    } else {
        format!("{:.*} ms", if p.ms < 10.0 { 2 } else { 1 }, p.ms)
    }
}

/// The report's first lines: what is probed, and how.
fn header(host: &str, port: u16, n: usize, total: usize, timeout: u64, st: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}:{}: {} address{} from the resolver (system order), probed in parallel, timeout {} ms",
        st.bold("dnsfo check"),
        if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        },
        port,
        n,
        if n == 1 { "" } else { "es" },
        timeout
    );
    if total > n {
        let _ = writeln!(out, "(only the first {n} of {total} addresses are probed)");
    }
    out
}

fn classify(e: &std::io::Error) -> (Outcome, Option<i32>) {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => (Outcome::Refused, Some(libc::ECONNREFUSED)),
        Some(
            n @ (libc::EHOSTUNREACH
            | libc::ENETUNREACH
            | libc::ENETDOWN
            | libc::EHOSTDOWN
            | libc::EADDRNOTAVAIL),
        ) => (Outcome::Unreachable, Some(n)),
        Some(libc::ETIMEDOUT) => (Outcome::NoAnswer, Some(libc::ETIMEDOUT)),
        Some(n) => (Outcome::Error, Some(n)),
        None if e.kind() == ErrorKind::TimedOut => (Outcome::NoAnswer, None),
        None => (Outcome::Error, None),
    }
}

fn errno_name(e: i32) -> String {
    dnsfo_core::errno::name(e).map_or_else(|| format!("errno {e}"), str::to_string)
}

/// The estimate of what dnsfo's dialer does with these addresses: attempt k starts an attempt
/// delay after attempt k-1, or at once when k-1 has already failed; the first to connect wins.
struct Estimate {
    /// The winner and when it connects (ms after the program's connect).
    winner: Option<(IpAddr, f64)>,
    /// Why the later attempts started when they did, one phrase per skipped address.
    steps: Vec<String>,
    /// Capped by DNSFO_CONNECT_TIMEOUT_MS.
    capped: bool,
}

fn estimate(order: &[&Probe], delay_ms: f64, cap_ms: Option<f64>) -> Estimate {
    // The dialer's own schedule, on offsets from the program's connect.
    let at = |ms: f64| Duration::from_secs_f64(ms.max(0.0) / 1000.0);
    let ms_of = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut schedule = Schedule::new(at(delay_ms), Duration::ZERO);
    let mut winner: Option<(IpAddr, f64)> = None;
    let mut steps = Vec::new();
    let mut start = 0.0f64;
    for (k, p) in order.iter().enumerate() {
        if k > 0 {
            let prev = order[k - 1];
            let failed = matches!(
                prev.outcome,
                Outcome::Refused | Outcome::Unreachable | Outcome::Error
            );
            let by_delay = schedule.next_start();
            if failed {
                schedule.next_at_once(at(start + prev.ms));
            }
            if schedule.next_start() < by_delay {
                steps.push(format!(
                    "{} {}, next at once",
                    prev.addr.ip(),
                    prev.outcome.text()
                ));
            } else {
                steps.push(format!(
                    "{} {}, next after the {delay_ms:.0} ms attempt delay",
                    prev.addr.ip(),
                    if prev.outcome == Outcome::Open {
                        "slow"
                    } else {
                        prev.outcome.text()
                    }
                ));
            }
            start = ms_of(schedule.next_start());
            schedule.started(schedule.next_start());
        }
        if winner.is_some_and(|(_, t)| start >= t) || cap_ms.is_some_and(|c| start >= c) {
            break;
        }
        if p.outcome == Outcome::Open {
            let t = start + p.ms;
            if winner.is_none_or(|(_, w)| t < w) {
                winner = Some((p.addr.ip(), t));
            }
        }
    }
    let capped = match (winner, cap_ms) {
        (Some((_, t)), Some(c)) if t > c => {
            winner = None;
            true
        }
        _ => false,
    };
    Estimate {
        winner,
        steps,
        capped,
    }
}

struct Report {
    host: String,
    port: u16,
    probe_timeout: u64,
    attempt_delay: u64,
    connect_cap: Option<u64>,
    /// A config file's `[name ...]` rule excludes the name.
    excluded: bool,
    total: usize,
    probes: Vec<Probe>,
    /// Indices into `probes`, in the order dnsfo would try them.
    order: Vec<usize>,
    cached: Cached,
    estimate: Estimate,
}

impl Report {
    fn new(
        host: &str,
        port: u16,
        o: &Opts,
        probes: Vec<Probe>,
        config: &Config,
        total: usize,
    ) -> Report {
        let rule = config.rule_for(host);
        let attempt_delay = o
            .attempt_delay
            .or(rule
                .and_then(|r| r.attempt_delay)
                .map(|d| d.as_millis() as u64))
            .unwrap_or(config.attempt_delay.as_millis() as u64);
        let excluded = rule.is_some_and(|r| r.exclude);
        let connect_cap = config
            .connect_timeout
            .map(|t| t.as_millis() as u64)
            .filter(|&ms| ms > 0);
        let known: Vec<IpAddr> = probes.iter().map(|p| p.addr.ip()).collect();
        let cached = Cached::read(host, port, &known, config);
        // A fresh program: its only memory is the shared cache's winner, which dnsfo's lookup
        // hook lists first, so that is the address the program picks (else the resolver's
        // first).
        let chosen = cached
            .winner()
            .filter(|w| known.contains(w))
            .unwrap_or(known[0]);
        let planned = plan::plan(&plan::Input {
            chosen,
            known: &known,
            winner: cached.winner(),
            dead_until: &|_| None,
        });
        let order: Vec<usize> = planned
            .iter()
            .filter_map(|ip| known.iter().position(|k| k == ip))
            .collect();
        let ordered: Vec<&Probe> = order.iter().map(|&i| &probes[i]).collect();
        let estimate = estimate(
            &ordered,
            attempt_delay as f64,
            connect_cap.map(|c| c as f64),
        );
        Report {
            host: host.to_string(),
            port,
            probe_timeout: o.probe_timeout,
            attempt_delay,
            connect_cap,
            excluded,
            total,
            probes,
            order,
            cached,
            estimate,
        }
    }

    fn try_rank(&self, i: usize) -> usize {
        self.order.iter().position(|&j| j == i).map_or(0, |r| r + 1)
    }

    fn family(a: &SocketAddr) -> &'static str {
        if a.is_ipv4() {
            "IPv4"
        } else {
            "IPv6"
        }
    }

    fn time_text(&self, p: &Probe) -> String {
        time_text(p, Duration::from_millis(self.probe_timeout))
    }

    fn result_text(p: &Probe) -> String {
        match (p.outcome, p.errno) {
            (Outcome::Error, Some(e)) => format!("error ({})", errno_name(e)),
            (Outcome::Unreachable, Some(e)) => format!("unreachable ({})", errno_name(e)),
            (o, _) => o.text().to_string(),
        }
    }

    fn without_dnsfo(&self) -> String {
        let first = &self.probes[0];
        let ip = first.addr.ip();
        match first.outcome {
            Outcome::Open => format!("a program that connects to the first address ({ip}) gets it"),
            Outcome::NoAnswer => format!(
                "a program that connects to the first address ({ip}) hangs until the kernel gives up (~{} s)",
                dnsfo_os::kernel::syn_timeout_s()
            ),
            Outcome::Refused => format!(
                "a program that connects to the first address ({ip}) fails at once (ECONNREFUSED)"
            ),
            _ => format!(
                "a program that connects to the first address ({ip}) fails ({})",
                Self::result_text(first)
            ),
        }
    }

    /// What dnsfo does: the outcome, then why (one or two lines).
    fn with_dnsfo(&self) -> Vec<String> {
        if self.excluded {
            return vec![format!(
                "none: a config file excludes {} (dnsfo passes its connects through)",
                self.host
            )];
        }
        if self.probes.len() == 1 {
            return vec![
                "one address only: nothing to fail over to (dnsfo passes the connect through)"
                    .into(),
            ];
        }
        let e = &self.estimate;
        let mut lines = match e.winner {
            Some((ip, ms)) => {
                let mut s = format!("connects to {ip} in about {ms:.0} ms");
                if ip != self.probes[0].addr.ip() && !e.steps.is_empty() {
                    let _ = write!(s, " ({})", e.steps.join("; "));
                }
                vec![s]
            }
            None if e.capped => vec![format!(
                "no address within DNSFO_CONNECT_TIMEOUT_MS={} ms: the program sees the error of its own choice",
                self.connect_cap.unwrap_or(0)
            )],
            None => vec!["no address answers: the program sees the error of its own choice".into()],
        };
        if e.winner.is_none() {
            // Nothing answers: there is no "first live address" to explain.
            return lines;
        }
        lines.push(match self.cached.winner() {
            Some(w) => format!(
                "why: the first live address in dnsfo's order (the cached winner {w}, then the program's choice, then the resolver's order with families interleaved, RFC 8305)"
            ),
            None => "why: the first live address in dnsfo's order (the program's choice, then the resolver's order with families interleaved, RFC 8305)".into(),
        });
        lines
    }

    fn table(&self, st: Style) -> String {
        // The header went out before the probes (`header`).
        let mut out = String::from("\n");
        let pick = self.estimate.winner.map(|(ip, _)| ip);
        let rows: Vec<[String; 6]> = self
            .probes
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let rank = self.try_rank(i);
                let mut dn = ordinal(rank);
                if Some(p.addr.ip()) == self.cached.winner() {
                    dn.push_str(" (cached)");
                }
                if Some(p.addr.ip()) == pick && self.probes.len() > 1 {
                    dn.push_str("  <- dnsfo picks");
                }
                [
                    (i + 1).to_string(),
                    p.addr.ip().to_string(),
                    Self::family(&p.addr).to_string(),
                    Self::result_text(p),
                    self.time_text(p),
                    dn,
                ]
            })
            .collect();
        let head = ["#", "address", "family", "result", "time", "dnsfo tries"];
        let mut w = head.map(str::len);
        for r in &rows {
            for (k, c) in r.iter().enumerate() {
                w[k] = w[k].max(c.len());
            }
        }
        let line = |cells: [&str; 6], colour: &dyn Fn(usize, String) -> String| {
            let mut l = String::from("  ");
            for (k, c) in cells.iter().enumerate() {
                let padded = if k == 0 {
                    format!("{c:>w$}", w = w[k])
                } else {
                    format!("{c:<w$}", w = w[k])
                };
                l.push_str(&colour(k, padded));
                if k < 5 {
                    l.push_str("  ");
                }
            }
            l.trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(head, &|_, s| st.dim(&s)));
        for (p, r) in self.probes.iter().zip(&rows) {
            let cells = [
                r[0].as_str(),
                r[1].as_str(),
                r[2].as_str(),
                r[3].as_str(),
                r[4].as_str(),
                r[5].as_str(),
            ];
            let _ = writeln!(
                out,
                "{}",
                line(cells, &|k, s| match (k, p.outcome) {
                    (3, Outcome::Open) => st.green(&s),
                    (3, Outcome::NoAnswer) => st.yellow(&s),
                    (3, _) => st.red(&s),
                    _ => s,
                })
            );
        }
        out.push('\n');
        out.push_str(&wrap("without dnsfo: ", &self.without_dnsfo()));
        for (k, l) in self.with_dnsfo().iter().enumerate() {
            out.push_str(&wrap(if k == 0 { "with dnsfo:    " } else { "" }, l));
        }
        out.push_str(&wrap(
            "cache:         ",
            &self.cached.describe(&self.host, self.port),
        ));
        out.push_str(&wrap(
            "settings:      ",
            &format!(
                "attempt delay {} ms{}",
                self.attempt_delay,
                match self.connect_cap {
                    Some(c) => format!(", connect timeout {c} ms"),
                    None => String::new(),
                }
            ),
        ));
        out
    }

    fn json(&self) -> String {
        let mut s = String::from("{");
        let _ = write!(
            s,
            "\"state\":{},\"name\":{},\"port\":{},\"probe_timeout_ms\":{},\"attempt_delay_ms\":{},\"connect_timeout_ms\":{},\"addresses_resolved\":{},\"addresses\":[",
            json_str(state(&self.probes).0),
            json_str(&self.host),
            self.port,
            self.probe_timeout,
            self.attempt_delay,
            self.connect_cap.map_or("null".to_string(), |c| c.to_string()),
            self.total
        );
        for (i, p) in self.probes.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(
                s,
                "{{\"index\":{},\"address\":{},\"family\":\"{}\",\"result\":\"{}\",\"errno\":{},\"ms\":{:.3},\"dnsfo_order\":{}}}",
                i + 1,
                json_str(&p.addr.ip().to_string()),
                if p.addr.is_ipv4() { "ipv4" } else { "ipv6" },
                p.outcome.key(),
                p.errno.map_or("null".to_string(), |e| json_str(&errno_name(e))),
                p.ms,
                self.try_rank(i)
            );
        }
        s.push_str("],\"pick\":");
        match self.estimate.winner {
            Some((ip, ms)) => {
                let _ = write!(
                    s,
                    "{{\"address\":{},\"estimated_ms\":{ms:.1}}}",
                    json_str(&ip.to_string())
                );
            }
            None => s.push_str("null"),
        }
        let _ = write!(
            s,
            ",\"cache\":{},\"without_dnsfo\":{},\"with_dnsfo\":{},\"reachable\":{}}}",
            self.cached.json(),
            json_str(&self.without_dnsfo()),
            json_str(&self.with_dnsfo().join("; ")),
            self.probes.iter().any(|p| p.outcome == Outcome::Open)
        );
        s
    }
}

/// Prose lines are folded to fit 80 columns, continued under their text.
const PROSE_WIDTH: usize = 79;

/// `lead` then `text`, folded at spaces to [`PROSE_WIDTH`]; continuation lines (and a line with
/// an empty lead) are indented as wide as a lead. A word longer than a line stays whole.
fn wrap(lead: &str, text: &str) -> String {
    const INDENT: usize = 15;
    let mut out = String::new();
    let mut line = if lead.is_empty() {
        " ".repeat(INDENT)
    } else {
        lead.to_string()
    };
    let mut fresh = true;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if !fresh && line.chars().count() + 1 + word.chars().count() > PROSE_WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(INDENT);
            fresh = true;
        }
        if !fresh {
            line.push(' ');
        }
        line.push_str(word);
        fresh = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_is_folded_to_80_columns_under_its_text() {
        let text = "a program that connects to the first address (127.0.0.2) hangs until the kernel gives up (~127 s)";
        let w = wrap("without dnsfo: ", text);
        assert!(w.lines().all(|l| l.chars().count() <= PROSE_WIDTH), "{w}");
        assert_eq!(w.lines().count(), 2, "{w}");
        assert!(
            w.lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("               until")),
            "{w}"
        );
        assert_eq!(
            w.replace("\n               ", " "),
            format!("without dnsfo: {text}\n")
        );
        assert_eq!(wrap("cache:         ", "short"), "cache:         short\n");
        assert_eq!(wrap("", "x"), "               x\n");
    }

    #[test]
    fn targets() {
        let t = |s: &str| parse_target(s);
        assert_eq!(t("svc"), Ok(("svc".into(), 80)));
        assert_eq!(t("svc:8080"), Ok(("svc".into(), 8080)));
        assert_eq!(t("[::1]:443"), Ok(("::1".into(), 443)));
        assert_eq!(t("[::1]"), Ok(("::1".into(), 80)));
        assert_eq!(t("::1"), Ok(("::1".into(), 80)));
        assert_eq!(t("fe80::1:2"), Ok(("fe80::1:2".into(), 80)));
        assert!(t("svc:0").is_err());
        assert!(t("svc:65536").is_err());
        assert!(t("svc:+80").is_err());
        assert!(t("svc:").is_err());
        assert!(t(":80").is_err());
        assert!(t("[::1").is_err());
        assert!(t("[::1]x").is_err());
        // Service names and URLs (issue 15).
        assert_eq!(t("svc:http"), Ok(("svc".into(), 80)));
        assert_eq!(t("db:postgresql"), Ok(("db".into(), 5432)));
        assert!(t("svc:nosuchservice").is_err());
        assert_eq!(t("http://svc/"), Ok(("svc".into(), 80)));
        assert_eq!(t("https://svc"), Ok(("svc".into(), 443)));
        assert_eq!(t("https://u:pw@svc:8443/a/b?c#d"), Ok(("svc".into(), 8443)));
        assert_eq!(t("http://[::1]:8080/x"), Ok(("::1".into(), 8080)));
        assert_eq!(t("postgresql://db/name"), Ok(("db".into(), 5432)));
        assert!(t("nosuchscheme://svc/")
            .unwrap_err()
            .contains("no port for the scheme"));
        assert!(t("http:///path").is_err());
    }

    fn p(ip: &str, outcome: Outcome, ms: f64) -> Probe {
        Probe {
            addr: SocketAddr::new(ip.parse().unwrap(), 80),
            outcome,
            errno: None,
            ms,
        }
    }

    #[test]
    fn estimate_follows_the_dialer() {
        let a = p("127.0.0.2", Outcome::NoAnswer, 2000.0);
        let b = p("127.0.0.3", Outcome::Refused, 0.2);
        let c = p("127.0.0.4", Outcome::Open, 0.3);
        let e = estimate(&[&a, &b, &c], 250.0, None);
        let (ip, ms) = e.winner.unwrap();
        assert_eq!(ip, "127.0.0.4".parse::<IpAddr>().unwrap());
        assert!((ms - 250.5).abs() < 0.01, "{ms}");
        assert_eq!(e.steps.len(), 2);
        assert!(e.steps[0].contains("attempt delay") && e.steps[1].contains("at once"));
        // Capped below the estimate: no winner.
        let e = estimate(&[&a, &b, &c], 250.0, Some(100.0));
        assert!(e.winner.is_none() && (e.capped || e.steps.len() <= 1));
        // All at once.
        let e = estimate(&[&a, &c], 0.0, None);
        assert!((e.winner.unwrap().1 - 0.3).abs() < 0.01);
        // Nothing open.
        assert!(estimate(&[&a, &b], 250.0, None).winner.is_none());
    }

    #[test]
    fn json_escapes() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
        assert_eq!(ordinal(1), "1st");
        assert_eq!(ordinal(12), "12th");
        assert_eq!(ordinal(23), "23rd");
    }
}
