//! The libc contract: lookups and repeated or odd connects, TCP Fast Open (items 7-9;
//! `tests/e2e/hardening/lookup.py`).

use std::collections::BTreeMap;

use crate::{fields, head, num, show2, Case, LIVE, V};

/// The client's `TAG <key> ...` lines by key (the second word; a later line wins).
fn by_key<'a>(r: &V<'a>, tag: &'a str) -> BTreeMap<&'a str, &'a str> {
    r.lines_with(tag)
        .filter_map(|l| Some((l.split_whitespace().nth(1)?, l)))
        .collect()
}

/// Item 7a: getaddrinfo with and without the library, after dnsfo learned a winner: the same
/// queries (at least 20), each with the same return code and node set (family, socktype,
/// protocol, address, port, addrlen, the canonical name on the head node only), and the winner
/// first under dnsfo.
pub fn gai_contract() {
    let c = Case::run("gai_contract");
    let (d, p) = (c.v("gai.dnsfo"), c.v("gai.plain"));
    c.check("gai.ran", d.exit == Some(0) && p.exit == Some(0), || {
        show2(&d, &p)
    });
    c.check(
        "gai.failover_happened",
        d.stdout.contains(&format!("FAILOVER OK HELLO {LIVE}")),
        || d.show(),
    );
    let (dq, pq) = (by_key(&d, "Q "), by_key(&p, "Q "));
    let (dk, pk): (Vec<&str>, Vec<&str>) =
        (dq.keys().copied().collect(), pq.keys().copied().collect());
    c.check("gai.same_queries", dk == pk && dq.len() >= 20, || {
        format!("{dk:?} {pk:?}")
    });
    for (k, pl) in &pq {
        let dl = dq.get(k).copied();
        c.check(format!("gai.{k}"), dl == Some(*pl), || {
            format!("dnsfo: {}\nplain: {pl}", dl.unwrap_or("None"))
        });
    }
    let firsts: BTreeMap<&str, &str> = d
        .lines_with("FIRST ")
        .filter_map(|l| {
            let mut w = l.split_whitespace().skip(1);
            Some((w.next()?, w.next().unwrap_or("")))
        })
        .collect();
    c.check(
        "gai.winner_first",
        firsts.get("name_inet") == Some(&LIVE),
        || format!("{firsts:?}"),
    );
    c.finish(29);
}

/// Item 7b: gethostbyname_r / gethostbyname2_r with every buffer length 1..4096 after a
/// failover: one line per call (3 x 4096 + 1), each identical to libc's (return code, ERANGE
/// until it fits, *h_errnop, answer), no write past the buffer (canary), and ERANGE seen at all
/// (else the sweep tests nothing).
pub fn ghbn_r() {
    let c = Case::run("ghbn_r");
    let (d, p) = (c.v("ghbnr.dnsfo"), c.v("ghbnr.plain"));
    c.check(
        "ghbnr.failover_happened",
        d.stdout.contains(&format!("FAILOVER OK HELLO {LIVE}")),
        || head(&d.show(), 2000).to_string(),
    );
    let dl: Vec<&str> = d.lines_with("H ").collect();
    let pl: Vec<&str> = p.lines_with("H ").collect();
    c.check(
        "ghbnr.ran",
        d.exit == Some(0) && dl.len() == 3 * 4096 + 1,
        || head(&d.show(), 2000).to_string(),
    );
    let diff: Vec<(&&str, &&str)> = dl.iter().zip(&pl).filter(|(x, y)| x != y).collect();
    c.check(
        "ghbnr.identical_to_libc",
        diff.is_empty() && dl.len() == pl.len(),
        || {
            diff.iter()
                .take(10)
                .map(|(x, y)| format!("dnsfo: {x}\nplain: {y}"))
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
    c.check(
        "ghbnr.canary_intact",
        dl.iter()
            .filter(|l| l.contains("canary"))
            .all(|l| l.contains("canary=1")),
        || {
            let bad: Vec<&str> = dl
                .iter()
                .copied()
                .filter(|l| l.contains("canary=0"))
                .collect();
            head(&bad.join("\n"), 2000).to_string()
        },
    );
    let erange = format!(" rc={} ", libc::ERANGE);
    let erange = pl.iter().filter(|l| l.contains(&erange)).count();
    c.check("ghbnr.erange_seen", erange > 0, || {
        "no ERANGE at all: the sweep tests nothing".into()
    });
    c.finish(5);
}

/// Item 7c: 10,000 lookup/free rounds natively with bounded heap growth (< 256 KiB over the
/// last 9,900), and 4,000 under valgrind memcheck with no error and no definite leak.
pub fn rounds_and_valgrind() {
    let c = Case::run("lookup_valgrind");
    let d = c.v("lookups.native");
    let f = fields(d.line("LOOP"));
    c.check(
        "lookups.native_10000",
        d.exit == Some(0) && f.get("rounds") == Some(&"10000"),
        || d.show(),
    );
    let grow = num(&f, "heap_end", 0) - num(&f, "heap_at100", 0);
    c.check("lookups.heap_bounded", grow < 256 * 1024, || {
        format!("heap grew {grow} bytes over 9,900 rounds\n{}", d.show())
    });
    let missing = c.fact("missing");
    if !missing.is_empty() {
        c.check("lookups.valgrind", false, || missing.to_string());
    } else {
        let v = c.v("lookups.valgrind");
        c.check(
            "lookups.valgrind_clean",
            v.exit == Some(0) && v.stdout.contains("LOOP rounds=4000"),
            || v.show(),
        );
    }
    c.finish(3);
}

/// Item 8: repeated connects (EALREADY, EISCONN, retries after refusal), UDP, AF_UNIX,
/// AF_UNSPEC, short/NULL/zero-length addresses, family mismatches and non-sockets: every case
/// (at least 10) gives the same return values and errnos with and without dnsfo.
pub fn reconnect() {
    let c = Case::run("reconnect");
    let (d, p) = (c.v("reconnect.dnsfo"), c.v("reconnect.plain"));
    c.check(
        "reconnect.ran",
        d.exit == Some(0) && p.exit == Some(0),
        || show2(&d, &p),
    );
    let (dc, pc) = (by_key(&d, "C "), by_key(&p, "C "));
    for (k, pl) in &pc {
        let dl = dc.get(k).copied();
        c.check(format!("reconnect.{k}"), dl == Some(*pl), || {
            format!("dnsfo: {}\nplain: {pl}", dl.unwrap_or("None"))
        });
    }
    let (dk, pk): (Vec<&str>, Vec<&str>) =
        (dc.keys().copied().collect(), pc.keys().copied().collect());
    c.check("reconnect.all_cases", pc.len() >= 10 && dk == pk, || {
        format!("{pk:?}")
    });
    c.finish(12);
}

/// Item 9: TCP Fast Open to the dead address of a name whose live winner dnsfo knows: each way
/// (sendto MSG_FASTOPEN, TCP_FASTOPEN_CONNECT blocking and not) either passes through (the
/// same result as libc) or fails over, the dead address never becomes the winner, and a later
/// connect still fails over.
pub fn tfo() {
    let c = Case::run("tfo");
    let (d, p) = (c.v("tfo.dnsfo"), c.v("tfo.plain"));
    c.check("tfo.ran", d.exit == Some(0) && p.exit == Some(0), || {
        show2(&d, &p)
    });
    c.check(
        "tfo.winner_known",
        d.line("ORDER0") == format!("ORDER0 {LIVE}"),
        || d.show(),
    );
    for tag in ["SENDTO", "TFOC", "TFOC_NB"] {
        let (dl, pl) = (d.line(tag), p.line(tag));
        let failed_over =
            dl.contains("so_error=-") && dl.contains("connect=0") && dl.contains("write=1");
        c.check(
            format!("tfo.{}.passthrough_or_failover", tag.to_lowercase()),
            (!dl.is_empty() && dl == pl) || failed_over || dl == "SENDTO 1/-",
            || format!("dnsfo: {dl}\nplain: {pl}"),
        );
    }
    c.check(
        "tfo.dead_never_winner",
        d.line("ORDER1") == format!("ORDER1 {LIVE}"),
        || d.show(),
    );
    c.check(
        "tfo.later_connect_fails_over",
        d.line("AFTER") == format!("AFTER OK HELLO {LIVE}"),
        || d.show(),
    );
    c.finish(7);
}
