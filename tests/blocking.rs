//! End-to-end tests: unmodified blocking clients (python, perl, java, C) with and without
//! `LD_PRELOAD=libdnsfo.so`, each test in its own private user + mount + network namespace.
//!
//! Every test runs `python3 scripts/lib/hermetic.py run ...` (see that file): it re-executes
//! itself under `unshare -rmn`, writes the test's /etc/hosts, starts the servers (up: writes
//! `HELLO <ip>\n`; refused: nothing bound; silent: a full-backlog blackhole that drops SYNs), runs
//! the client once per variant (`dnsfo`, `plain` = without the library, `disable` =
//! `DNSFO_DISABLE=1`, `log`) and prints what happened. The assertions live here.
//!
//! The library is `$DNSFO_LIB`, else `target/release/libdnsfo.so`: run `cargo build --release`
//! first (`scripts/test` does). Only loopback addresses are used; every run has a hard timeout.

use std::collections::BTreeMap;
use std::time::Duration;

const HARNESS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lib/hermetic.py");
/// Hard cap on one harness invocation (its own watchdog fires well before).
const HARNESS_DEADLINE: Duration = Duration::from_secs(120);

const REFUSED_FIRST: &[&str] = &["refused:127.0.0.2", "up:127.0.0.3"];
const SILENT_FIRST: &[&str] = &["silent:127.0.0.2", "up:127.0.0.3"];
const MIXED: &[&str] = &[
    "refused:127.0.0.2",
    "silent:127.0.0.3",
    "refused:127.0.0.4",
    "silent:127.0.0.5",
    "up:127.0.0.6",
];
const ALL_REFUSED: &[&str] = &[
    "refused:127.0.0.2",
    "refused:127.0.0.3",
    "refused:127.0.0.4",
];
const ALL_SILENT: &[&str] = &["silent:127.0.0.2", "silent:127.0.0.3"];
const V6_DEAD_FIRST: &[&str] = &["refused:::1", "up:127.0.0.3"];

/// How long a client without dnsfo may hang on a silent address before we call it a hang: as
/// long as dnsfo may take (SILENT_BOUND_MS). Without it the client has not connected by the
/// time dnsfo must have; waiting longer proves nothing more (the kernel alone: ~127 s).
const HANG_S: &str = "2";
/// Bound for a failover past one silent address (the kernel alone would wait ~127 s).
const SILENT_BOUND_MS: u64 = 2000;

mod support;
use support::{assert_quiet, Outcome, Run};

/// Scenario runner: `client` against `addrs` (resolver order), with the given variants.
fn scenario(client: &str, addrs: &[&str], variants: &[&str], extra: &[&str]) -> Outcome {
    support::scenario(HARNESS, client, addrs, variants, extra, HARNESS_DEADLINE)
}

// ------------------------------------------------------------------------------------------
// Assertions
// ------------------------------------------------------------------------------------------

/// The line a client prints when its connect is refused.
fn refused_line(client: &str) -> &'static str {
    match client {
        "java" => "ERR java.net.ConnectException: Connection refused\n",
        _ => "ERR ECONNREFUSED\n",
    }
}

/// Connect time as the client itself measured it (the java, python and perl clients print
/// `connect_ms=N` on stderr: interpreter start-up excluded, so load cannot flake the bound),
/// else the harness's wall time for the whole process (C clients start in about a millisecond).
fn connect_ms(run: &Run) -> u64 {
    run.stderr
        .lines()
        .find_map(|l| l.strip_prefix("connect_ms="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(run.elapsed_ms)
}

fn assert_got(o: &Outcome, run: &Run, ip: &str) {
    assert_eq!(
        run.exit,
        Some(0),
        "{}: client did not succeed\n{o}",
        run.name
    );
    assert_eq!(
        run.stdout,
        format!("GOT HELLO {ip}\n"),
        "{}: wrong stdout\n{o}",
        run.name
    );
}

fn assert_refused(o: &Outcome, run: &Run, client: &str) {
    assert_eq!(
        run.exit,
        Some(1),
        "{}: expected a refused connect\n{o}",
        run.name
    );
    assert_eq!(
        run.stdout,
        refused_line(client),
        "{}: expected ECONNREFUSED\n{o}",
        run.name
    );
}

/// Without failover the client sits on a silent address until the harness kills it.
fn assert_hangs(o: &Outcome, run: &Run) {
    assert!(
        run.timed_out,
        "{}: expected the client to hang on the silent address\n{o}",
        run.name
    );
    assert!(
        !run.stdout.contains("GOT"),
        "{}: got a banner without failover?\n{o}",
        run.name
    );
}

/// Scenario 7: DNSFO_DISABLE=1 behaves exactly as no library at all.
fn assert_same(o: &Outcome, a: &Run, b: &Run) {
    assert_eq!(
        (a.exit, a.timed_out, a.stdout),
        (b.exit, b.timed_out, b.stdout),
        "{} and {} differ\n{o}",
        a.name,
        b.name
    );
}

// ------------------------------------------------------------------------------------------
// Scenarios 1-8 for every first-address client
// ------------------------------------------------------------------------------------------

/// 1. first address refused, second up.
fn refused_first(client: &str) {
    let o = scenario(client, REFUSED_FIRST, &["dnsfo", "plain", "disable"], &[]);
    let (d, p, x) = (o.run("dnsfo"), o.run("plain"), o.run("disable"));
    assert_got(&o, &d, "127.0.0.3");
    assert_quiet(&o, &d);
    assert_refused(&o, &p, client);
    assert_same(&o, &x, &p);
}

/// 2. first address silent, second up: quick failover (the kernel would wait ~127 s).
fn silent_first(client: &str) {
    let hang = format!("plain:{HANG_S}");
    let hang_x = format!("disable:{HANG_S}");
    let o = scenario(client, SILENT_FIRST, &["dnsfo:10", &hang, &hang_x], &[]);
    let (d, p, x) = (o.run("dnsfo"), o.run("plain"), o.run("disable"));
    assert_got(&o, &d, "127.0.0.3");
    assert_quiet(&o, &d);
    assert!(
        connect_ms(&d) < SILENT_BOUND_MS,
        "dnsfo: connect took {} ms, want < {SILENT_BOUND_MS}\n{o}",
        connect_ms(&d)
    );
    assert_hangs(&o, &p);
    assert_hangs(&o, &x);
}

/// 3. refused, silent, refused, silent, up.
fn mixed(client: &str) {
    let o = scenario(client, MIXED, &["dnsfo:10", "plain", "disable"], &[]);
    let (d, p, x) = (o.run("dnsfo"), o.run("plain"), o.run("disable"));
    assert_got(&o, &d, "127.0.0.6");
    assert_quiet(&o, &d);
    assert!(
        connect_ms(&d) < 5000,
        "dnsfo: took {} ms, want < 5000\n{o}",
        connect_ms(&d)
    );
    assert_refused(&o, &p, client);
    assert_same(&o, &x, &p);
}

/// 5. every address refused: the program sees ECONNREFUSED, as without dnsfo.
fn all_refused(client: &str) {
    let o = scenario(client, ALL_REFUSED, &["dnsfo", "plain", "disable"], &[]);
    let (d, p, x) = (o.run("dnsfo"), o.run("plain"), o.run("disable"));
    assert_refused(&o, &d, client);
    assert_quiet(&o, &d);
    assert!(
        connect_ms(&d) < 5000,
        "dnsfo: took {} ms, want < 5000\n{o}",
        connect_ms(&d)
    );
    assert_refused(&o, &p, client);
    assert_same(&o, &x, &p);
}

/// 4. a dead ::1 sorted first by glibc, then a live IPv4 address (AF_UNSPEC clients).
fn v6_dead_first(client: &str) {
    let o = scenario(client, V6_DEAD_FIRST, &["dnsfo", "plain", "disable"], &[]);
    let getent_first = o
        .get("harness", "getent")
        .split_whitespace()
        .next()
        .unwrap_or("");
    assert_eq!(
        getent_first, "::1",
        "glibc does not list the dead ::1 first\n{o}"
    );
    assert!(
        o.get("harness", "gai").starts_with("::1 "),
        "getaddrinfo order\n{o}"
    );
    let (d, p, x) = (o.run("dnsfo"), o.run("plain"), o.run("disable"));
    assert_got(&o, &d, "127.0.0.3");
    assert_quiet(&o, &d);
    assert_refused(&o, &p, client);
    assert_same(&o, &x, &p);
}

macro_rules! first_address_client {
    ($($module:ident => $client:literal),* $(,)?) => {$(
        mod $module {
            #[test]
            fn refused_first() { super::refused_first($client) }
            #[test]
            fn silent_first() { super::silent_first($client) }
            #[test]
            fn mixed() { super::mixed($client) }
            #[test]
            fn all_refused() { super::all_refused($client) }
        }
    )*};
}

first_address_client! {
    python => "python",
    perl => "perl",
    java => "java",
    c_gethostbyname => "c-ghbn",
    c_getaddrinfo => "c-gai",
}

mod v6_dead_first {
    #[test]
    fn python_unspec() {
        super::v6_dead_first("python-unspec")
    }
    #[test]
    fn c_getaddrinfo() {
        super::v6_dead_first("c-gai")
    }
    #[test]
    fn java() {
        super::v6_dead_first("java")
    }
}

// ------------------------------------------------------------------------------------------
// 9. memory: the second connect of a process never touches the dead address
// ------------------------------------------------------------------------------------------

/// Parse "LABEL k=v k=v" from the twice client into a map.
fn counter_line(o: &Outcome, stdout: &str, label: &str) -> BTreeMap<String, i64> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label} line from c_twice\n{o}"));
    line.split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap_or(i64::MIN)))
        .collect()
}

fn twice(addrs: &[&str], first_touch: &str, plain_hangs: bool) {
    let plain = if plain_hangs {
        format!("plain:{HANG_S}")
    } else {
        "plain".to_string()
    };
    // serial: the namespace's counters must see one client at a time
    let o = scenario("c-twice", addrs, &["dnsfo:15", &plain], &["--serial"]);
    let (d, p) = (o.run("dnsfo"), o.run("plain"));
    assert_eq!(d.exit, Some(0), "dnsfo: c_twice failed\n{o}");
    assert_eq!(
        d.stdout
            .lines()
            .filter(|l| *l == "GOT HELLO 127.0.0.3")
            .count(),
        2,
        "dnsfo: expected two banners from 127.0.0.3\n{o}"
    );
    assert_quiet(&o, &d);
    let first = counter_line(&o, d.stdout, "FIRST");
    assert!(
        first.get(first_touch).copied().unwrap_or(0) >= 1,
        "the first connect should have touched the dead address ({first_touch} >= 1): \
         are the counters private to the test?\n{o}"
    );
    let second = counter_line(&o, d.stdout, "SECOND");
    for k in ["AttemptFails", "OutRsts", "ListenOverflows", "ListenDrops"] {
        assert_eq!(
            second.get(k),
            Some(&0),
            "second connect touched a dead address ({k})\n{o}"
        );
    }
    if plain_hangs {
        assert_hangs(&o, &p);
    } else {
        assert_refused(&o, &p, "c-twice");
    }
}

#[test]
fn twice_refused_first() {
    twice(REFUSED_FIRST, "AttemptFails", false);
}

#[test]
fn twice_silent_first() {
    twice(SILENT_FIRST, "ListenDrops", true);
}

// ------------------------------------------------------------------------------------------
// 10. socket options, flags and bound address survive a failover, on the same fd
// ------------------------------------------------------------------------------------------

fn sockopt(addrs: &[&str], plain_hangs: bool) {
    let plain = if plain_hangs {
        format!("plain:{HANG_S}")
    } else {
        "plain".to_string()
    };
    let o = scenario("c-sockopt", addrs, &["dnsfo:10", &plain], &[]);
    let (d, p) = (o.run("dnsfo"), o.run("plain"));
    let checks: Vec<&str> = d
        .stdout
        .lines()
        .filter(|l| l.starts_with("CHECK "))
        .collect();
    assert!(checks.len() >= 8, "dnsfo: expected every check to run\n{o}");
    let failed: Vec<&&str> = checks.iter().filter(|l| !l.ends_with(" ok")).collect();
    assert!(failed.is_empty(), "dnsfo: failed checks {failed:?}\n{o}");
    assert!(
        d.stdout.contains("PEER 127.0.0.3\n"),
        "dnsfo: wrong peer\n{o}"
    );
    assert!(
        d.stdout.contains("CHECK banner ok"),
        "dnsfo: no banner\n{o}"
    );
    assert_eq!(d.exit, Some(0), "dnsfo: c_sockopt failed\n{o}");
    assert_quiet(&o, &d);
    if plain_hangs {
        assert_hangs(&o, &p);
    } else {
        assert_refused(&o, &p, "c-sockopt");
    }
}

#[test]
fn sockopt_refused_first() {
    sockopt(REFUSED_FIRST, false);
}

#[test]
fn sockopt_silent_first() {
    sockopt(SILENT_FIRST, true);
}

// ------------------------------------------------------------------------------------------
// 11, 12. the program's own connect bounds (SO_SNDTIMEO, SIGALRM) are honoured
// ------------------------------------------------------------------------------------------

/// "ERR <errno> elapsed_ms=<n> ..." -> (errno, n)
fn err_line<'a>(o: &Outcome, run: &Run<'a>) -> (&'a str, u64) {
    let line = run.stdout.lines().next().unwrap_or("");
    let mut words = line.split_whitespace();
    let parsed = match (words.next(), words.next(), words.next()) {
        (Some("ERR"), Some(e), Some(el)) => el
            .strip_prefix("elapsed_ms=")
            .and_then(|v| v.parse().ok())
            .map(|ms| (e, ms)),
        _ => None,
    };
    parsed.unwrap_or_else(|| panic!("{}: expected `ERR <errno> elapsed_ms=N`\n{o}", run.name))
}

#[test]
fn sndtimeo_all_silent() {
    let o = scenario("c-sndtimeo", ALL_SILENT, &["dnsfo:8", "plain:8"], &[]);
    let (d, p) = (o.run("dnsfo"), o.run("plain"));
    let (kernel_errno, kernel_ms) = err_line(&o, &p);
    assert!(
        ["EINPROGRESS", "EAGAIN", "ETIMEDOUT"].contains(&kernel_errno) && kernel_ms < 2000,
        "without dnsfo: unexpected SO_SNDTIMEO outcome\n{o}"
    );
    let (errno, ms) = err_line(&o, &d);
    assert_eq!(
        errno, kernel_errno,
        "dnsfo must give the errno the kernel gives\n{o}"
    );
    assert!(
        (200..=1500).contains(&ms),
        "dnsfo: returned after {ms} ms, want ~300\n{o}"
    );
    assert_eq!(d.exit, Some(1), "{o}");
    assert_quiet(&o, &d);
}

#[test]
fn sigalrm_all_silent() {
    let o = scenario("c-sigalrm", ALL_SILENT, &["dnsfo:8", "plain:8"], &[]);
    let (d, p) = (o.run("dnsfo"), o.run("plain"));
    let (kernel_errno, _) = err_line(&o, &p);
    assert_eq!(
        kernel_errno, "EINTR",
        "without dnsfo the alarm interrupts connect\n{o}"
    );
    let (errno, ms) = err_line(&o, &d);
    assert_eq!(
        errno, "EINTR",
        "dnsfo must let SIGALRM interrupt connect\n{o}"
    );
    assert!(
        ms < 1500,
        "dnsfo: connect returned after {ms} ms, want ~300\n{o}"
    );
    assert!(
        d.elapsed_ms < 5000,
        "dnsfo: process took {} ms\n{o}",
        d.elapsed_ms
    );
    assert_quiet(&o, &d);
}

// ------------------------------------------------------------------------------------------
// 13. DNSFO_LOG=debug + DNSFO_LOG_FILE: the log goes to the file, nothing to stderr
// ------------------------------------------------------------------------------------------

#[test]
fn log_file_refused_first() {
    let o = scenario("c-ghbn", REFUSED_FIRST, &["log"], &[]);
    let l = o.run("log");
    assert_got(&o, &l, "127.0.0.3");
    assert_eq!(
        l.stderr, "",
        "log: nothing may reach stderr when DNSFO_LOG_FILE is set\n{o}"
    );
    let outcome_words = [
        "refused",
        "econnrefused",
        "connected",
        "success",
        "winner",
        "won",
        "failed",
        "dead",
        "live",
        "ok",
    ];
    let informative = l.log.lines().any(|line| {
        let lower = line.to_ascii_lowercase();
        ["svc", "127.0.0.2", "127.0.0.3"]
            .iter()
            .any(|n| lower.contains(n))
            && outcome_words.iter().any(|w| lower.contains(w))
    });
    assert!(
        informative,
        "log: no line names the name/address and an outcome\n{o}"
    );
}

// ------------------------------------------------------------------------------------------
// Lookups after a failover: same addresses, winner first, known-dead last
// ------------------------------------------------------------------------------------------

#[test]
fn lookups_reordered_after_failover() {
    let addrs = &["refused:127.0.0.2", "refused:127.0.0.3", "up:127.0.0.4"];
    let o = scenario("c-order", addrs, &["dnsfo", "plain"], &[]);
    let (d, p) = (o.run("dnsfo"), o.run("plain"));
    let line = |run: &Run, tag: &str| -> String {
        run.stdout
            .lines()
            .find(|l| l.starts_with(tag))
            .unwrap_or_else(|| panic!("{}: no {tag} line\n{o}", run.name))
            .to_string()
    };
    // Before any connect the resolver's order stands, canonical name on the head.
    assert_eq!(
        line(&d, "GAI1"),
        "GAI1 127.0.0.2 127.0.0.3 127.0.0.4 canon=svc",
        "{o}"
    );
    assert_eq!(line(&d, "CONNECT"), "CONNECT ok", "{o}");
    // After the failover: the winner first, the dead ones last (soonest to recover first),
    // the same three addresses, the canonical name still on the head node.
    assert_eq!(
        line(&d, "GAI2"),
        "GAI2 127.0.0.4 127.0.0.2 127.0.0.3 canon=svc",
        "{o}"
    );
    assert_eq!(
        line(&d, "GHBN"),
        "GHBN 127.0.0.4 127.0.0.2 127.0.0.3",
        "{o}"
    );
    // Without dnsfo nothing moves.
    assert_eq!(line(&p, "CONNECT"), "CONNECT ERR ECONNREFUSED", "{o}");
    assert_eq!(
        line(&p, "GAI2"),
        "GAI2 127.0.0.2 127.0.0.3 127.0.0.4 canon=svc",
        "{o}"
    );
    assert_eq!(
        line(&p, "GHBN"),
        "GHBN 127.0.0.2 127.0.0.3 127.0.0.4",
        "{o}"
    );
}

/// Issue 11's family rule: the program's socket is never replaced, so an `AF_INET` socket is
/// steered among IPv4 addresses only. A name whose first IPv4 address is refused and whose only
/// live address is `::1` fails on an `AF_INET` socket exactly as without dnsfo (the lookup listed
/// both families, so dnsfo knew of `::1`). So does an `AF_INET6` socket that the program pointed
/// at the IPv4 address (`::ffff:127.0.0.2`): after an attempt to a mapped IPv4 peer the kernel
/// cannot take that socket to a native IPv6 peer (it stays in SYN_SENT), so dnsfo does not try.
#[test]
fn af_inet_socket_never_reaches_ipv6() {
    const SCRIPT: &str = r#"
import socket, sys
name, port, family = sys.argv[1], int(sys.argv[2]), sys.argv[3]
infos = socket.getaddrinfo(name, port, socket.AF_UNSPEC, socket.SOCK_STREAM)
fam = socket.AF_INET if family == "4" else socket.AF_INET6
first = next(i for i in infos if i[0] == socket.AF_INET)[4]
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(5)
target = first if fam == socket.AF_INET else ("::ffff:" + first[0], first[1])
try:
    s.connect(target)
    print("GOT", s.recv(100).decode().strip())
except OSError as e:
    print("ERR", __import__("errno").errorcode.get(e.errno, e.errno))
"#;
    for (family, want_dnsfo) in [("4", "ERR ECONNREFUSED"), ("6", "ERR ECONNREFUSED")] {
        let args = [
            "--addr",
            "refused:127.0.0.2",
            "--addr",
            "up:::1",
            "--variant",
            "dnsfo:8",
            "--variant",
            "plain:8",
            "--",
            "python3",
            "-c",
            SCRIPT,
            "{name}",
            "{port}",
            family,
        ];
        let o = support::invoke(HARNESS, &args, HARNESS_DEADLINE);
        let (d, p) = (o.run("dnsfo"), o.run("plain"));
        assert_eq!(
            p.stdout.trim(),
            "ERR ECONNREFUSED",
            "AF_INET{family}: without dnsfo the first IPv4 address is refused\n{o}"
        );
        assert_eq!(
            d.stdout.trim(),
            want_dnsfo,
            "AF_INET{family} with dnsfo\n{o}"
        );
    }
}

/// Issue 12 item 5: the program's choice stands. After a failover (the first address refused,
/// the winner .3), connects to each *live* address still reach that address: client-side round
/// robin and health checkers see every address (the old library sent them all to the winner).
#[test]
fn after_a_failover_each_live_address_is_reached() {
    const SCRIPT: &str = r#"
import socket, sys
name, port = sys.argv[1], int(sys.argv[2])
addrs = [a[4][0] for a in socket.getaddrinfo(name, port, socket.AF_INET, socket.SOCK_STREAM)]
out = []
for ip in ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.3", "127.0.0.4"]:
    s = socket.socket()
    s.settimeout(5)
    s.connect((ip, port))
    out.append(ip + "=" + s.recv(100).decode().split()[1])
    s.close()
print(" ".join(out))
"#;
    let args = [
        "--addr",
        "refused:127.0.0.2",
        "--addr",
        "up:127.0.0.3",
        "--addr",
        "up:127.0.0.4",
        "--variant",
        "dnsfo:10",
        "--",
        "python3",
        "-c",
        SCRIPT,
        "{name}",
        "{port}",
    ];
    let o = support::invoke(HARNESS, &args, HARNESS_DEADLINE);
    let d = o.run("dnsfo");
    assert_eq!(
        d.stdout.trim(),
        "127.0.0.2=127.0.0.3 127.0.0.3=127.0.0.3 127.0.0.4=127.0.0.4 127.0.0.3=127.0.0.3 127.0.0.4=127.0.0.4",
        "the dead address fails over; every live address is reached as chosen\n{o}"
    );
}
