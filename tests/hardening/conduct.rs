//! How dnsfo behaves in someone else's process: bad values of its variables, quiet by default,
//! its exported symbols and LD_BIND_NOW (items 10b-12, issue 15;
//! `tests/e2e/hardening/conduct.py`).

use crate::{show2, Case, LIVE};

/// Item 10b: every DNSFO_* variable set to text, a negative number, an overflowing number and
/// the empty string: exactly one warning line on stderr naming the variable, and the program
/// is served (it fails over as with the defaults); an empty DNSFO_NAMESERVER means the system's
/// (at most one line); DNSFO_LOG / DNSFO_LOG_FILE take free text: served, at most one line (one
/// for a log file that cannot be created); a misspelt variable gets one line naming it and the
/// setting meant.
pub fn bad_values() {
    let c = Case::run("bad_values");
    for v in c.variants("bad.") {
        let r = c.v(v);
        let (var, val) = (r.get("var"), r.get("val"));
        let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let served = r.exit == Some(0) && r.stdout == format!("GOT HELLO {LIVE}\n");
        let one_naming = |name: &str| lines.len() == 1 && lines[0].contains(name);
        let ok = match var {
            "DNSFO_NAMESERVER" if val.is_empty() => lines.len() <= 1,
            "DNSFO_LOG" | "DNSFO_LOG_FILE" => {
                lines.len() <= 1 && (val != "/nonexistent-dir/x.log" || lines.len() == 1)
            }
            "DNSFO_ATEMPT_DELAY_MS" => {
                one_naming(var) && lines[0].contains("DNSFO_ATTEMPT_DELAY_MS")
            }
            "" => false, // the harness did not say what it set
            _ => one_naming(var),
        };
        c.check(format!("bad.{var}='{val}'"), served && ok, || r.show());
    }
    c.finish(37);
}

/// Item 11: a program whose fd 2 is a TCP socket receives zero bytes from dnsfo through every
/// path (failover blocking and non-blocking, all refused, unknown name, gethostbyname), is
/// served, and gets the errors libc gives; a plain client's stdout is only its own line and its
/// stderr empty (refused first, silent first, all refused: there the same line as without).
pub fn quiet() {
    let c = Case::run("quiet");
    let (d, p) = (c.v("quiet.dnsfo"), c.v("quiet.plain"));
    c.check("quiet.ran", d.exit == Some(0), || d.show());
    c.check(
        "quiet.socket_on_fd2_gets_nothing",
        d.line("STDERR_BYTES") == "STDERR_BYTES 0",
        || d.show(),
    );
    c.check(
        "quiet.served",
        d.stdout
            .contains(&format!("R refused_first OK HELLO {LIVE}"))
            && d.stdout.contains("R silent_first OK HELLO 127.0.0.5"),
        || d.show(),
    );
    c.check(
        "quiet.errors_as_libc",
        d.line("R all_refused") == p.line("R all_refused")
            && d.line("R all_refused_nb") == p.line("R all_refused_nb"),
        || show2(&d, &p),
    );
    for nm in ["svc", "sil", "dead"] {
        let r = c.v(&format!("quiet.{nm}"));
        // Without dnsfo only the all-refused name ends by itself (with the program's own error
        // line); the silent one would just be cut off at the timeout.
        let plain = if nm == "dead" {
            c.v("quiet.dead.plain").stdout
        } else {
            ""
        };
        let only_program = [
            format!("GOT HELLO {LIVE}\n"),
            "GOT HELLO 127.0.0.5\n".into(),
        ]
        .contains(&r.stdout.to_string())
            || (nm == "dead" && r.stdout == plain);
        c.check(
            format!("quiet.{nm}.stdout_is_the_programs"),
            only_program && r.stdout.matches('\n').count() == 1,
            || r.show(),
        );
        c.check(
            format!("quiet.{nm}.stderr_empty"),
            r.stderr.is_empty(),
            || r.show(),
        );
    }
    c.finish(10);
}

/// Exactly what the library exports: the hooks and `dnsfo_pass_through`, dnsfo's own switch
/// for `dnsfo check` (src/hooks/control.rs).
const HOOKS: &[&str] = &[
    "socket",
    "setsockopt",
    "bind",
    "close",
    "dup2",
    "dup3",
    "connect",
    "getaddrinfo",
    "gethostbyname",
    "gethostbyname2",
    "gethostbyname_r",
    "gethostbyname2_r",
    "freeaddrinfo",
    "getsockopt",
    "shutdown",
    "fcntl",
    "fcntl64",
    "ioctl",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "poll",
    "ppoll",
    "__poll_chk",
    "__ppoll_chk",
    "select",
    "pselect",
    "execve",
    "execv",
    "execvp",
    "execvpe",
    "fexecve",
    "dnsfo_pass_through",
];

/// Item 12: `nm -D --defined-only` lists exactly the hooks; LD_BIND_NOW=1 works (C client,
/// python, curl, silent first).
pub fn symbols() {
    let c = Case::run("symbols");
    let syms: Vec<&str> = c.fact("nm_symbols").split_whitespace().collect();
    let extra: Vec<&str> = syms
        .iter()
        .copied()
        .filter(|s| !HOOKS.contains(s))
        .collect();
    let mut missing: Vec<&str> = HOOKS
        .iter()
        .copied()
        .filter(|h| !syms.contains(h))
        .collect();
    missing.sort_unstable();
    c.check(
        "symbols.exactly_the_hooks",
        c.fact("nm_exit") == "0" && extra.is_empty() && missing.is_empty(),
        || {
            format!(
                "extra: {extra:?}\nmissing: {missing:?}\n{}",
                c.fact("nm_stderr")
            )
        },
    );
    for (id, variant, ip) in [
        ("bindnow.c_client", "bindnow.c", LIVE),
        ("bindnow.python", "bindnow.python", LIVE),
        ("bindnow.curl", "bindnow.curl", "127.0.0.5"),
    ] {
        let r = c.v(variant);
        c.check(
            id,
            r.exit == Some(0) && r.stdout.contains(&format!("HELLO {ip}")),
            || r.show(),
        );
    }
    c.finish(4);
}
