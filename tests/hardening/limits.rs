//! Resources under `ulimit -n 64` (item 6; `tests/e2e/hardening/limits.py`).

use crate::{fields, Case, V};

/// The fds of the AFTER line that the BEFORE line did not list (`n:what` words).
fn new_fds<'a>(r: &V<'a>) -> Vec<&'a str> {
    let before: Vec<&str> = r.line("BEFORE").split_whitespace().skip(2).collect();
    r.line("AFTER")
        .split_whitespace()
        .skip(2)
        .filter(|w| !before.contains(w))
        .collect()
}

/// Only the reactor's epoll + eventfd (anonymous inodes, at most 6) may stay.
fn no_leak(extra: &[&str]) -> bool {
    extra.iter().all(|w| w.contains("anon_inode")) && extra.len() <= 6
}

/// Item 6: 30 names x failover one after the other: all served, no fd leaked; then 12
/// simultaneous non-blocking failovers with 0, 20 or 40 extra fds of the program's own: the
/// program ran, no fd leaked, its lookups fail no more often than without dnsfo (dnsfo's fds
/// never starve it), and without fd pressure all 12 failed over and the live addresses come
/// first afterwards (with pressure the outcome depends on timing).
pub fn ulimit_64() {
    let c = Case::run("limits");
    let d = c.v("limits.seq30");
    let f = fields(d.line("SEQ"));
    c.check(
        "limits.seq30.all_ok",
        d.exit == Some(0) && f.get("ok") == Some(&"30"),
        || d.show(),
    );
    let extra = new_fds(&d);
    c.check("limits.seq30.no_fd_leak", no_leak(&extra), || {
        format!("new fds after 30 failovers: {extra:?}\n{}", d.show())
    });
    for fillers in ["0", "20", "40"] {
        let tag = format!("limits.race12_fillers{fillers}");
        let (d, p) = (c.v(&format!("{tag}.dnsfo")), c.v(&format!("{tag}.plain")));
        c.check(
            format!("{tag}.ran"),
            d.healthy() && !d.line("ORDER").is_empty(),
            || d.show(),
        );
        let extra = new_fds(&d);
        c.check(format!("{tag}.no_fd_leak"), no_leak(&extra), || {
            format!("new fds after the race: {extra:?}\n{}", d.show())
        });
        let (dr, pr) = (d.line("RACE"), p.line("RACE"));
        c.check(
            format!("{tag}.program_lookups_not_starved"),
            dr.matches("ENOENT").count() <= pr.matches("ENOENT").count(),
            || format!("dnsfo: {dr}\nplain: {pr}"),
        );
        if fillers == "0" {
            c.check(
                format!("{tag}.all_failed_over"),
                fields(dr).get("ok") == Some(&"12"),
                || d.show(),
            );
            c.check(
                format!("{tag}.live_address_first_after"),
                fields(d.line("ORDER")).get("bad") == Some(&"0"),
                || d.show(),
            );
        }
    }
    c.finish(13);
}
