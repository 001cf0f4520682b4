//! What bypasses libc, so dnsfo cannot see it: io_uring connects and Go (static and cgo
//! builds): dnsfo must do no harm (`tests/e2e/hardening/bypass.py`). Needs liburing-dev and
//! golang-go (.ci/run installs them); when one is missing the case fails saying so.

use crate::{show2, Case, LIVE};

/// io_uring: the ring's connect and recv (which dnsfo cannot see) give exactly what they give
/// without dnsfo (refused stays refused, up stays up) and the libc connect after them in the
/// same process still fails over (dnsfo's state is not confused by the ring's socket); once the
/// winner is known, getaddrinfo lists it first, so even the ring's connect reaches it; with
/// DNSFO_LOG=debug the library shows it was loaded and saw only the libc half.
pub fn io_uring() {
    let c = Case::run("io_uring");
    let missing = c.fact("missing");
    if !missing.is_empty() {
        c.check("uring.prerequisites", false, || missing.to_string());
        return c.finish(1);
    }
    let (d, p) = (c.v("uring.rf.dnsfo"), c.v("uring.rf.plain"));
    let setup = p.line("URING SETUP");
    c.check("uring.available", setup.is_empty(), || {
        format!("io_uring unavailable here: {setup}\n{}", p.show())
    });
    c.check("uring.ran", d.exit == Some(0) && p.exit == Some(0), || {
        show2(&d, &p)
    });
    c.check(
        "uring.refused_first.first_is_dead",
        d.line("FIRST") == p.line("FIRST") && p.line("FIRST") == "FIRST 127.0.0.2",
        || show2(&d, &p),
    );
    c.check(
        "uring.refused_first.plain_refused",
        p.line("URING") == "URING ERR ECONNREFUSED" && p.line("LIBC") == "LIBC ERR ECONNREFUSED",
        || p.show(),
    );
    c.check(
        "uring.refused_first.uring_as_without",
        d.line("URING") == p.line("URING") && p.line("URING") == "URING ERR ECONNREFUSED",
        || show2(&d, &p),
    );
    c.check(
        "uring.refused_first.libc_fails_over",
        d.line("LIBC") == format!("LIBC GOT HELLO {LIVE}"),
        || d.show(),
    );
    c.check(
        "uring.refused_first.stderr_quiet",
        d.stderr.is_empty() && p.stderr.is_empty(),
        || d.show(),
    );

    let (d, p) = (c.v("uring.upup.dnsfo"), c.v("uring.upup.plain"));
    c.check(
        "uring.up_up.ran",
        d.exit == Some(0) && p.exit == Some(0),
        || show2(&d, &p),
    );
    c.check(
        "uring.up_up.uring_as_without",
        d.line("URING") == p.line("URING") && p.line("URING") == "URING GOT HELLO 127.0.0.4",
        || show2(&d, &p),
    );
    c.check(
        "uring.up_up.stdout_as_without",
        d.stdout == p.stdout && d.line("LIBC") == "LIBC GOT HELLO 127.0.0.4",
        || show2(&d, &p),
    );

    let r = c.v("uring.known");
    c.check(
        "uring.known_winner.listed_first",
        r.exit == Some(0)
            && r.line("FIRST") == format!("FIRST {LIVE}")
            && r.line("URING") == format!("URING GOT HELLO {LIVE}"),
        || r.show(),
    );
    let r = c.v("uring.log");
    c.check(
        "uring.log.loaded_and_failed_over",
        r.exit == Some(0)
            && r.stderr.contains("initialised")
            && r.stderr.contains("127.0.0.2")
            && r.line("LIBC") == format!("LIBC GOT HELLO {LIVE}")
            && r.line("URING") == "URING ERR ECONNREFUSED",
        || r.show(),
    );
    c.finish(12);
}

/// Go: for refused-first, all-refused and up-only names, stdout and exit code identical with
/// and without dnsfo (Go fails over by itself), and what Go alone gives; the static build has
/// no ELF interpreter (so no dnsfo inside: /proc/self/maps says so), the cgo build has one (and
/// dnsfo inside), nothing else on stderr; with DNSFO_LOG=debug the cgo build uses libc's
/// resolver, dnsfo logs its initialisation and stays harmless.
pub fn go() {
    let c = Case::run("go");
    let missing = c.fact("missing");
    if !missing.is_empty() {
        c.check("go.prerequisites", false, || missing.to_string());
        return c.finish(1);
    }
    let interp_static = c.fact("go_interp_static");
    c.check(
        "go.static.is_static",
        c.has_fact("go_interp_static") && interp_static.is_empty(),
        || format!("PT_INTERP {interp_static}"),
    );
    c.check(
        "go.cgo.is_dynamic",
        !c.fact("go_interp_cgo").is_empty(),
        || "no PT_INTERP: the cgo build is static".into(),
    );
    let layouts = [
        ("rf", format!("GOT HELLO {LIVE}\n"), 0),
        ("dead", "ERR ECONNREFUSED\n".to_string(), 1),
        ("ups", "GOT HELLO 127.0.0.6\n".to_string(), 0),
    ];
    for kind in ["static", "cgo"] {
        for (name, want, code) in &layouts {
            let (d, p) = (
                c.v(&format!("go.{kind}.{name}.dnsfo")),
                c.v(&format!("go.{kind}.{name}.plain")),
            );
            c.check(
                format!("go.{kind}.{name}.as_without"),
                d.healthy() && p.healthy() && d.exit == p.exit && d.stdout == p.stdout,
                || show2(&d, &p),
            );
            c.check(
                format!("go.{kind}.{name}.expected"),
                p.stdout == want && p.exit == Some(*code),
                || show2(&d, &p),
            );
            let loaded = if kind == "cgo" {
                "MAPS libdnsfo=true\n"
            } else {
                "MAPS libdnsfo=false\n"
            };
            c.check(
                format!("go.{kind}.{name}.maps_and_quiet"),
                d.stderr == loaded && p.stderr == "MAPS libdnsfo=false\n",
                || show2(&d, &p),
            );
        }
    }
    let r = c.v("go.cgo.log");
    c.check(
        "go.cgo.log.loaded_and_harmless",
        r.exit == Some(0)
            && r.stdout == format!("GOT HELLO {LIVE}\n")
            && r.stderr.contains("initialised")
            && r.stderr.contains("MAPS libdnsfo=true")
            && r.stderr.contains("using cgo DNS resolver"),
        || r.show(),
    );
    c.finish(21);
}
