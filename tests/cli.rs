//! The `dnsfo` command: help/version and exit codes, `dnsfo run` (environment, LD_PRELOAD,
//! warnings for statically linked and Go programs), `dnsfo check` against hermetic names with
//! live, refused and silent addresses, and `dnsfo demo`.
//!
//! Names and servers come from scripts/lib/hermetic.py (a private user + mount + network
//! namespace per run); every address is loopback; every run has a hard time limit.

mod support;

use std::path::Path;
use std::time::Duration;
use support::*;

const T: Duration = Duration::from_secs(20);

fn version_line() -> String {
    format!("dnsfo {}\n", env!("CARGO_PKG_VERSION"))
}

#[test]
fn help_and_version_everywhere() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["help"],
        &["run", "--help"],
        &["check", "--help"],
        &["demo", "--help"],
        &["help", "check"],
        &["cache", "--help"],
        &["help", "cache"],
    ] {
        let mut c = dnsfo();
        c.args(args);
        let o = run(c, T);
        assert_eq!(o.code, Some(0), "{args:?}\n{o}");
        assert!(o.stdout.starts_with("Usage: dnsfo"), "{args:?}\n{o}");
        assert!(o.stdout.contains("Exit status"), "{args:?}\n{o}");
        assert!(o.stderr.is_empty(), "{args:?}\n{o}");
    }
    for args in [
        &["--version"][..],
        &["-V"],
        &["run", "-V"],
        &["check", "--version"],
        &["demo", "-V"],
    ] {
        let mut c = dnsfo();
        c.args(args);
        let o = run(c, T);
        assert_eq!(o.code, Some(0), "{args:?}\n{o}");
        assert!(o.stdout.starts_with(&version_line()), "{args:?}\n{o}");
    }
    // The command's own version and the library's, read from the library file (issue 15: the
    // library carried none).
    for args in [&["--version"][..], &["version"], &["run", "--version"]] {
        let mut c = dnsfo();
        c.args(args);
        let o = run(c, T);
        assert_eq!(
            o.stdout,
            format!(
                "{}library {} ({})\n",
                version_line(),
                built_lib().display(),
                env!("CARGO_PKG_VERSION")
            ),
            "{args:?}\n{o}"
        );
    }
}

#[test]
fn usage_errors_exit_2_and_64_for_check() {
    for args in [
        &[][..],
        &["frobnicate"],
        &["help", "frobnicate"],
        &["run"],
        &["run", "--bogus", "true"],
        &["run", "--attempt-delay", "abc", "--", "true"],
        &["run", "--timeout=3600001", "true"],
        &["run", "--verbose=1", "true"],
        &["run", "--log-file"],
        &["check"],
        &["check", "a", "b"],
        &["check", "svc:99999"],
        &["check", "svc:"],
        &["check", "[::1"],
        &["check", "--timeout", "0", "svc"],
        &["check", "--json=1", "svc"],
        &["demo", "--cutoff", "0"],
        &["demo", "extra"],
        &["cache"],
        &["cache", "frobnicate"],
        &["cache", "--bogus", "list"],
        &["cache", "list", "extra"],
        &["cache", "flush", "a.test", "b.test"],
    ] {
        let mut c = dnsfo();
        c.args(args);
        let o = run(c, T);
        // `check`'s 0..=3 are monitoring states; its usage error is EX_USAGE.
        let want = if args.first() == Some(&"check") {
            64
        } else {
            2
        };
        assert_eq!(o.code, Some(want), "{args:?}\n{o}");
        assert!(
            !o.stderr.is_empty(),
            "{args:?}: a usage error says why\n{o}"
        );
        assert!(o.stdout.is_empty(), "{args:?}\n{o}");
    }
}

#[test]
fn run_program_not_found_or_not_executable() {
    built_lib();
    let tmp = TempDir::new("cli-noexec");
    let plain = tmp.path().join("not-executable");
    std::fs::write(&plain, "data").unwrap();
    for (prog, code) in [
        ("/nonexistent/dnsfo-test-program", 127),
        ("dnsfo-test-no-such-command", 127),
        (plain.to_str().unwrap(), 126),
        (tmp.path().to_str().unwrap(), 126),
    ] {
        let mut c = dnsfo();
        c.args(["run", "--", prog]);
        let o = run(c, T);
        assert_eq!(o.code, Some(code), "{prog}\n{o}");
        assert!(o.stderr.starts_with("dnsfo run: "), "{prog}\n{o}");
    }
    // No library: 125, and the program does not run.
    let mut c = dnsfo();
    c.env("DNSFO_LIB", tmp.path().join("missing.so"))
        .args(["run", "--", "sh", "-c", "echo ran"]);
    let o = run(c, T);
    assert_eq!(o.code, Some(125), "{o}");
    assert!(o.stdout.is_empty() && o.stderr.contains("DNSFO_LIB"), "{o}");
}

#[test]
fn run_sets_the_environment_and_appends_to_ld_preload() {
    let lib = std::fs::canonicalize(built_lib()).unwrap();
    let tmp = TempDir::new("cli-env");
    let script = "printf 'LD_PRELOAD=%s\\n' \"$LD_PRELOAD\"; env | grep '^DNSFO_' | sort; exit 7";
    let mut c = dnsfo();
    c.current_dir(tmp.path())
        .env("LD_PRELOAD", "/nonexistent/other.so")
        .args([
            "run",
            "--attempt-delay",
            "100",
            "--timeout=5000",
            "--dead-ttl",
            "0042",
            "--disable",
            "--log-file",
            "rel.log",
            "--",
            "sh",
            "-c",
            script,
        ]);
    let o = run(c, T);
    assert_eq!(o.code, Some(7), "the program's own exit status\n{o}");
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let want = format!(
        "LD_PRELOAD=/nonexistent/other.so {}\nDNSFO_ATTEMPT_DELAY_MS=100\nDNSFO_CONNECT_TIMEOUT_MS=5000\n\
         DNSFO_DEAD_TTL_MS=42\nDNSFO_DISABLE=1\nDNSFO_LOG=debug\nDNSFO_LOG_FILE={}/rel.log\n",
        lib.display(),
        dir.display()
    );
    assert_eq!(o.stdout, want, "{o}");

    // Already preloaded: not added twice. No options: no DNSFO_* variable set.
    let mut c = dnsfo();
    c.env("LD_PRELOAD", &lib).args(["run", "sh", "-c", script]);
    let o = run(c, T);
    assert_eq!(o.stdout, format!("LD_PRELOAD={}\n", lib.display()), "{o}");
    // Arguments after the program are the program's, even when they look like options.
    let mut c = dnsfo();
    c.args([
        "run",
        "-v",
        "sh",
        "-c",
        "echo \"$DNSFO_LOG $0 $1\"",
        "--help",
        "-V",
    ]);
    let o = run(c, T);
    assert_eq!(o.code, Some(0), "{o}");
    assert_eq!(o.stdout, "debug --help -V\n", "{o}");
}

/// Compiles C `source` into `dir/name` with `extra` flags; `None` (with the reason) if it cannot.
fn compile(
    dir: &Path,
    name: &str,
    source: &str,
    extra: &[&str],
) -> Result<std::path::PathBuf, String> {
    if !have("cc") {
        return Err("cc not found (Debian: gcc)".into());
    }
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    let out = dir.join(name);
    let mut c = clean("cc");
    c.args(extra).arg("-o").arg(&out).arg(&src);
    let o = run(c, Duration::from_secs(60));
    if o.code != Some(0) {
        return Err(format!("cc {extra:?} failed: {}", o.stderr.trim()));
    }
    Ok(out)
}

#[test]
fn run_supervises_a_static_binary_and_warns_with_no_supervise() {
    built_lib();
    let tmp = TempDir::new("cli-static");
    let libc_a = Path::new("/usr/lib/x86_64-linux-gnu/libc.a");
    if !libc_a.exists() && !Path::new("/usr/lib/libc.a").exists() {
        return skip(
            "run_supervises_a_static_binary_and_warns_with_no_supervise",
            "no libc.a for `cc -static` (Debian: libc6-dev)",
        );
    }
    let prog = compile(
        tmp.path(),
        "static_hello",
        "#include <stdio.h>\nint main(int c, char **v) { printf(\"static hello %s\\n\", c > 1 ? v[1] : \"\"); return 3; }\n",
        &["-static", "-O1"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut c = dnsfo();
    c.args(["run", "--"]).arg(&prog).arg("arg1");
    let o = run(c, T);
    assert_eq!(o.code, Some(3), "the program ran, with its own status\n{o}");
    assert_eq!(o.stdout, "static hello arg1\n", "{o}");
    assert!(
        o.stderr.starts_with("dnsfo: ")
            && o.stderr.contains("statically linked")
            && o.stderr.contains(prog.to_str().unwrap())
            && o.stderr.contains("supervising its connects"),
        "the supervisor, said once\n{o}"
    );
    assert_eq!(o.stderr.lines().count(), 1, "one line\n{o}");
    // --quiet: nothing said.
    let mut c = dnsfo();
    c.args(["run", "-q", "--"]).arg(&prog);
    let o = run(c, T);
    assert_eq!((o.code, o.stderr.as_str()), (Some(3), ""), "{o}");
    // --no-supervise: LD_PRELOAD only, and the warning that it cannot reach the program.
    let mut c = dnsfo();
    c.args(["run", "--no-supervise", "--"]).arg(&prog);
    let o = run(c, T);
    assert_eq!(o.code, Some(3), "{o}");
    assert!(
        o.stderr.contains("dnsfo: warning:")
            && o.stderr.contains("statically linked")
            && o.stderr.contains("running it anyway"),
        "{o}"
    );
    // A script whose interpreter is that static binary: warned about too.
    let script = tmp.path().join("script");
    std::fs::write(&script, format!("#!{}\n", prog.display())).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut c = dnsfo();
    c.args(["run", "--"]).arg(&script);
    let o = run(c, T);
    assert_eq!(o.code, Some(3), "{o}");
    assert!(
        o.stderr.contains("interpreter") && o.stderr.contains("statically linked"),
        "{o}"
    );
}

#[test]
fn run_supervises_a_go_binary_but_not_a_plain_dynamic_one() {
    built_lib();
    let tmp = TempDir::new("cli-go");
    // What the Go toolchain leaves in every binary: a .go.buildinfo section.
    let go = compile(
        tmp.path(),
        "go_like",
        "__attribute__((section(\".go.buildinfo\"), used)) static const char info[32] = \"\\xff Go buildinf:\";\n\
         int main(void) { return 0; }\n",
        &["-O1"],
    );
    let plain = compile(
        tmp.path(),
        "plain",
        "int main(void) { return 0; }\n",
        &["-O1"],
    );
    let (go, plain) = match (go, plain) {
        (Ok(g), Ok(p)) => (g, p),
        (Err(e), _) | (_, Err(e)) => {
            return skip("run_supervises_a_go_binary_but_not_a_plain_dynamic_one", &e)
        }
    };
    let mut c = dnsfo();
    c.args(["run", "--"]).arg(&go);
    let o = run(c, T);
    assert_eq!(o.code, Some(0), "{o}");
    assert!(
        o.stderr.starts_with("dnsfo: ")
            && o.stderr.contains("Go program")
            && o.stderr.contains("supervising"),
        "{o}"
    );
    let mut c = dnsfo();
    c.args(["run", "--no-supervise", "--"]).arg(&go);
    let o = run(c, T);
    assert_eq!(o.code, Some(0), "{o}");
    assert!(
        o.stderr.contains("dnsfo: warning:") && o.stderr.contains("Go program"),
        "{o}"
    );
    let mut c = dnsfo();
    c.args(["run", "--"]).arg(&plain);
    let o = run(c, T);
    assert_eq!((o.code, o.stderr.as_str()), (Some(0), ""), "{o}");
    // Programs on PATH and scripts through env are judged too (sh: dynamic, no warning).
    let mut c = dnsfo();
    c.args(["run", "sh", "-c", "exit 0"]);
    let o = run(c, T);
    assert_eq!((o.code, o.stderr.as_str()), (Some(0), ""), "{o}");
}

/// `dnsfo check` in a namespace where svc = silent, refused, up (in that resolver order); also
/// a name that does not resolve (exit 3).
#[test]
fn check_shows_live_refused_and_silent_rows() {
    if let Some(why) = hermetic_unavailable() {
        return skip("check_shows_live_refused_and_silent_rows", &why);
    }
    let script = format!(
        "{DNSFO} check --timeout 700 svc:7000; echo \"rc=$?\"; \
         {DNSFO} check --timeout 700 nosuch.invalid:7000 2>&1; echo \"rc=$?\""
    );
    let h = Hermetic::run(
        &["silent:127.0.0.2", "refused:127.0.0.3", "up:127.0.0.4"],
        &["sh", "-c", &script],
        20,
    );
    assert_eq!(
        h.get("harness", "gai"),
        "127.0.0.2 127.0.0.3 127.0.0.4",
        "resolver order\n{h}"
    );
    let out = h.stdout();
    let (table, rest) = out.split_once("rc=").unwrap_or_else(|| panic!("{h}"));
    let table = &unfold(table);
    assert!(
        rest.starts_with("1\n"),
        "exit 1 (degraded): one address of three answers\n{h}"
    );
    assert!(
        table.starts_with("dnsfo check svc:7000: 3 addresses"),
        "{h}"
    );
    let r = row(table, "127.0.0.2");
    assert!(
        r.contains("IPv4") && r.contains("no answer") && r.contains(">700 ms") && r.contains("1st"),
        "{r}\n{h}"
    );
    assert!(!r.contains("picks"), "{r}");
    let r = row(table, "127.0.0.3");
    assert!(
        r.contains("refused") && r.contains("2nd") && !r.contains("picks"),
        "{r}\n{h}"
    );
    let r = row(table, "127.0.0.4");
    assert!(
        r.contains("open") && r.contains("3rd") && r.contains("<- dnsfo picks"),
        "{r}\n{h}"
    );
    assert!(
        table.contains(
            "without dnsfo: a program that connects to the first address (127.0.0.2) hangs"
        ),
        "{h}"
    );
    // About one attempt delay (250 ms) plus two loopback round trips.
    let about: u64 = table
        .split_once("with dnsfo:    connects to 127.0.0.4 in about ")
        .and_then(|(_, r)| r.split_once(" ms"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no estimate\n{h}"));
    assert!((250..400).contains(&about), "{about} ms\n{h}");
    assert!(table.contains("127.0.0.2 no answer, next after the 250 ms attempt delay; 127.0.0.3 refused, next at once"), "{h}");
    assert!(
        !table.contains('\x1b'),
        "no colours when stdout is not a terminal"
    );
    let resolve_err = rest.split_once('\n').unwrap().1;
    assert!(
        resolve_err.contains("dnsfo check: nosuch.invalid: cannot resolve"),
        "{h}"
    );
    assert!(resolve_err.ends_with("rc=3\n"), "{h}");
}

/// `dnsfo check` sees the network as a plain program does however the library got into its
/// process: preloaded under another file name, or through `/etc/ld.so.preload` (a copy of /etc
/// with that file, bind-mounted in the test's mount namespace). Before, it dropped only
/// `LD_PRELOAD` entries named `libdnsfo.so`: its probe of the silent address failed over and
/// the row said `open` in ~250 ms.
#[test]
fn check_never_goes_through_dnsfo_however_it_is_loaded() {
    if let Some(why) = hermetic_unavailable() {
        return skip("check_never_goes_through_dnsfo_however_it_is_loaded", &why);
    }
    let lib = built_lib();
    let lib = lib.display();
    let script = format!(
        "t=$(mktemp -d) && cp {lib} $t/libother.so && \
         echo '== renamed' && LD_PRELOAD=$t/libother.so {DNSFO} check --timeout 700 svc:7000; \
         echo \"rc=$?\"; \
         mkdir $t/etc && cp -a /etc/. $t/etc/ 2>/dev/null; echo {lib} > $t/etc/ld.so.preload && \
         mount --bind $t/etc /etc && echo '== ld.so.preload' && \
         LD_PRELOAD= {DNSFO} check --timeout 700 svc:7000; echo \"rc=$?\""
    );
    let h = Hermetic::run(
        &["silent:127.0.0.2", "up:127.0.0.3"],
        &["sh", "-c", &script],
        20,
    );
    let out = h.stdout();
    for case in ["renamed", "ld.so.preload"] {
        let part = out
            .split(&format!("== {case}\n"))
            .nth(1)
            .and_then(|p| p.split("rc=").next())
            .unwrap_or_else(|| panic!("{case}: no output\n{h}"));
        let r = row(part, "127.0.0.2");
        assert!(
            r.contains("no answer") && !r.contains("open"),
            "{case}: the silent address must show as silent: {r}\n{h}"
        );
        assert!(row(part, "127.0.0.3").contains("open"), "{case}\n{h}");
    }
}

/// The shared winner cache, as the library reads it: a cached winner is tried first.
#[test]
fn check_shows_the_cached_winner() {
    if let Some(why) = hermetic_unavailable() {
        return skip("check_shows_the_cached_winner", &why);
    }
    // The harness gives each run a private DNSFO_CACHE_DIR; seed it as the library writes it.
    let script = format!(
        "printf 'svc 7000 127.0.0.4 %s\\n' $(( $(date +%s) * 1000 + 60000 )) > \"$DNSFO_CACHE_DIR/winners\"; \
         {DNSFO} check --timeout 500 svc:7000; echo \"rc=$?\"; \
         DNSFO_CACHE=0 {DNSFO} check --timeout 500 svc:7000; echo \"rc=$?\""
    );
    let h = Hermetic::run(
        &["silent:127.0.0.2", "up:127.0.0.3", "up:127.0.0.4"],
        &["sh", "-c", &script],
        20,
    );
    let out = h.stdout();
    let (cached, off) = out.split_once("rc=1\n").unwrap_or_else(|| panic!("{h}"));
    let (cached, off) = (&unfold(cached), &unfold(off));
    let r = row(cached, "127.0.0.4");
    assert!(
        r.contains("1st (cached)") && r.contains("<- dnsfo picks"),
        "{r}\n{h}"
    );
    assert!(row(cached, "127.0.0.2").contains("2nd"), "{h}");
    assert!(
        cached.contains("cache:         127.0.0.4 won for svc:7000 (in /"),
        "{h}"
    );
    assert!(cached.contains("a fresh program tries it first"), "{h}");
    assert!(
        cached.contains("with dnsfo:    connects to 127.0.0.4 in about 0 ms"),
        "{h}"
    );
    assert!(off.contains("cache:         off (DNSFO_CACHE=0)"), "{h}");
    assert!(row(off, "127.0.0.3").contains("<- dnsfo picks"), "{h}");
    assert!(off.ends_with("rc=1\n"), "{h}");
}

#[test]
fn check_all_dead_exits_2() {
    if let Some(why) = hermetic_unavailable() {
        return skip("check_all_dead_exits_2", &why);
    }
    let h = Hermetic::run(
        &["refused:127.0.0.2", "silent:127.0.0.3"],
        &[DNSFO, "check", "--timeout", "500", "{name}:{port}"],
        20,
    );
    assert_eq!(h.exit(), "2", "exit 2 (down) when no address answers\n{h}");
    let out = &unfold(h.stdout());
    assert!(row(out, "127.0.0.2").contains("refused"), "{h}");
    assert!(row(out, "127.0.0.3").contains("no answer"), "{h}");
    assert!(!out.contains("picks"), "{h}");
    assert!(out.contains("without dnsfo: a program that connects to the first address (127.0.0.2) fails at once (ECONNREFUSED)"), "{h}");
    assert!(out.contains("with dnsfo:    no address answers"), "{h}");
    assert!(
        !out.contains("why: the first live address"),
        "nothing is live\n{h}"
    );
    assert!(h.elapsed_ms() < 5000, "parallel probes, bounded\n{h}");
}

#[test]
fn check_json_with_ipv6() {
    if let Some(why) = hermetic_unavailable() {
        return skip("check_json_with_ipv6", &why);
    }
    let script = format!(
        "{DNSFO} check --json --timeout 500 --attempt-delay 100 svc:7000; echo \"rc=$?\"; \
         {DNSFO} check --timeout 500 [::1]:7000; echo \"rc=$?\""
    );
    let h = Hermetic::run(&["refused:127.0.0.2", "up:::1"], &["sh", "-c", &script], 20);
    let out = h.stdout();
    let (json, rest) = out.split_once("\nrc=").unwrap_or_else(|| panic!("{h}"));
    assert!(rest.starts_with("1\n"), "degraded\n{h}");
    assert!(
        json.starts_with(
            "{\"state\":\"degraded\",\"name\":\"svc\",\"port\":7000,\"probe_timeout_ms\":500,\"attempt_delay_ms\":100,"
        ),
        "{h}"
    );
    assert!(
        json.contains(
            "\"address\":\"::1\",\"family\":\"ipv6\",\"result\":\"open\",\"errno\":null,"
        ),
        "{h}"
    );
    assert!(json.contains("\"address\":\"127.0.0.2\",\"family\":\"ipv4\",\"result\":\"refused\",\"errno\":\"ECONNREFUSED\","), "{h}");
    assert!(json.contains("\"pick\":{\"address\":\"::1\""), "{h}");
    assert!(json.ends_with("\"reachable\":true}"), "{h}");
    assert!(rest.contains("dnsfo check [::1]:7000: 1 address"), "{h}");
    assert!(
        row(rest, "::1").contains("IPv6") && row(rest, "::1").contains("open"),
        "{h}"
    );
    assert!(rest.ends_with("rc=0\n"), "{h}");
}

#[test]
fn demo_before_and_after() {
    built_lib();
    if let Some(why) = hermetic_unavailable() {
        return skip("demo_before_and_after", &why);
    }
    let mut c = dnsfo();
    c.args(["demo", "--cutoff", "2", "--port", "8081"]);
    let o = run(c, Duration::from_secs(40));
    assert_eq!(o.code, Some(0), "{o}");
    let s = &o.stdout;
    assert!(s.contains("1. What dnsfo sees:"), "{o}");
    assert!(s.contains("<- dnsfo picks"), "{o}");
    assert!(
        s.contains("2. Without dnsfo:") && s.contains("no answer after 2."),
        "{o}"
    );
    assert!(s.contains("GOT HELLO 127.0.0.3"), "{o}");
    assert!(s.contains("the library's log (-v):"), "{o}");
    assert_eq!(
        s.matches("GOT HELLO 127.0.0.3").count(),
        2,
        "steps 3 and 4\n{o}"
    );
    assert!(s.contains("4. Again, in a new process"), "{o}");
    assert!(s.contains("Result: without dnsfo the program hung"), "{o}");
    assert!(o.elapsed < Duration::from_secs(15), "{o}");
}

/// Each exit status of `dnsfo check`, as a monitoring system reads it (0 healthy, 1 degraded,
/// 2 down, 3 resolve error, 64 usage), and errors under `--json` as JSON on stdout.
#[test]
fn check_exit_codes_and_json_errors() {
    if let Some(why) = hermetic_unavailable() {
        return skip("check_exit_codes_and_json_errors", &why);
    }
    // svc: 127.0.0.2 up, 127.0.0.3 refused. The harness's name is svc; the others come from a
    // hosts file of this script's own (one up name, one all-refused name).
    let script = format!(
        "printf '127.0.0.2 up.test\\n127.0.0.3 dead.test\\n' >> /etc/hosts; \
         for t in up.test:7000 svc:7000 dead.test:7000 nosuch.invalid:7000 svc:99999; do \
           {DNSFO} check --json --timeout 500 $t 2>/dev/null; echo \"rc=$?\"; done"
    );
    let h = Hermetic::run(
        &["up:127.0.0.2", "refused:127.0.0.3"],
        &["sh", "-c", &script],
        20,
    );
    let out = h.stdout();
    // Each run prints one JSON line, then the script its status: pairs of lines.
    let lines: Vec<&str> = out.lines().collect();
    let runs: Vec<(&str, &str)> = lines
        .chunks(2)
        .map(|p| {
            (
                p[0],
                p.get(1).and_then(|l| l.strip_prefix("rc=")).unwrap_or("?"),
            )
        })
        .collect();
    let want = [
        ("{\"state\":\"healthy\"", "0"),
        ("{\"state\":\"degraded\"", "1"),
        ("{\"state\":\"down\"", "2"),
        (
            "{\"error\":{\"kind\":\"resolve\",\"message\":\"nosuch.invalid: cannot resolve",
            "3",
        ),
        ("{\"error\":{\"kind\":\"usage\",\"message\":", "64"),
    ];
    assert_eq!(runs.len(), want.len(), "{h}");
    for ((json, rc), (prefix, code)) in runs.iter().zip(want) {
        assert!(json.starts_with(prefix), "{prefix}: {json}\n{h}");
        assert!(json.ends_with('}'), "one JSON object: {json}\n{h}");
        assert_eq!(*rc, code, "{prefix}\n{h}");
    }
}

/// `dnsfo cache list|flush [NAME]` on a cache the library wrote (as it writes it): lists the
/// live entries, flushes one name's or all; refuses a directory the library would not trust.
#[test]
fn cache_list_and_flush() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new("cli-cache");
    let dir = tmp.path().join("cache");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let far = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 60_000;
    let lines = format!(
        "a.test 7000 127.0.0.3 {far}\na.test 7000 127.0.0.2 {far} dead\n\
         b.test 443 ::1 {far} rtt 850 120\nold.test 80 127.0.0.9 1\n"
    );
    let file = dir.join("winners");
    std::fs::write(&file, lines).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cache = |args: &[&str]| {
        let mut c = dnsfo();
        c.arg("cache").args(args).env("DNSFO_CACHE_DIR", &dir);
        run(c, T)
    };
    let o = cache(&["list"]);
    assert_eq!(o.code, Some(0), "{o}");
    let rows: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(rows.len(), 3, "the expired entry is not listed\n{o}");
    assert!(rows[0].starts_with("a.test 7000 127.0.0.3 winner "), "{o}");
    assert!(rows[1].starts_with("a.test 7000 127.0.0.2 dead "), "{o}");
    assert!(
        rows[2].starts_with("b.test 443 ::1 rtt 850us±120us "),
        "{o}"
    );
    assert!(rows[0].ends_with("60s") || rows[0].ends_with("59s"), "{o}");
    let o = cache(&["flush", "a.test"]);
    assert_eq!(o.code, Some(0), "{o}");
    assert!(
        o.stdout.starts_with("dnsfo cache: removed 2 entries from "),
        "{o}"
    );
    assert!(cache(&["list"]).stdout.starts_with("b.test 443 ::1 rtt"));
    let o = cache(&["flush"]);
    assert!(
        o.stdout.starts_with("dnsfo cache: removed 1 entry from "),
        "{o}"
    );
    assert_eq!(cache(&["list"]).stdout, "");
    // A group-writable directory: the library would not use it; neither does the command.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o770)).unwrap();
    let o = cache(&["list"]);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(
        o.stderr.contains("not the user's own private directory"),
        "{o}"
    );
    // The cache turned off.
    let mut c = dnsfo();
    c.args(["cache", "flush"]).env("DNSFO_CACHE", "0");
    let o = run(c, T);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(o.stderr.contains("the cache is off"), "{o}");
}

/// `DNSFO_STATS=1`: the exit line counts the failover and gives the time saved as an estimate
/// from this kernel's own SYN timeout (the namespace's `tcp_syn_retries`, set to 2 here: 7 s).
#[test]
fn stats_line_counts_a_failover_and_estimates_from_the_kernel() {
    if let Some(why) = hermetic_unavailable() {
        return skip(
            "stats_line_counts_a_failover_and_estimates_from_the_kernel",
            &why,
        );
    }
    let client = "import socket; a = socket.getaddrinfo('svc', 7000, socket.AF_INET, \
                  socket.SOCK_STREAM)[0][4]; s = socket.socket(); s.connect(a); print('OK', a[0])";
    let script = format!(
        "echo 2 > /proc/sys/net/ipv4/tcp_syn_retries 2>/dev/null; \
         echo retries=$(cat /proc/sys/net/ipv4/tcp_syn_retries); \
         DNSFO_STATS=1 {DNSFO} run -q -- python3 -c \"{client}\" 2>&1"
    );
    let h = Hermetic::run(
        &["silent:127.0.0.2", "up:127.0.0.3"],
        &["sh", "-c", &script],
        20,
    );
    let out = h.stdout();
    let retries: u32 = out
        .lines()
        .find_map(|l| l.strip_prefix("retries="))
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or_else(|| panic!("{h}"));
    let syn_s = (1u64 << (retries.min(20) + 1)) - 1;
    assert!(
        out.contains("OK 127.0.0.2"),
        "the program's connect landed\n{h}"
    );
    let line = out
        .lines()
        .find(|l| l.contains(" stats: "))
        .unwrap_or_else(|| panic!("no stats line\n{h}"));
    assert!(
        line.contains("connects seen 1, failovers 1, addresses marked dead 1"),
        "{line}\n{h}"
    );
    assert!(
        line.contains(&format!(
            "(estimate: the kernel's {syn_s} s SYN timeout per silent address passed)"
        )),
        "{line}\n{h}"
    );
    let saved: f64 = line
        .split("time saved ~")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(
        saved <= syn_s as f64 - 0.1 && saved > syn_s as f64 - 2.0,
        "the kernel's {syn_s} s minus the ~0.25 s the failover took: {saved}\n{h}"
    );
}

/// A set-group-ID program (of another group): the loader ignores LD_PRELOAD for it (secure
/// execution), so `dnsfo run` says the library will not be in it, and it is not.
#[test]
fn run_warns_about_a_setgid_program() {
    use std::os::unix::fs::PermissionsExt;
    built_lib();
    let tmp = TempDir::new("cli-setgid");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let prog = compile(
        tmp.path(),
        "in_process",
        "#define _GNU_SOURCE\n#include <dlfcn.h>\n#include <stdio.h>\n\
         int main(void) { puts(dlsym(RTLD_DEFAULT, \"dnsfo_pass_through\") ? \"loaded\" : \"not loaded\"); return 0; }\n",
        &["-O1"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let plain = {
        let mut c = dnsfo();
        c.args(["run", "--"]).arg(&prog);
        run(c, T)
    };
    assert_eq!(
        plain.stdout, "loaded\n",
        "the probe sees the library normally\n{plain}"
    );
    assert_eq!(plain.stderr, "", "{plain}");
    // Another group needs root (CI runs as root).
    if std::os::unix::fs::chown(&prog, None, Some(65534)).is_err() {
        return skip(
            "run_warns_about_a_setgid_program",
            "chown to another group needs root",
        );
    }
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o2755)).unwrap();
    let mut c = dnsfo();
    c.args(["run", "--"]).arg(&prog);
    let o = run(c, T);
    assert_eq!(o.code, Some(0), "{o}");
    assert!(
        o.stderr.contains("is set-group-ID") && o.stderr.contains("will not be in the process"),
        "{o}"
    );
    assert_eq!(o.stdout, "not loaded\n", "what the warning says is so\n{o}");
}

/// A connect that cannot finish says so at info every 2, 4, 8 ... s, naming the addresses it
/// waits on: blocking (python, no timeout; stopped by `timeout`) and through the background
/// driver (python `settimeout`).
#[test]
fn a_stuck_connect_logs_what_it_still_waits_on() {
    if let Some(why) = hermetic_unavailable() {
        return skip("a_stuck_connect_logs_what_it_still_waits_on", &why);
    }
    let client = |tmo: &str| {
        format!(
            "import socket; a = socket.getaddrinfo('svc', 7000, socket.AF_INET, \
             socket.SOCK_STREAM)[0][4]; s = socket.socket(); s.settimeout({tmo}); s.connect(a)"
        )
    };
    let lib = built_lib();
    let script = format!(
        "t=$(mktemp -d) && export LD_PRELOAD={lib} DNSFO_LOG=info DNSFO_CACHE=0; \
         timeout -s KILL 4.6 python3 -c \"{blocking}\" 2> $t/blocking.log & \
         python3 -c \"{nb}\" 2> $t/nb.log; wait; \
         echo == blocking; cat $t/blocking.log; echo == nb; cat $t/nb.log; rm -rf $t",
        lib = lib.display(),
        blocking = client("None"),
        nb = client("4.5"),
    );
    let h = Hermetic::run(
        &["silent:127.0.0.2", "silent:127.0.0.3"],
        &["sh", "-c", &script],
        20,
    );
    let out = h.stdout();
    let (blocking, nb) = out.split_once("== nb\n").unwrap_or_else(|| panic!("{h}"));
    for (path, log) in [("blocking", blocking), ("non-blocking", nb)] {
        let notes: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("still waiting on"))
            .collect();
        assert_eq!(notes.len(), 2, "{path}: at 2 s and 4 s\n{h}");
        for (n, s) in notes.iter().zip(["2", "4"]) {
            assert!(
                n.contains(" dnsfo INFO: svc: connect on fd "),
                "{path}: {n}\n{h}"
            );
            assert!(
                n.contains("127.0.0.2:7000") && n.contains("127.0.0.3:7000"),
                "{path}: {n}\n{h}"
            );
            assert!(n.ends_with(&format!(" after {s} s")), "{path}: {n}\n{h}");
        }
    }
}

/// `eval "$(dnsfo on)"` in bash: the shell's next program fails over; `dnsfo status` says on
/// (0) then off (1) after `eval "$(dnsfo off)"`, which leaves LD_PRELOAD as it was. `dnsfo env`
/// prints the lines for a systemd unit and a Dockerfile.
#[test]
fn on_off_status_in_bash_and_env_lines() {
    if let Some(why) = hermetic_unavailable() {
        return skip("on_off_status_in_bash_and_env_lines", &why);
    }
    let lib = built_lib();
    let client = "import socket; a = socket.getaddrinfo('svc', 7000, socket.AF_INET, \
                  socket.SOCK_STREAM)[0][4]; s = socket.socket(); s.settimeout(1.5); \
                  s.connect(a); print('peer', s.getpeername()[0])";
    let script = format!(
        "unset LD_PRELOAD; eval \"$({DNSFO} on)\"; eval \"$({DNSFO} on)\"; \
         echo \"preload=$LD_PRELOAD\"; {DNSFO} status; echo \"rc=$?\"; \
         python3 -c \"{client}\" 2>&1; \
         eval \"$({DNSFO} off)\"; echo \"preload=$(printenv LD_PRELOAD || echo unset)\"; \
         {DNSFO} status; echo \"rc=$?\"; python3 -c \"{client}\" 2>&1 | tail -1; \
         {DNSFO} env; {DNSFO} env --systemd; {DNSFO} env --docker"
    );
    let h = Hermetic::run(
        &["silent:127.0.0.2", "up:127.0.0.3"],
        &["bash", "-c", &script],
        20,
    );
    let lib = lib.display();
    let want = format!(
        "preload={lib}\n\
         dnsfo is on: LD_PRELOAD has {lib}\nrc=0\n\
         peer 127.0.0.3\n\
         preload=unset\n\
         dnsfo is off: LD_PRELOAD does not have {lib}\nrc=1\n\
         TimeoutError: timed out\n\
         LD_PRELOAD={lib}\nEnvironment=LD_PRELOAD={lib}\nENV LD_PRELOAD={lib}\n"
    );
    assert_eq!(h.stdout(), want, "{h}");
}

/// Issue 15: on a terminal `dnsfo check` shows its header at once, each row as soon as its probe
/// ends, and a live "waiting on ..." line for the rest; at the end that transient output is
/// erased and the report follows. Before, nothing at all appeared until the slowest probe ended
/// (here the silent address's 3 s timeout). The terminal is `script`'s pseudo-terminal; every
/// chunk of output is stamped with the ms since the start.
#[test]
fn check_streams_rows_on_a_terminal_before_the_slowest_probe_ends() {
    if let Some(why) = hermetic_unavailable() {
        return skip("check_streams_rows_on_a_terminal", &why);
    }
    if !have("script") {
        return skip(
            "check_streams_rows_on_a_terminal",
            "no `script` (util-linux)",
        );
    }
    let stamp = "import os, sys, time\n\
                 t0 = time.monotonic()\n\
                 while True:\n    \
                     b = os.read(0, 65536)\n    \
                     if not b:\n        break\n    \
                     sys.stdout.write('%d %r\\n' % ((time.monotonic() - t0) * 1000, b))\n";
    let script = format!(
        "script -qfc '{DNSFO} check --timeout 3000 svc:7000' /dev/null | python3 -c \"$STAMP\""
    );
    let h = Hermetic::run(
        &["silent:127.0.0.2", "up:127.0.0.3"],
        &["env", &format!("STAMP={stamp}"), "sh", "-c", &script],
        20,
    );
    let chunks: Vec<(u64, &str)> = h
        .stdout()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(ms, b)| Some((ms.parse().ok()?, b)))
        .collect();
    let first = |what: &str| {
        chunks
            .iter()
            .find(|(_, b)| b.contains(what))
            .map(|(ms, _)| *ms)
            .unwrap_or_else(|| panic!("no {what:?} on the terminal\n{h}"))
    };
    let header = first("probed in parallel");
    let open_row = first("open");
    let waiting = first("waiting on 127.0.0.2");
    let report = first("without dnsfo");
    assert!(
        header < 1500 && open_row < 1500 && waiting < 1500,
        "header {header} ms, live row {open_row} ms, waiting line {waiting} ms: want each well \
         before the silent probe's 3000 ms\n{h}"
    );
    assert!(
        report >= 2900,
        "the report waits for every probe ({report} ms)\n{h}"
    );
    // The transient rows were erased (cursor up, clear to the end) before the report.
    assert!(first("\\x1b[J") <= report, "{h}");
}

/// Issue 15: `DNSFO_STATS_FILE` keeps a running daemon's counters in Prometheus text format,
/// refreshed while it runs (before: stats only at a normal exit, nothing for a daemon or after
/// SIGTERM). The daemon fails over once, waits, connects again; the file is read while it runs,
/// and again after SIGTERM killed it.
#[test]
fn stats_file_updates_for_a_running_daemon() {
    if let Some(why) = hermetic_unavailable() {
        return skip("stats_file_updates_for_a_running_daemon", &why);
    }
    let lib = built_lib();
    let daemon = "import socket, time, os, sys\n\
                  go = sys.argv[1]\n\
                  socket.create_connection(('svc', 7000)).close()\n\
                  while not os.path.exists(go): time.sleep(0.05)\n\
                  socket.create_connection(('svc', 7000)).close()\n\
                  time.sleep(30)\n";
    let script = format!(
        "t=$(mktemp -d) && export DNSFO_STATS_FILE=$t/dnsfo-%p.prom DNSFO_STATS_INTERVAL_MS=200 \
         DNSFO_CACHE=0; LD_PRELOAD={lib} python3 -c \"$DAEMON\" $t/go & pid=$!; sleep 1; \
         echo == first; cat $t/dnsfo-$pid.prom; touch $t/go; sleep 1; echo == second; \
         cat $t/dnsfo-$pid.prom; kill -TERM $pid; wait; sleep 0.5; echo == killed; \
         cat $t/dnsfo-$pid.prom; echo == files; ls $t; rm -rf $t",
        lib = lib.display()
    );
    let h = Hermetic::run(
        &["refused:127.0.0.2", "up:127.0.0.3"],
        &["env", &format!("DAEMON={daemon}"), "sh", "-c", &script],
        20,
    );
    let out = h.stdout();
    let part = |name: &str| part_of(out, name).unwrap_or_else(|| panic!("no {name} part\n{h}"));
    let value = |text: &str, metric: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(&format!("{metric}{{program=\"python3\",pid=\"")))
            .and_then(|l| l.rsplit_once(' '))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or_else(|| panic!("no {metric} in:\n{text}\n{h}"))
    };
    let (first, second, killed) = (part("first"), part("second"), part("killed"));
    assert!(
        first.contains("# TYPE dnsfo_failovers_total counter"),
        "{h}"
    );
    assert_eq!(value(first, "dnsfo_connects_total"), 1.0, "{h}");
    assert_eq!(value(first, "dnsfo_failovers_total"), 1.0, "{h}");
    assert_eq!(
        value(second, "dnsfo_connects_total"),
        2.0,
        "while it runs\n{h}"
    );
    assert!(
        value(second, "dnsfo_stats_updated_timestamp_seconds")
            > value(first, "dnsfo_stats_updated_timestamp_seconds"),
        "refreshed\n{h}"
    );
    assert_eq!(
        value(killed, "dnsfo_connects_total"),
        2.0,
        "after SIGTERM\n{h}"
    );
    // Replaced whole each time: no temporary file is left beside it.
    let files: Vec<&str> = part("files").lines().collect();
    assert_eq!(
        files.len(),
        2,
        "the stats file and `go` only: {files:?}\n{h}"
    );
}

/// Issue 15: config files. The user's file (`$XDG_CONFIG_HOME/dnsfo/config`) sets the attempt
/// delay; `DNSFO_CONFIG` names one more file, whose `[name svc]` section gives svc its own
/// delay, or excludes it; the environment overrides every file; a bad value warns with its file
/// and line and the default is used; a file others may write is refused with a warning. Each
/// run connects once to [silent, up], so its time is the attempt delay in force.
#[test]
fn config_files_precedence_per_name_rules_and_bad_values() {
    if let Some(why) = hermetic_unavailable() {
        return skip(
            "config_files_precedence_per_name_rules_and_bad_values",
            &why,
        );
    }
    let lib = built_lib();
    let client = "import socket, time\n\
                  a = socket.getaddrinfo('svc', 7000, socket.AF_INET, socket.SOCK_STREAM)[0][4]\n\
                  s = socket.socket(); s.settimeout(1.5); t = time.monotonic()\n\
                  try:\n    s.connect(a); r = 'OK'\n\
                  except OSError as e:\n    r = 'ERR ' + type(e).__name__\n\
                  print('RESULT', r, int((time.monotonic() - t) * 1000))\n";
    let script = format!(
        "t=$(mktemp -d) && mkdir -p $t/xdg/dnsfo && cd $t && \
         export LD_PRELOAD={lib} DNSFO_CACHE=0 XDG_CONFIG_HOME=$t/xdg; \
         c() {{{{ echo \"== $1\"; python3 -c \"$CLIENT\" 2>&1; }}}}; \
         printf 'attempt_delay_ms = 40  # user file\\n' > xdg/dnsfo/config; chmod 600 xdg/dnsfo/config; \
         c user; DNSFO_ATTEMPT_DELAY_MS=500 c env; \
         printf '[name svc]\\nattempt_delay_ms = 120\\n' > extra.conf; DNSFO_CONFIG=$t/extra.conf c per-name; \
         printf '[name *.other]\\nexclude = yes\\n[name svc]\\nexclude = yes\\n' > extra.conf; DNSFO_CONFIG=$t/extra.conf c excluded; \
         printf 'attempt_delay_ms = fast\\n' > xdg/dnsfo/config; c bad-value; \
         printf 'attempt_delay_ms = 40\\n' > xdg/dnsfo/config; chmod 666 xdg/dnsfo/config; c writable; \
         echo '== end'; rm -rf $t",
        lib = lib.display()
    );
    let h = Hermetic::run(
        &["silent:127.0.0.2", "up:127.0.0.3"],
        &["env", &format!("CLIENT={client}"), "sh", "-c", &script],
        40,
    );
    let out = h.stdout();
    let part = |name: &str| part_of(out, name).unwrap_or_else(|| panic!("no {name} part\n{h}"));
    let result = |name: &str| -> (String, u64) {
        let line = part(name)
            .lines()
            .find_map(|l| l.strip_prefix("RESULT "))
            .unwrap_or_else(|| panic!("{name}: no RESULT\n{h}"));
        let (r, ms) = line.rsplit_once(' ').expect("RESULT r ms");
        (r.to_string(), ms.parse().expect("ms"))
    };
    // The alternatives are 40, 120, 250 (the default) and 500 ms: each bound tells them apart.
    let (r, ms) = result("user");
    assert!(
        r == "OK" && (35..200).contains(&ms),
        "user file's 40 ms: {r} {ms}\n{h}"
    );
    let (r, ms) = result("env");
    assert!(
        r == "OK" && ms >= 490,
        "the environment's 500 ms: {r} {ms}\n{h}"
    );
    let (r, ms) = result("per-name");
    assert!(
        r == "OK" && (115..240).contains(&ms),
        "svc's own 120 ms: {r} {ms}\n{h}"
    );
    let (r, _) = result("excluded");
    assert_eq!(
        r, "ERR TimeoutError",
        "excluded: the silent first address, as without dnsfo\n{h}"
    );
    let (r, ms) = result("bad-value");
    assert!(
        r == "OK" && (245..490).contains(&ms),
        "a bad value: the default: {r} {ms}\n{h}"
    );
    assert!(
        part("bad-value").contains(
            "xdg/dnsfo/config:1: DNSFO_ATTEMPT_DELAY_MS=\"fast\" is not a whole number of milliseconds"
        ),
        "{h}"
    );
    let (r, ms) = result("writable");
    assert!(
        r == "OK" && (245..490).contains(&ms),
        "refused file: the default: {r} {ms}\n{h}"
    );
    assert!(
        part("writable").contains("may be written by others than its owner; ignored"),
        "{h}"
    );
}

/// Issue 15, "dnsfo for a whole host": the library in `/etc/ld.so.preload` and its settings in
/// a root-owned `/etc/dnsfo.conf` (a private copy of /etc mounted over it, in the namespace).
/// A program started with nothing in its environment fails over, and logs at the file's level;
/// `DNSFO_*` variables still override the file.
#[test]
fn whole_host_setup_ld_so_preload_and_etc_dnsfo_conf() {
    if let Some(why) = hermetic_unavailable() {
        return skip("whole_host_setup_ld_so_preload_and_etc_dnsfo_conf", &why);
    }
    let lib = built_lib();
    // The first address only (socket.create_connection would try the next by itself).
    let client = "import socket\n\
                  a = socket.getaddrinfo('svc', 7000, socket.AF_INET, socket.SOCK_STREAM)[0][4]\n\
                  s = socket.socket(); s.settimeout(3); s.connect(a)\n\
                  print('GOT', s.recv(64).decode().strip())\n";
    let script = format!(
        "t=$(mktemp -d) && mkdir $t/etc && cp -a /etc/. $t/etc/ 2>/dev/null; \
         echo {lib} > $t/etc/ld.so.preload && \
         printf 'log = info\\ncache = no\\n' > $t/etc/dnsfo.conf && chmod 644 $t/etc/dnsfo.conf && \
         mount --bind $t/etc /etc && \
         echo == host; env -u LD_PRELOAD python3 -c \"$CLIENT\" 2>&1; \
         echo == env-overrides; DNSFO_DISABLE=1 env -u LD_PRELOAD python3 -c \"$CLIENT\" 2>&1; \
         echo == end",
        lib = lib.display()
    );
    let h = Hermetic::run(
        &["refused:127.0.0.2", "up:127.0.0.3"],
        &["env", &format!("CLIENT={client}"), "sh", "-c", &script],
        20,
    );
    let part = |name: &str| part_of(h.stdout(), name).unwrap_or_else(|| panic!("no {name}\n{h}"));
    let host = part("host");
    assert!(host.contains("GOT HELLO 127.0.0.3"), "failed over\n{h}");
    assert!(
        host.contains("INFO: svc: 127.0.0.2:7000 failed over to 127.0.0.3:7000"),
        "/etc/dnsfo.conf's `log = info`\n{h}"
    );
    let env = part("env-overrides");
    assert!(
        env.contains("ConnectionRefusedError") && !env.contains("GOT"),
        "DNSFO_DISABLE=1 overrides the file: no failover\n{h}"
    );
}

/// Issue 15: the systemd drop-in `dnsfo env --systemd` prints is one systemd itself accepts
/// (`systemd-analyze verify` reads the unit with its drop-in and reports any line it does not
/// take), and the environment it sets, as systemd parses `Environment=` (whitespace-separated
/// assignments, double quotes), gives the service's program dnsfo: it fails over. (No systemd
/// runs as PID 1 here to start the unit itself.)
#[test]
fn systemd_drop_in_from_dnsfo_env() {
    if let Some(why) = hermetic_unavailable() {
        return skip("systemd_drop_in_from_dnsfo_env", &why);
    }
    let dir = TempDir::new("systemd");
    let drop_in = run(
        {
            let mut c = dnsfo();
            c.args(["env", "--systemd"]);
            c
        },
        Duration::from_secs(10),
    );
    assert_eq!(drop_in.code, Some(0), "{drop_in}");
    let unit_dir = dir.path().join("units");
    std::fs::create_dir_all(unit_dir.join("app.service.d")).expect("mkdir");
    std::fs::write(
        unit_dir.join("app.service"),
        "[Unit]\nDescription=a service\n[Service]\nExecStart=/usr/bin/python3 -c pass\n",
    )
    .expect("write");
    std::fs::write(
        unit_dir.join("app.service.d/dnsfo.conf"),
        format!("[Service]\n{}", drop_in.stdout),
    )
    .expect("write");
    if have("systemd-analyze") {
        let mut c = clean("systemd-analyze");
        c.env("SYSTEMD_UNIT_PATH", format!("{}:", unit_dir.display()))
            .arg("verify")
            .arg(unit_dir.join("app.service"));
        let v = run(c, Duration::from_secs(30));
        assert!(
            !v.stderr.contains("dnsfo.conf") && !v.stdout.contains("dnsfo.conf"),
            "systemd refuses a line of the drop-in:\n{v}"
        );
    } else {
        skip(
            "systemd_drop_in_from_dnsfo_env (verify)",
            "no systemd-analyze",
        );
    }
    // Environment= as systemd splits it.
    let mut assignments = Vec::new();
    for line in drop_in.stdout.lines() {
        let value = line
            .strip_prefix("Environment=")
            .expect("only Environment= lines");
        let mut word = String::new();
        let mut quoted = false;
        for ch in value.chars() {
            match ch {
                '"' => quoted = !quoted,
                c if c.is_whitespace() && !quoted => {
                    if !word.is_empty() {
                        assignments.push(std::mem::take(&mut word));
                    }
                }
                c => word.push(c),
            }
        }
        if !word.is_empty() {
            assignments.push(word);
        }
    }
    assert!(
        assignments.iter().any(|a| a.starts_with("LD_PRELOAD=")),
        "{assignments:?}"
    );
    let client = "import socket; \
                  a = socket.getaddrinfo('svc', 7000, socket.AF_INET, socket.SOCK_STREAM)[0][4]; \
                  s = socket.socket(); s.settimeout(3); s.connect(a); \
                  print('GOT', s.recv(64).decode().strip())";
    let mut cmd: Vec<&str> = vec!["env", "-i", "PATH=/usr/bin:/bin"];
    cmd.extend(assignments.iter().map(String::as_str));
    cmd.extend(["python3", "-c", client]);
    let h = Hermetic::run(&["refused:127.0.0.2", "up:127.0.0.3"], &cmd, 20);
    assert!(h.stdout().contains("GOT HELLO 127.0.0.3"), "{h}");
}

/// Issue 15: `dnsfo run` says so when the program it starts clears the environment on the way
/// (`env -i`, `sudo`): the real program would get neither LD_PRELOAD nor DNSFO_*. Before, it
/// said nothing and the program simply had no failover. `-q` silences it; LD_PRELOAD given
/// after `-i` is no reason to warn.
#[test]
fn run_warns_when_the_environment_is_cleared_on_the_way() {
    let go = |args: &[&str]| {
        let mut c = dnsfo();
        c.arg("run").args(args);
        run(c, T)
    };
    let o = go(&["--", "env", "-i", "true"]);
    assert_eq!(o.code, Some(0), "{o}");
    assert!(
        o.stderr.contains("env -i clears the environment") && o.stderr.contains("no LD_PRELOAD"),
        "{o}"
    );
    let o = go(&["-q", "--", "env", "-i", "true"]);
    assert_eq!((o.code, o.stderr.as_str()), (Some(0), ""), "{o}");
    let o = go(&["--", "env", "-i", "LD_PRELOAD=/nonexistent.so", "true"]);
    assert!(!o.stderr.contains("clears the environment"), "{o}");
    let o = go(&["--", "env", "A=1", "true"]);
    assert_eq!(o.stderr, "", "{o}");
}

/// `DNSFO_STATS_FILE` with `%p`: a forked child writes its own file with its own counts (it
/// starts from zero), and its parent's file keeps the parent's.
#[test]
fn stats_file_per_process_after_fork() {
    if let Some(why) = hermetic_unavailable() {
        return skip("stats_file_per_process_after_fork", &why);
    }
    let lib = built_lib();
    let prog = "import socket, os, time\n\
                socket.create_connection(('svc', 7000)).close()\n\
                pid = os.fork()\n\
                if pid == 0:\n    \
                    socket.create_connection(('svc', 7000)).close()\n    \
                    socket.create_connection(('svc', 7000)).close()\n    \
                    time.sleep(0.5)\n    \
                    os._exit(0)\n\
                os.waitpid(pid, 0)\n\
                print('CHILD', pid)\n";
    let script = format!(
        "t=$(mktemp -d) && DNSFO_STATS_FILE=$t/dnsfo-%p.prom DNSFO_STATS_INTERVAL_MS=100 \
         DNSFO_CACHE=0 LD_PRELOAD={lib} python3 -c \"$PROG\" > $t/out; echo == out; cat $t/out; \
         for f in $t/*.prom; do echo \"== $(basename $f)\"; grep '^dnsfo_connects_total' $f; done; \
         rm -rf $t",
        lib = lib.display()
    );
    let h = Hermetic::run(
        &["refused:127.0.0.2", "up:127.0.0.3"],
        &["env", &format!("PROG={prog}"), "sh", "-c", &script],
        20,
    );
    let out = h.stdout();
    let child: u32 = part_of(out, "out")
        .and_then(|p| p.trim().strip_prefix("CHILD "))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no child pid\n{h}"));
    let files: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("== dnsfo-"))
        .collect();
    assert_eq!(files.len(), 2, "a file per process: {files:?}\n{h}");
    let count = |pid: &str| -> String {
        part_of(out, &format!("dnsfo-{pid}.prom"))
            .and_then(|p| p.rsplit_once(' '))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| panic!("no file for {pid}\n{h}"))
    };
    let parent = files
        .iter()
        .map(|f| f.trim_end_matches(".prom"))
        .find(|p| *p != child.to_string())
        .unwrap_or_else(|| panic!("no parent file\n{h}"));
    assert_eq!(count(&child.to_string()), "2", "the child's own two\n{h}");
    assert_eq!(count(parent), "1", "the parent's one\n{h}");
}
