//! Re-entrancy, allocation failure, threads and flapping servers (items 1-4, 13;
//! `tests/e2e/hardening/threads.py`).

use crate::{fields, num, Case, LIVE};

const STAGES: [&str; 8] = [
    "LIBCTOR", "EXECTOR", "MAIN", "THREAD", "KEYDTOR", "TLSDTOR", "THREAD2", "ATEXIT",
];

/// Items 1-2: malloc calling the socket API and getaddrinfo; hooks from a library constructor,
/// the program's constructor, atexit, a pthread key destructor and a thread_local destructor.
/// Exit 0 within the 5 s timeout, every stage fails over (without dnsfo: refused), the malloc
/// hook ran, nothing on stderr.
pub fn reentry() {
    let c = Case::run("reentry");
    let (d, p) = (c.v("reentry.dnsfo"), c.v("reentry.plain"));
    c.check("reentry.exit0", d.exit == Some(0), || d.show());
    for st in STAGES {
        let l = d.line(st);
        c.check(
            format!("reentry.{}.failover", st.to_lowercase()),
            l == format!("{st} OK HELLO {LIVE}"),
            || format!("{l:?}\n{}", d.show()),
        );
    }
    c.check(
        "reentry.malloc_hook_ran",
        d.stdout.contains("MALLOCHOOK calls=") && !d.stdout.contains("calls=0"),
        || d.show(),
    );
    c.check(
        "reentry.plain_refused",
        p.line("MAIN").starts_with("MAIN ECONNREFUSED"),
        || p.show(),
    );
    c.check("reentry.stderr_quiet", d.stderr.is_empty(), || d.show());
    c.finish(12);
}

/// Item 3: an allocation failure inside a hook: dnsfo falls back to libc (the program sees
/// libc's result), never aborts the program.
pub fn oom() {
    let c = Case::run("oom");
    let (d, p) = (c.v("oom.dnsfo"), c.v("oom.plain"));
    c.check("oom.plain_survives", p.stdout.contains("SURVIVED"), || {
        p.show()
    });
    c.check(
        "oom.dnsfo_survives",
        d.exit == Some(0) && d.stdout.contains("SURVIVED") && d.signal.is_none(),
        || d.show(),
    );
    c.check(
        "oom.dnsfo_result_plausible",
        ["CONNECT OK", "CONNECT ECONNREFUSED"].contains(&d.line("CONNECT")),
        || d.show(),
    );
    c.finish(3);
}

/// Item 4a: 16 threads x 500 connects to the dead first address: all 8000 reach the live one.
pub fn hammer() {
    let c = Case::run("threads_hammer");
    let d = c.v("hammer.dnsfo");
    let f = fields(d.line("RESULT"));
    c.check("threads.hammer.exit0", d.exit == Some(0), || d.show());
    c.check(
        "threads.hammer.all_ok",
        f.get("ok") == Some(&"8000")
            && f.get("fail") == Some(&"0")
            && f.get("wrongpeer") == Some(&"0"),
        || d.show(),
    );
    c.finish(2);
}

/// Rounds of the race (`RACE_ROUNDS` in threads.py), 8 threads each.
const RACE_ROUNDS: usize = 6;

/// Item 4b: 8 threads racing a 5-address name, a fresh port per round: every connect reaches
/// the live address, none the wrong peer, each within 3 s.
pub fn race() {
    let c = Case::run("threads_race");
    let d = c.v("race.dnsfo");
    let f = fields(d.line("RESULT"));
    let want = (8 * RACE_ROUNDS).to_string();
    c.check("threads.race.exit0", d.exit == Some(0), || d.show());
    c.check(
        "threads.race.all_ok",
        f.get("ok") == Some(&want.as_str()) && f.get("wrongpeer") == Some(&"0"),
        || d.show(),
    );
    c.check("threads.race.quick", num(&f, "maxms", 99999) < 3000, || {
        d.show()
    });
    c.finish(3);
}

/// Item 13: three servers flapping every 50 ms while 8 threads connect for 5 s: no crash, no
/// hang, every connect ends in success on an address of the name or a plausible error, some
/// succeed, the servers really flapped (>= 20 cycles each), no socket or pipe leaked, at most 6
/// fds of dnsfo's service (epoll, eventfd).
pub fn flap() {
    let c = Case::run("flap");
    let d = c.v("flap.dnsfo");
    let f = fields(d.line("FLAP"));
    c.check(
        "flap.no_crash_no_hang",
        d.exit == Some(0) && !d.timed_out && d.elapsed_ms < 15000,
        || d.show(),
    );
    c.check(
        "flap.every_connect_plausible",
        f.get("bad") == Some(&"0")
            && f.get("hung") == Some(&"0")
            && f.get("wrongpeer") == Some(&"0"),
        || d.show(),
    );
    c.check("flap.some_success", num(&f, "ok", 0) > 0, || d.show());
    let cycles: Vec<i64> = c
        .fact("flap_cycles")
        .split_whitespace()
        .map(|n| n.parse().unwrap_or(-1))
        .collect();
    c.check(
        "flap.servers_flapped",
        cycles.len() == 3 && cycles.iter().all(|&n| n >= 20),
        || c.fact("flap_cycles").to_string(),
    );
    let fds_line = d.line("FDS");
    let fds: Vec<&str> = fds_line.split_whitespace().skip(3).collect();
    let leaked: Vec<&&str> = fds
        .iter()
        .filter(|w| {
            let num = w.split(':').next().unwrap_or("");
            !["0", "1", "2"].contains(&num) && !w.contains("anon_inode")
        })
        .collect();
    let service = fds.iter().filter(|w| w.contains("anon_inode")).count();
    c.check(
        "flap.no_socket_or_pipe_leak",
        d.exit == Some(0) && leaked.is_empty(),
        || fds_line.to_string(),
    );
    c.check("flap.service_fds_bounded", service <= 6, || {
        fds_line.to_string()
    });
    c.finish(6);
}
