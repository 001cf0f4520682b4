//! End-to-end tests of the "never wrong" rule (issue 12, items 3 and 4): dnsfo fails over only
//! when the name behind an address is certain, and re-resolves a name the way the system would
//! (nsswitch order), so an /etc/hosts pin is never bypassed and never leaks to DNS.
//!
//! Every test runs `python3 tests/e2e/neverwrong.py run SCENARIO` (built on
//! scripts/lib/hermetic.py and its DNS server, scripts/lib/harness/dns.py): a private user, mount and network
//! namespace with its own /etc/hosts, resolv.conf (`nameserver 127.0.0.1`) and nsswitch.conf
//! (`hosts: files dns`), an in-namespace DNS server on 127.0.0.1:53 that logs every query, and
//! each client run once without dnsfo (`NAME.plain`) and once with it (`NAME.dnsfo`). The
//! assertions live here.
//!
//! The library is `$DNSFO_LIB`, else `target/release/libdnsfo.so`. Only loopback addresses are
//! used; every run has a hard timeout, every server a lifetime.

use std::time::Duration;

mod support;
use support::Outcome;

const HARNESS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/neverwrong.py");
/// Hard cap on one harness invocation (its own watchdog fires first).
const HARNESS_DEADLINE: Duration = Duration::from_secs(180);

const A_BANNER: &str = "GOT HELLO 127.0.0.2";
const B_BANNER: &str = "GOT HELLO 127.0.0.3";
const REFUSED: &str = "ERR ECONNREFUSED";

/// The last line the client printed in run `section` (its outcome: `GOT ...` or `ERR ...`).
fn outcome<'a>(o: &'a Outcome, section: &str) -> &'a str {
    assert!(o.has(section), "run {section} missing\n{o}");
    let skipped = o.get(section, "skipped");
    assert!(skipped.is_empty(), "{section}: {skipped}\n{o}");
    o.get(section, "stdout").lines().last().unwrap_or("").trim()
}

/// Without dnsfo, every connect to the shared dead address is refused: the baseline.
#[track_caller]
fn assert_plain_refused(o: &Outcome, case: &str) {
    let plain = outcome(o, &format!("{case}.plain"));
    assert_eq!(plain, REFUSED, "{case}: without dnsfo\n{o}");
}

// Item 4: a.test and b.test share the dead 127.0.0.9; a.test's live address is 127.0.0.2,
// b.test's 127.0.0.3. Resolving a.test then b.test and connecting to 127.0.0.9 "from a.test"
// must reach a.test's server or fail as without dnsfo, never reach b.test's.
#[test]
fn shared_address_never_reaches_the_other_name() {
    let o = support::invoke(HARNESS, &["shared"], HARNESS_DEADLINE);
    for case in ["a-ptr", "a-copy", "a-ptr-b-freed", "python"] {
        assert_plain_refused(&o, case);
        let got = outcome(&o, &format!("{case}.dnsfo"));
        assert_ne!(
            got, B_BANNER,
            "{case}: an address taken from a.test's answer reached b.test's server\n{o}"
        );
        assert!(
            got == A_BANNER || got == REFUSED,
            "{case}: neither a.test's server nor the refusal without dnsfo: {got:?}\n{o}"
        );
    }
    // The name is certain when the program connects with the sockaddr of a.test's answer that
    // it still holds: then dnsfo fails over, to a.test's own live address.
    for case in ["a-ptr", "a-ptr-b-freed"] {
        let got = outcome(&o, &format!("{case}.dnsfo"));
        assert_eq!(
            got, A_BANNER,
            "{case}: the ai_addr of a.test's live answer is proof\n{o}"
        );
    }
    // Uncertain (a copy of the bytes; Python frees every answer at once): pass through.
    for case in ["a-copy", "python"] {
        let got = outcome(&o, &format!("{case}.dnsfo"));
        assert_eq!(got, REFUSED, "{case}: no proof, so as without dnsfo\n{o}");
    }
    // The counterpart: b.test's own sockaddr goes to b.test's live address.
    assert_plain_refused(&o, "b-ptr");
    let got = outcome(&o, "b-ptr.dnsfo");
    assert_eq!(
        got, B_BANNER,
        "b-ptr: b.test's answer is proof for b.test\n{o}"
    );
}

// Item 3: /etc/hosts pins ads.test to 0.0.0.0 and pin.test / pin2.test to dead addresses while
// DNS names a live server for all three. The pin stands (the refusal, as without dnsfo) and the
// DNS server sees no query for the name (also with DNSFO_NAMESERVER set).
#[test]
fn hosts_pin_is_never_bypassed() {
    let o = support::invoke(HARNESS, &["hosts-pin"], HARNESS_DEADLINE);
    for case in ["ads", "pin", "pin2", "pin_ns"] {
        let plain = format!("{case}.plain");
        let dnsfo = format!("{case}.dnsfo");
        assert_eq!(outcome(&o, &plain), REFUSED, "{case}: without dnsfo\n{o}");
        assert_eq!(
            o.get(&plain, "dns_query_count"),
            "0",
            "{case}: the system itself asked DNS\n{o}"
        );
        let got = outcome(&o, &dnsfo);
        assert_ne!(
            got, B_BANNER,
            "{case}: the /etc/hosts pin was bypassed (DNS's live address reached)\n{o}"
        );
        assert_eq!(got, REFUSED, "{case}: as without dnsfo\n{o}");
        assert_eq!(
            o.get(&dnsfo, "dns_query_count"),
            "0",
            "{case}: dnsfo asked DNS about a name /etc/hosts answers: {}\n{o}",
            o.get(&dnsfo, "dns_queries")
        );
    }
}
