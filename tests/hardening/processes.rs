//! Processes: fork with busy threads, spawn and exec chains, fds in children (item 5;
//! `tests/e2e/hardening/processes.py`).

use crate::{fields, num, Case, LIVE};

/// Item 5a: fork() with 4 busy threads: all 40 children resolve and fail over, each within 5 s;
/// the same with daemon-style children that close every inherited fd first.
pub fn fork_busy() {
    let c = Case::run("fork_busy");
    for mode in ["keep", "closeall"] {
        let d = c.v(&format!("fork.{mode}"));
        let f = fields(d.line("FORK"));
        c.check(
            format!("fork.{mode}.all_children_ok"),
            d.exit == Some(0) && f.get("ok") == Some(&"40"),
            || d.show(),
        );
        c.check(
            format!("fork.{mode}.each_within_5s"),
            num(&f, "maxms", 99999) < 5000,
            || d.show(),
        );
    }
    c.finish(4);
}

/// Item 5b: posix_spawn and system() children of a busy threaded program, a Python subprocess
/// child, and bash -> python -> exec curl each keep failover (silent first); without dnsfo the
/// chain hangs (or fails).
pub fn spawn() {
    let c = Case::run("spawn");
    let d = c.v("spawn.dnsfo");
    c.check(
        "spawn.posix_spawn_and_system",
        d.exit == Some(0)
            && d.stdout.contains("SPAWN posix=0 system=0")
            && d.stdout.matches(&format!("HELLO {LIVE}")).count() == 2,
        || d.show(),
    );
    let d = c.v("spawn.python.dnsfo");
    c.check(
        "spawn.python_subprocess",
        d.stdout.trim() == format!("0 HELLO {LIVE}"),
        || d.show(),
    );
    let d = c.v("spawn.chain.dnsfo");
    c.check(
        "spawn.bash_python_exec_curl",
        d.exit == Some(0) && d.stdout.trim() == format!("HELLO {LIVE}"),
        || d.show(),
    );
    let p = c.v("spawn.chain.plain");
    c.check(
        "spawn.plain_chain_hangs",
        p.timed_out || p.exit != Some(0),
        || p.show(),
    );
    c.finish(4);
}

/// The fd numbers of a `TAG n:what n:what ...` line.
fn fdnums(line: &str) -> Vec<&str> {
    line.split_whitespace()
        .skip(1)
        .map(|w| w.split(':').next().unwrap_or(""))
        .collect()
}

/// Item 5c: no dnsfo fd reaches a child: an exec'd child (during a background race and after
/// it) and a fork()ed child see the same fd numbers as without the library.
pub fn fd_leak() {
    let c = Case::run("fd_leak");
    let (d, p) = (c.v("fds.dnsfo"), c.v("fds.plain"));
    for tag in ["DURING", "AFTER", "FORKED"] {
        let (dl, pl) = (d.line(tag), p.line(tag));
        c.check(
            format!("fds.{}.same_numbers", tag.to_lowercase()),
            !dl.is_empty() && fdnums(dl) == fdnums(pl),
            || format!("dnsfo: {dl}\nplain: {pl}\n{}", d.show()),
        );
    }
    c.finish(3);
}

/// Item 5d: a forked child that closed every inherited fd and reopened files under the same
/// numbers loses none of them when it starts its own background connect, which succeeds.
pub fn fork_stale_fds() {
    let c = Case::run("fork_stale_fds");
    let d = c.v("stale.dnsfo");
    let l = d.line("STALE");
    c.check(
        "fork.child_fds_survive_reactor_restart",
        d.exit == Some(0) && l.contains("lost=0"),
        || d.show(),
    );
    c.check(
        "fork.child_connect_ok",
        l.contains("child_connect=OK HELLO 127.0.0.5"),
        || d.show(),
    );
    c.finish(2);
}
