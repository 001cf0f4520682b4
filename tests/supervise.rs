//! End-to-end tests for issue 16: `dnsfo run --supervise`, the seccomp user-notification
//! supervisor for programs LD_PRELOAD cannot reach. The clients are a static C program
//! (`tests/e2e/clients/sv_client.c`, `cc -static`: glibc's getaddrinfo, ONE blocking connect to
//! the FIRST address) and a pure Go one (`tests/e2e/clients/sv_dial.go`, CGO_ENABLED=0:
//! `net.Dial` without a timeout, `http.Get`, `net.LookupHost`, goroutines). Both are checked to
//! be static (`harness c_linking`/`go_linking`: no PT_INTERP).
//!
//! Go has its own serial fallback over a name's addresses and happy eyeballs across families, so
//! every Go dial reports the connect attempts Go itself made (`TRIED n`, from
//! `net.Dialer.Control`): a supervised dial that lands on the live address with `TRIED 1` was
//! steered by dnsfo, not rescued by Go; and without dnsfo a silent first address hangs Go's
//! dial (no timeout), which proves the layout.
//!
//! | issue 16, "must show" | tests |
//! | --- | --- |
//! | 1 refused first, silent first, mixed, dead IPv6 first, all refused; C, Go net.Dial, Go http.Get; bounded time, errno as without dnsfo | `c_*`, `go_dial_*`, `go_http_*` (one per layout), `attempt_delay_setting_reaches_the_supervisor` |
//! | 2 the program's own socket (C: `dup` + `fstat`; Go: `(*TCPConn).File()`) | `same_socket_c_dup`, `same_socket_go_file` |
//! | 3 names from DNS (relayed, answers unchanged) and from /etc/hosts (item 1) | `dns_go_lookup_then_dial`, `dns_c_static_getaddrinfo` |
//! | 4 supervisor killed (SIGKILL) between connects, and during a held connect | `killed_between_connects_c`, `killed_between_connects_go`, `killed_during_held_connect_c`, `killed_during_held_connect_go` |
//! | 5 children, exec, threads | `children_and_exec_land_on_live`, `goroutines_twenty_at_once` |
//! | 6 exit status (7 → 7, SIGTERM → 143) | `exit_status_passes_through` |
//! | plain `dnsfo run` chooses the supervisor for static and Go programs (one `dnsfo: … supervis…` line, none with -q), the library for dynamic ones | `dnsfo_run_supervises_static_c_by_itself`, `dnsfo_run_supervises_go_by_itself`, `dnsfo_run_keeps_the_library_for_dynamic_programs` |
//! | 7 cost per connect, start-up | `scripts/bench` rows (`sv.*` cases), not tests |
//!
//! All runs go through three invocations of `python3 tests/e2e/supervise.py run
//! connect|dns|kill` (private user + mount + network namespaces built by
//! `scripts/lib/hermetic.py`, loopback addresses only, every run with a hard timeout, all runs
//! of a scenario at once); the three run at the same time, the first time a test needs any.
//! Layouts (connect): `rf` refused first, `sf` silent first, `mx` refused/silent/refused/silent/
//! up, `v6` refused ::2 first (glibc tries it first; Go's own RFC 6724 sort puts it last, so for
//! Go it shows no harm), `v6g` refused 2001:db8::2 first (first for glibc and Go), `ar` all
//! refused; without dnsfo, runs that hang get 3 s.
//!
//! The commands under test: `$DNSFO_SUPERVISE_CMD` (default `target/release/dnsfo run
//! --supervise --`), `$DNSFO_RUN_CMD` (default `target/release/dnsfo run`), the keeper's comm
//! `$DNSFO_SUPERVISE_KEEPER` (default `dnsfo-keeper`); `DNSFO_SUPERVISE_LOG=1` adds
//! DNSFO_LOG=debug to every dnsfo run (its lines then show in the failure reports; the
//! `dnsfo run` line-count tests fail in that mode). Run: `cargo test --release --test supervise`.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

mod support;
use support::{Outcome, Run};

const HARNESS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/supervise.py");
/// Hard cap on one harness invocation: the first one may build the Go client (a minute or two
/// with an empty GOCACHE); the harness's own watchdog fires 90 s after the build.
const HARNESS_DEADLINE: Duration = Duration::from_secs(360);

/// A supervised connect past one silent address: about the 250 ms attempt delay.
const SILENT_FIRST_MAX_MS: u64 = 2000;
/// Past two silent addresses (mx): about twice that.
const TWO_SILENT_MAX_MS: u64 = 3000;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Group {
    Connect,
    Dns,
    Kill,
}

impl Group {
    const ALL: [Group; 3] = [Group::Connect, Group::Dns, Group::Kill];

    fn arg(self) -> &'static str {
        match self {
            Group::Connect => "connect",
            Group::Dns => "dns",
            Group::Kill => "kill",
        }
    }
}

/// The harness's options from this process's environment (support::invoke does not pass
/// DNSFO_* variables on).
fn harness_args(group: Group) -> Vec<String> {
    let mut args = vec![group.arg().to_string()];
    for (var, opt) in [
        ("DNSFO_SUPERVISE_CMD", "--sv-cmd"),
        ("DNSFO_RUN_CMD", "--run-cmd"),
        ("DNSFO_SUPERVISE_KEEPER", "--keeper"),
    ] {
        if let Ok(v) = std::env::var(var) {
            args.push(opt.into());
            args.push(v);
        }
    }
    if std::env::var("DNSFO_SUPERVISE_LOG").is_ok_and(|v| v == "1") {
        args.push("--log".into());
    }
    args
}

type Outcomes = BTreeMap<Group, Result<Outcome, String>>;

/// Every scenario's harness, run once (all three at the same time) and shared by the tests.
fn outcomes() -> &'static Outcomes {
    static ALL: OnceLock<Outcomes> = OnceLock::new();
    ALL.get_or_init(|| {
        let handles: Vec<_> = Group::ALL
            .iter()
            .map(|&g| {
                let h = thread::spawn(move || {
                    let args = harness_args(g);
                    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                    support::invoke(HARNESS, &refs, HARNESS_DEADLINE)
                });
                (g, h)
            })
            .collect();
        handles
            .into_iter()
            .map(|(g, h)| {
                let r = h.join().map_err(|e| {
                    e.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "harness thread panicked".into())
                });
                (g, r)
            })
            .collect()
    })
}

#[track_caller]
fn outcome(g: Group) -> &'static Outcome {
    match &outcomes()[&g] {
        Ok(o) => {
            assert_eq!(
                o.get("harness", "sv_present"),
                "1",
                "the supervisor {} is missing: `cargo build --release` (or set DNSFO_SUPERVISE_CMD)",
                o.get("harness", "sv_cmd")
            );
            for k in ["c_linking", "go_linking"] {
                assert_eq!(
                    o.get("harness", k),
                    "static",
                    "{k}: the client is not static, LD_PRELOAD could reach it\n{o}"
                );
            }
            o
        }
        Err(e) => panic!("{g:?}: the harness failed:\n{e}"),
    }
}

/// One run of a scenario, with what the harness said about it for failure messages.
struct Case {
    o: &'static Outcome,
    name: String,
}

impl Case {
    #[track_caller]
    fn new(g: Group, name: &str) -> Case {
        let o = outcome(g);
        let _ = o.run(name); // present and not skipped
        Case {
            o,
            name: name.to_string(),
        }
    }

    fn run(&self) -> Run<'static> {
        self.o.run(&self.name)
    }

    fn lines(&self) -> Vec<&'static str> {
        self.run().stdout.lines().collect()
    }

    /// The rest of the first line that starts with `key` and a space.
    fn field(&self, key: &str) -> Option<&'static str> {
        let p = format!("{key} ");
        self.lines().into_iter().find_map(|l| l.strip_prefix(&p))
    }

    /// Every line's rest that starts with `key` and a space.
    fn fields(&self, key: &str) -> Vec<&'static str> {
        let p = format!("{key} ");
        self.lines()
            .into_iter()
            .filter_map(|l| l.strip_prefix(&p))
            .collect()
    }

    /// The last `GOT ...` or `ERR ...` line ("" when there is none).
    fn result(&self) -> &'static str {
        self.lines()
            .into_iter()
            .rev()
            .find(|l| l.starts_with("GOT ") || l.starts_with("ERR "))
            .unwrap_or("")
    }

    /// `ERR <kind> ...`: the kind (errno name).
    fn err_kind(&self) -> &'static str {
        self.result()
            .strip_prefix("ERR ")
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or("")
    }

    /// The connect's (or dial's) own duration, as the client measured it.
    fn ms(&self) -> u64 {
        self.field("MS")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(u64::MAX)
    }

    /// How many connects Go's own dialer made (`TRIED n ...`).
    fn tried(&self) -> Option<u32> {
        self.field("TRIED")
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    }

    fn extra(&self, key: &str) -> &'static str {
        self.o.get(&self.name, key)
    }

    /// Everything about this run, and the scenario's facts.
    fn report(&self) -> String {
        let r = self.run();
        let mut s = format!(
            "---- {} (harness: {})\n  cmd: {}\n  exit {:?}, signal {:?}, timed out {}, {} ms\n  stdout: {}\n  stderr: {}\n",
            self.name,
            self.o.cmdline,
            self.extra("cmd"),
            r.exit,
            self.extra("signal"),
            r.timed_out,
            r.elapsed_ms,
            r.stdout.trim_end().replace('\n', "\n          "),
            r.stderr.trim_end().replace('\n', "\n          "),
        );
        for k in [
            "env",
            "keepers_before",
            "killed_at_ms",
            "supervisor_status",
            "program_alive_after_kill",
            "after_kill_ms",
            "keepers_left",
            "stdout_eof",
            "program_killed_at_timeout",
            "dns_name",
            "dns_queries",
        ] {
            let v = self.extra(k);
            if !v.is_empty() {
                s.push_str(&format!("  {k}: {v}\n"));
            }
        }
        for ((section, key), v) in &self.o.fields {
            if section == "harness"
                && (key.starts_with("layout")
                    || key.starts_with("gai")
                    || [
                        "sv_cmd",
                        "run_cmd",
                        "syn_retries",
                        "keeper_comm",
                        "dnsfo_env",
                    ]
                    .contains(&key.as_str()))
            {
                s.push_str(&format!("  harness {key}: {}\n", v.trim_end()));
            }
        }
        s
    }

    #[track_caller]
    fn assert_exit(&self, code: i32) {
        let r = self.run();
        assert_eq!(
            (r.exit, r.timed_out),
            (Some(code), false),
            "{}: want exit {code}\n{}",
            self.name,
            self.report()
        );
    }

    #[track_caller]
    fn assert_got(&self, ip: &str) {
        self.assert_exit(0);
        assert_eq!(
            self.result(),
            format!("GOT HELLO {ip}"),
            "{}: want the live server {ip}\n{}",
            self.name,
            self.report()
        );
    }

    #[track_caller]
    fn assert_hangs(&self) {
        let r = self.run();
        assert!(
            r.timed_out && self.result().is_empty(),
            "{}: without dnsfo this run should hang on the silent address (the layout is not \
             what the test thinks)\n{}",
            self.name,
            self.report()
        );
    }

    #[track_caller]
    fn assert_ms_below(&self, max: u64) {
        assert!(
            self.ms() < max,
            "{}: the connect took {} ms (bound {max} ms)\n{}",
            self.name,
            self.ms(),
            self.report()
        );
    }

    #[track_caller]
    fn assert_tried(&self, n: u32) {
        assert_eq!(
            self.tried(),
            Some(n),
            "{}: Go's own dialer should have made {n} connect(s)\n{}",
            self.name,
            self.report()
        );
    }
}

// ------------------------------------------------------------------------------------------
// Item 1: layouts x clients
// ------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Client {
    C,
    GoDial,
    GoHttp,
}

impl Client {
    fn tag(self) -> &'static str {
        match self {
            Client::C => "c",
            Client::GoDial => "go",
            Client::GoHttp => "http",
        }
    }
}

/// The live address of a connect-scenario layout.
fn live(layout: &str) -> &'static str {
    match layout {
        "rf" => "127.0.0.3",
        "sf" => "127.0.0.5",
        "mx" => "127.0.0.10",
        "v6" => "127.0.0.11",
        "v6g" => "127.0.0.16",
        _ => panic!("layout {layout} has no live address"),
    }
}

fn case(client: Client, layout: &str, variant: &str) -> Case {
    Case::new(
        Group::Connect,
        &format!("{}.{layout}.{variant}", client.tag()),
    )
}

/// Supervised, the client lands on the live address in bounded time, by dnsfo's doing: Go's
/// dialer made one connect only; the C client's peer is the live server.
#[track_caller]
fn assert_supervised_lands(client: Client, layout: &str, max_ms: u64) {
    let sv = case(client, layout, "sv");
    sv.assert_got(live(layout));
    sv.assert_ms_below(max_ms);
    match client {
        Client::C => {
            let peer = sv.field("PEER").unwrap_or("");
            let ip = live(layout);
            assert!(
                peer == ip || peer == format!("::ffff:{ip}"),
                "{}: getpeername says {peer:?}, not {ip}\n{}",
                sv.name,
                sv.report()
            );
        }
        Client::GoDial | Client::GoHttp => sv.assert_tried(1),
    }
}

/// Without dnsfo: what the layout does to the client by itself.
#[track_caller]
fn assert_plain(client: Client, layout: &str) {
    let p = case(client, layout, "plain");
    match (client, layout) {
        (_, "sf") | (Client::GoDial | Client::GoHttp, "mx") => p.assert_hangs(),
        (Client::C, "rf" | "mx" | "v6" | "v6g" | "ar") => {
            p.assert_exit(1);
            assert_eq!(p.result(), "ERR ECONNREFUSED", "{}\n{}", p.name, p.report());
        }
        // Go's own fallback: to the next address (rf), across families (v6g)
        (_, "rf" | "v6g") => {
            p.assert_got(live(layout));
            p.assert_tried(2);
        }
        // Go's own order puts 127.0.0.11 first: healthy for Go
        (_, "v6") => {
            p.assert_got(live(layout));
            p.assert_tried(1);
        }
        (_, "ar") => {
            p.assert_exit(1);
            assert_eq!(p.err_kind(), "ECONNREFUSED", "{}\n{}", p.name, p.report());
        }
        _ => unreachable!("{client:?} {layout}"),
    }
}

/// All refused: supervised, the program gets what it gets without dnsfo (C: ECONNREFUSED from its
/// one connect; Go: the same kind of error, from its first address), quickly.
#[track_caller]
fn assert_all_refused(client: Client) {
    assert_plain(client, "ar");
    let sv = case(client, "ar", "sv");
    let p = case(client, "ar", "plain");
    sv.assert_exit(1);
    sv.assert_ms_below(SILENT_FIRST_MAX_MS);
    assert_eq!(
        sv.err_kind(),
        "ECONNREFUSED",
        "{}: the error differs from the one without dnsfo\n{}\n{}",
        sv.name,
        sv.report(),
        p.report()
    );
    if client == Client::C {
        assert_eq!(sv.result(), p.result(), "{}\n{}", sv.report(), p.report());
    }
}

fn layout_test(client: Client, layout: &str) {
    assert_plain(client, layout);
    match layout {
        "ar" => assert_all_refused(client),
        "mx" => assert_supervised_lands(client, layout, TWO_SILENT_MAX_MS),
        _ => assert_supervised_lands(client, layout, SILENT_FIRST_MAX_MS),
    }
}

macro_rules! layout_tests {
    ($($test:ident => $client:ident, $layout:literal;)*) => {$(
        #[test]
        fn $test() {
            layout_test(Client::$client, $layout)
        }
    )*};
}

layout_tests! {
    c_refused_first => C, "rf";
    c_silent_first => C, "sf";
    c_refused_silent_refused_silent_up => C, "mx";
    c_dead_ipv6_first => C, "v6";
    c_dead_ipv6_first_global => C, "v6g";
    c_all_refused => C, "ar";
    go_dial_refused_first => GoDial, "rf";
    go_dial_silent_first => GoDial, "sf";
    go_dial_refused_silent_refused_silent_up => GoDial, "mx";
    go_dial_dead_ipv6_first => GoDial, "v6";
    go_dial_dead_ipv6_first_global => GoDial, "v6g";
    go_dial_all_refused => GoDial, "ar";
    go_http_refused_first => GoHttp, "rf";
    go_http_silent_first => GoHttp, "sf";
    go_http_refused_silent_refused_silent_up => GoHttp, "mx";
    go_http_dead_ipv6_first => GoHttp, "v6";
    go_http_dead_ipv6_first_global => GoHttp, "v6g";
    go_http_all_refused => GoHttp, "ar";
}

/// DNSFO_ATTEMPT_DELAY_MS reaches the supervisor: with 1000 ms, the silent-first connect lands
/// after about a second; with the default (250 ms), well before.
#[test]
fn attempt_delay_setting_reaches_the_supervisor() {
    let slow = Case::new(Group::Connect, "c.sf.sv-delay1000");
    let dflt = case(Client::C, "sf", "sv");
    slow.assert_got(live("sf"));
    dflt.assert_got(live("sf"));
    assert!(
        slow.ms() >= 900 && slow.ms() < 3000,
        "DNSFO_ATTEMPT_DELAY_MS=1000: the connect took {} ms, not about 1000\n{}",
        slow.ms(),
        slow.report()
    );
    assert!(
        dflt.ms() < 900,
        "the default attempt delay: {} ms\n{}",
        dflt.ms(),
        dflt.report()
    );
}

// ------------------------------------------------------------------------------------------
// Item 2: the program's own socket
// ------------------------------------------------------------------------------------------

/// The connected fd is the socket the C client made before connect(), and a dup() of it is the
/// same socket: the banner was read through the dup.
#[test]
fn same_socket_c_dup() {
    for layout in ["rf", "sf", "mx", "v6", "v6g"] {
        let sv = case(Client::C, layout, "sv");
        sv.assert_got(live(layout));
        assert_eq!(
            sv.field("SAME"),
            Some("inode=1 dup=1"),
            "{}: not the program's own socket\n{}",
            sv.name,
            sv.report()
        );
    }
}

/// Go: the conn's fd is the socket Go's dialer made (fstat inode in Control vs after the dial),
/// and the banner was read through `(*net.TCPConn).File()`'s dup.
#[test]
fn same_socket_go_file() {
    for layout in ["rf", "sf", "mx", "v6g"] {
        let sv = case(Client::GoDial, layout, "sv");
        sv.assert_got(live(layout));
        assert_eq!(
            sv.field("SAME"),
            Some("inode=1 file=1"),
            "{}: not the program's own socket\n{}",
            sv.name,
            sv.report()
        );
    }
}

// ------------------------------------------------------------------------------------------
// Item 3: names from DNS
// ------------------------------------------------------------------------------------------

const DNS_LOOKUP: &str = "127.0.0.2 127.0.0.3";
const DNS_LIVE: &str = "127.0.0.3";

/// The run's DNS queries reached the test server and were answered with the table's addresses.
#[track_caller]
fn assert_dns_seen(c: &Case) {
    let n: u32 = c.extra("dns_query_count").parse().unwrap_or(0);
    assert!(
        n > 0
            && c.extra("dns_queries")
                .contains(&format!("A -> NOERROR [{DNS_LOOKUP}]")),
        "{}: the DNS server saw no (answered) A query for {}\n{}",
        c.name,
        c.extra("dns_name"),
        c.report()
    );
}

/// Go's own resolver asks the in-namespace DNS server (the name is not in /etc/hosts): the
/// supervisor relays its queries, the program gets the same answer as without dnsfo, and the
/// dial lands on the live address with one connect of Go's own (without dnsfo it hangs).
#[test]
fn dns_go_lookup_then_dial() {
    let p = Case::new(Group::Dns, "go.plain");
    let sv = Case::new(Group::Dns, "go.sv");
    assert_eq!(
        p.field("LOOKUP"),
        Some(DNS_LOOKUP),
        "without dnsfo\n{}",
        p.report()
    );
    p.assert_hangs();
    assert_dns_seen(&p);
    assert_eq!(
        sv.field("LOOKUP"),
        p.field("LOOKUP"),
        "supervised, LookupHost's answer changed\n{}\n{}",
        sv.report(),
        p.report()
    );
    sv.assert_got(DNS_LIVE);
    sv.assert_tried(1);
    sv.assert_ms_below(SILENT_FIRST_MAX_MS);
    assert_dns_seen(&sv);
}

/// The static C client's getaddrinfo (glibc's DNS code, UDP) through the supervisor: the same
/// answer as without dnsfo, and its one connect lands on the live address.
#[test]
fn dns_c_static_getaddrinfo() {
    let p = Case::new(Group::Dns, "c.plain");
    let sv = Case::new(Group::Dns, "c.sv");
    assert_eq!(
        p.field("ADDRS"),
        Some(DNS_LOOKUP),
        "without dnsfo\n{}",
        p.report()
    );
    p.assert_hangs();
    assert_dns_seen(&p);
    assert_eq!(
        sv.field("ADDRS"),
        p.field("ADDRS"),
        "supervised, getaddrinfo's answer changed\n{}\n{}",
        sv.report(),
        p.report()
    );
    sv.assert_got(DNS_LIVE);
    sv.assert_ms_below(SILENT_FIRST_MAX_MS);
    assert_dns_seen(&sv);
}

// ------------------------------------------------------------------------------------------
// Item 4: the supervisor killed
// ------------------------------------------------------------------------------------------

/// The kill itself happened as planned: a keeper was there, the supervisor died of SIGKILL, the
/// program outlived it, and no keeper outlived the program.
#[track_caller]
fn assert_killed(sv: &Case) {
    assert_ne!(
        sv.extra("killed_at_ms"),
        "",
        "{}: the supervisor was never killed (no trigger line)\n{}",
        sv.name,
        sv.report()
    );
    assert_eq!(
        sv.extra("supervisor_status"),
        "-9",
        "{}: the supervisor did not die of the SIGKILL\n{}",
        sv.name,
        sv.report()
    );
    let keepers: u32 = sv.extra("keepers_before").parse().unwrap_or(0);
    assert!(
        keepers >= 1,
        "{}: no keeper process (comm {}) before the kill\n{}",
        sv.name,
        sv.o.get("harness", "keeper_comm"),
        sv.report()
    );
    assert_eq!(
        sv.extra("program_alive_after_kill"),
        "1",
        "{}: the program died with its supervisor\n{}",
        sv.name,
        sv.report()
    );
    let r = sv.run();
    assert!(
        !r.timed_out,
        "{}: the program never ended after the kill (hung)\n{}",
        sv.name,
        sv.report()
    );
    assert_eq!(
        sv.extra("keepers_left"),
        "0",
        "{}: the keeper outlived the program\n{}",
        sv.name,
        sv.report()
    );
}

/// The STEP lines of steps 1.. (after the kill).
fn later_steps(c: &Case) -> Vec<&'static str> {
    c.fields("STEP")
        .into_iter()
        .filter(|l| !l.starts_with("0 "))
        .collect()
}

fn killed_between_connects(client: &str) {
    let sv = Case::new(Group::Kill, &format!("{client}-steps.sv"));
    let p = Case::new(Group::Kill, &format!("{client}-steps.plain"));
    p.assert_exit(0);
    assert_killed(&sv);
    sv.assert_exit(0);
    assert!(
        sv.lines().contains(&"DONE"),
        "{}: the program did not finish its steps\n{}",
        sv.name,
        sv.report()
    );
    // step 0, supervised: refused first lands on the live address, by dnsfo's doing
    let want0 = if client == "go" {
        "0 rf.test GOT HELLO 127.0.0.3 TRIED 1"
    } else {
        "0 rf.test GOT HELLO 127.0.0.3"
    };
    assert_eq!(
        sv.field("STEP"),
        Some(want0),
        "{}: step 0 (before the kill)\n{}",
        sv.name,
        sv.report()
    );
    // after the kill: every connect as without dnsfo
    let (after, plain) = (later_steps(&sv), later_steps(&p));
    assert_eq!(plain.len(), 6, "{}", p.report());
    assert_eq!(
        after,
        plain,
        "{}: after the supervisor's death the connects differ from those without dnsfo\n{}\n{}",
        sv.name,
        sv.report(),
        p.report()
    );
}

#[test]
fn killed_between_connects_c() {
    killed_between_connects("c");
}

#[test]
fn killed_between_connects_go() {
    killed_between_connects("go");
}

/// Killed 100 ms into a silent-first connect (before the 250 ms attempt delay): the program must
/// not hang; it ends as without dnsfo (with tcp_syn_retries=1: C gets ETIMEDOUT after ~3 s, Go
/// moves on to the next address by itself).
fn killed_during_held_connect(client: &str) {
    let sv = Case::new(Group::Kill, &format!("{client}-held.sv"));
    let p = Case::new(Group::Kill, &format!("{client}-held.plain"));
    assert_eq!(
        sv.o.get("harness", "syn_retries"),
        "1",
        "net.ipv4.tcp_syn_retries could not be set to 1 in the namespace"
    );
    let pr = p.run();
    assert!(
        !pr.timed_out && pr.elapsed_ms >= 2000,
        "without dnsfo the silent address should time out after ~3 s\n{}",
        p.report()
    );
    assert_killed(&sv);
    assert_eq!(
        (sv.run().exit, sv.result()),
        (pr.exit, p.result()),
        "{}: killed during the connect, the program did not end as without dnsfo\n{}\n{}",
        sv.name,
        sv.report(),
        p.report()
    );
}

#[test]
fn killed_during_held_connect_c() {
    killed_during_held_connect("c");
    let p = Case::new(Group::Kill, "c-held.plain");
    assert_eq!(p.result(), "ERR ETIMEDOUT", "{}", p.report());
}

#[test]
fn killed_during_held_connect_go() {
    killed_during_held_connect("go");
}

// ------------------------------------------------------------------------------------------
// Item 5: children, exec, threads
// ------------------------------------------------------------------------------------------

/// `sh -c 'CLIENT ...; exec CLIENT ...'`: a child of the supervised shell, then the process the
/// shell execs, both land on the live address.
#[test]
fn children_and_exec_land_on_live() {
    let sv = Case::new(Group::Connect, "sh-exec.sv");
    sv.assert_exit(0);
    let got: Vec<&str> = sv
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("GOT ") || l.starts_with("ERR "))
        .collect();
    let want = format!("GOT HELLO {}", live("sf"));
    assert_eq!(
        got,
        vec![want.as_str(), want.as_str()],
        "the child and the exec'd program should both land on the live address\n{}",
        sv.report()
    );
    let pids = sv.fields("PID");
    assert!(
        pids.len() == 2 && pids[0] != pids[1],
        "two processes expected\n{}",
        sv.report()
    );
    for ms in sv.fields("MS") {
        let ms: u64 = ms.parse().unwrap_or(u64::MAX);
        assert!(ms < SILENT_FIRST_MAX_MS, "{ms} ms\n{}", sv.report());
    }
}

/// 20 goroutines dial the silent-first name at once: all land on the live address, each with one
/// connect of Go's own.
#[test]
fn goroutines_twenty_at_once() {
    let sv = Case::new(Group::Connect, "threads.sv");
    sv.assert_exit(0);
    let head = sv.field("THREADS").unwrap_or("");
    assert!(
        head.starts_with("n=20 tried=20 "),
        "20 dials, 20 connects of Go's own expected: {head:?}\n{}",
        sv.report()
    );
    assert_eq!(
        sv.fields("GOT"),
        vec![format!("HELLO {} x20", live("sf"))],
        "every goroutine should land on the live address\n{}",
        sv.report()
    );
    assert!(sv.fields("ERR").is_empty(), "{}", sv.report());
    let ms: u64 = head
        .split_whitespace()
        .find_map(|f| f.strip_prefix("ms="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(ms < 3000, "the 20 dials took {ms} ms\n{}", sv.report());
}

// ------------------------------------------------------------------------------------------
// Item 6: exit status
// ------------------------------------------------------------------------------------------

#[test]
fn exit_status_passes_through() {
    let p = Case::new(Group::Connect, "exit7.plain");
    let sv = Case::new(Group::Connect, "exit7.sv");
    p.assert_exit(7);
    sv.assert_exit(7);
    let p = Case::new(Group::Connect, "sigterm.plain");
    assert_eq!(
        p.extra("signal"),
        "15",
        "the client should die of SIGTERM\n{}",
        p.report()
    );
    let sv = Case::new(Group::Connect, "sigterm.sv");
    sv.assert_exit(128 + 15);
}

// ------------------------------------------------------------------------------------------
// Plain `dnsfo run`: its own choice
// ------------------------------------------------------------------------------------------

/// stderr lines of dnsfo's own (`dnsfo: ...`).
fn dnsfo_lines(c: &Case) -> Vec<&'static str> {
    c.run()
        .stderr
        .lines()
        .filter(|l| l.starts_with("dnsfo: "))
        .collect()
}

fn run_supervises_by_itself(client: &str) {
    let run = Case::new(Group::Connect, &format!("auto.{client}.run"));
    let quiet = Case::new(Group::Connect, &format!("auto.{client}.run-q"));
    for c in [&run, &quiet] {
        c.assert_got(live("sf"));
        c.assert_ms_below(SILENT_FIRST_MAX_MS);
    }
    let said = dnsfo_lines(&run);
    assert!(
        said.len() == 1 && said[0].contains("supervis"),
        "`dnsfo run` on a {client} program: want one `dnsfo: ... supervis...` line on stderr, got \
         {said:?}\n{}",
        run.report()
    );
    assert_eq!(
        dnsfo_lines(&quiet),
        Vec::<&str>::new(),
        "`dnsfo run -q`: nothing of dnsfo's on stderr\n{}",
        quiet.report()
    );
}

#[test]
fn dnsfo_run_supervises_static_c_by_itself() {
    run_supervises_by_itself("c");
}

#[test]
fn dnsfo_run_supervises_go_by_itself() {
    run_supervises_by_itself("go");
    let run = Case::new(Group::Connect, "auto.go.run");
    run.assert_tried(1);
}

/// A dynamic program keeps the library (LD_PRELOAD): it lands on the live address, and dnsfo
/// says nothing about a supervisor.
#[test]
fn dnsfo_run_keeps_the_library_for_dynamic_programs() {
    for name in ["auto.dyn.run", "auto.dyn.run-q"] {
        let c = Case::new(Group::Connect, name);
        assert_eq!(
            c.o.get("harness", "dyn_linking").split_whitespace().next(),
            Some("dynamic"),
            "the client is not dynamic"
        );
        c.assert_got(live("sf"));
        assert!(
            !c.run().stderr.contains("supervis"),
            "{name}: a dynamic program was supervised\n{}",
            c.report()
        );
    }
}
