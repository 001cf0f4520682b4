//! The shared winner cache's format: lets a short-lived process start where the last one left off.
//!
//! One small text file, `winners`, in `DNSFO_CACHE_DIR` (default `$XDG_RUNTIME_DIR/dnsfo`, else
//! `~/.cache/dnsfo`): a line per (name, port) with the address that won and when the entry
//! expires (`name port ip expires_ms`), and a line per address found dead in that failover
//! (`name port ip expires_ms dead`), so that a later process connecting to the dead address goes
//! to the winner at once while its connects to other live addresses go where it chose (the
//! program's choice stands); and a line per address whose round trip was measured
//! (`name port ip expires_ms rtt SRTT_US RTTVAR_US`), so that a new process starts with an
//! attempt delay fit for the network. Lines of older versions (no fifth field) are winners. Written atomically (temporary file + rename), so many writers never leave a torn
//! file; the last writer wins, which is fine for a hint.
//!
//!
//! Owns: the lines of the file (`name port ip expires_ms [dead | rtt SRTT_US RTTVAR_US]`), their
//! bounds (entries, bytes, name length), what replaces what, what goes first when full, and which
//! entries count for a name. Must never: touch a file (the trust checks and the atomic replace
//! are `dnsfo_os::cachefile`), or hand out an address the caller's resolver did not return.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Entries kept at most (the ones that expire first are dropped to make room).
pub const MAX_ENTRIES: usize = 256;
/// A file longer than this is not ours: it is ignored (and the content written never exceeds it).
pub const MAX_FILE_BYTES: u64 = 64 * 1024;
/// Longest name stored (a DNS name has at most 253 characters).
pub const MAX_NAME_BYTES: usize = 253;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub port: u16,
    pub ip: IpAddr,
    /// Milliseconds since the Unix epoch.
    pub expires_ms: u64,
    pub kind: Kind,
}

/// What an entry says about its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// It won the last failover of (name, port).
    Winner,
    /// It was found dead in that failover.
    Dead,
    /// A connect to it succeeded with this kernel-measured RTT (µs).
    Rtt { srtt_us: u32, var_us: u32 },
}

impl Entry {
    /// The winner line of (name, port).
    pub fn winner(name: &str, port: u16, ip: IpAddr, expires_ms: u64) -> Entry {
        Entry {
            name: name.to_string(),
            port,
            ip,
            expires_ms,
            kind: Kind::Winner,
        }
    }

    fn is_rtt(&self) -> bool {
        matches!(self.kind, Kind::Rtt { .. })
    }

    /// Entries with the same key replace each other: one winner per (name, port), one line per
    /// dead address.
    fn same_key(&self, other: &Entry) -> bool {
        self.name == other.name
            && self.port == other.port
            && std::mem::discriminant(&self.kind) == std::mem::discriminant(&other.kind)
            && (self.kind == Kind::Winner || self.ip == other.ip)
    }
}

/// The default directory, from the environment the program was started with.
pub fn default_dir(get: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    if let Some(d) = get("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("dnsfo"));
    }
    get("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".cache").join("dnsfo"))
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Parses the file's text; malformed lines are skipped, expired entries dropped; of more than
/// `MAX_ENTRIES`, the ones that expire last are kept.
pub fn parse(text: &str, now_ms: u64) -> Vec<Entry> {
    let mut entries: Vec<Entry> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let e = Entry {
                name: f.next()?.to_string(),
                port: f.next()?.parse().ok()?,
                ip: f.next()?.parse().ok()?,
                expires_ms: f.next()?.parse().ok()?,
                kind: match f.next() {
                    None => Kind::Winner,
                    Some("dead") => Kind::Dead,
                    Some("rtt") => Kind::Rtt {
                        srtt_us: f.next()?.parse().ok()?,
                        var_us: f.next()?.parse().ok()?,
                    },
                    Some(_) => return None,
                },
            };
            (f.next().is_none() && e.expires_ms > now_ms).then_some(e)
        })
        .collect();
    if entries.len() > MAX_ENTRIES {
        entries.sort_by_key(|e| std::cmp::Reverse(e.expires_ms));
        entries.truncate(MAX_ENTRIES);
    }
    entries
}

fn line(e: &Entry) -> String {
    let kind = match e.kind {
        Kind::Winner => String::new(),
        Kind::Dead => " dead".to_string(),
        Kind::Rtt { srtt_us, var_us } => format!(" rtt {srtt_us} {var_us}"),
    };
    format!("{} {} {} {}{kind}\n", e.name, e.port, e.ip, e.expires_ms)
}

pub fn render(entries: &[Entry]) -> String {
    entries.iter().map(line).collect()
}

/// Removes the entry that expires first (the earliest in the list among equals), RTT lines
/// before any other: a winner or a dead address saves a failover, an RTT only tunes a delay.
/// `rtt_only`: nothing but an RTT line may go.
fn drop_first_to_expire(entries: &mut Vec<Entry>, rtt_only: bool) -> Option<Entry> {
    let i = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| !rtt_only || e.is_rtt())
        .min_by_key(|(_, e)| (!e.is_rtt(), e.expires_ms))
        .map(|(i, _)| i)?;
    Some(entries.remove(i))
}

/// Replaces the entry with the same key (the winner of (name, port), or that address's dead or
/// RTT line). The new entry always gets in: when the cache is full
/// (`MAX_ENTRIES`, or the file would outgrow `MAX_FILE_BYTES`), the other entries that expire
/// first are dropped to make room. The order of the entries kept does not change; the new one
/// comes last.
pub fn upsert(mut entries: Vec<Entry>, new: Entry) -> Vec<Entry> {
    entries.retain(|e| !e.same_key(&new));
    let mut bytes: usize = entries.iter().map(|e| line(e).len()).sum::<usize>() + line(&new).len();
    while entries.len() >= MAX_ENTRIES || bytes as u64 > MAX_FILE_BYTES {
        match drop_first_to_expire(&mut entries, new.is_rtt()) {
            Some(gone) => bytes -= line(&gone).len(),
            // A new RTT line never pushes a winner or a dead address out.
            None if new.is_rtt() => return entries,
            None => break,
        }
    }
    entries.push(new);
    entries
}

/// A name that fits the file's format: one field, printable, no longer than a DNS name.
pub fn storable_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name.bytes().all(|b| b.is_ascii_graphic() || b >= 0x80)
        && !name.chars().any(char::is_whitespace)
}

/// RTT lines live this long: a network's round trips change slowly, and a stale one only sets
/// the first attempt delay of a process (clamped, and replaced by its own measurement).
pub const RTT_TTL: Duration = Duration::from_secs(600);

/// Dead addresses recorded per failover at most (a name with many dead addresses must not
/// push everyone else's winners out).
const MAX_DEAD_PER_FAILOVER: usize = 8;

/// What the shared cache teaches a process about `name`, for the addresses its resolver
/// returned (`returned`): winners per port, addresses dead (with the time left, from `now_ms`),
/// and RTTs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seeds {
    pub winners: Vec<std::net::SocketAddr>,
    pub dead: Vec<(std::net::SocketAddr, std::time::Duration)>,
    pub rtts: Vec<(std::net::SocketAddr, crate::plan::Rtt)>,
}

impl Seeds {
    pub fn of(entries: &[Entry], name: &str, returned: &[IpAddr], now_ms: u64) -> Seeds {
        use std::net::SocketAddr;
        let at = |e: &Entry| SocketAddr::new(e.ip, e.port);
        Seeds {
            winners: winners_for(entries, name, returned)
                .into_iter()
                .map(at)
                .collect(),
            dead: dead_for(entries, name, returned)
                .into_iter()
                .map(|e| {
                    let left =
                        std::time::Duration::from_millis(e.expires_ms.saturating_sub(now_ms));
                    (at(e), left)
                })
                .collect(),
            rtts: rtts_for(entries, name, returned)
                .into_iter()
                .filter_map(|e| match e.kind {
                    Kind::Rtt { srtt_us, var_us } => {
                        Some((at(e), crate::plan::Rtt { srtt_us, var_us }))
                    }
                    _ => None,
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.winners.is_empty() && self.dead.is_empty() && self.rtts.is_empty()
    }
}

/// Winners from the cache for `name` whose address is one this process's resolver returned.
pub fn winners_for<'a>(entries: &'a [Entry], name: &str, returned: &[IpAddr]) -> Vec<&'a Entry> {
    entries
        .iter()
        .filter(|e| e.kind == Kind::Winner && e.name == name && returned.contains(&e.ip))
        .collect()
}

/// Addresses the cache says are dead for `name`, among those this process's resolver returned.
pub fn dead_for<'a>(entries: &'a [Entry], name: &str, returned: &[IpAddr]) -> Vec<&'a Entry> {
    entries
        .iter()
        .filter(|e| e.kind == Kind::Dead && e.name == name && returned.contains(&e.ip))
        .collect()
}

/// Measured RTTs from the cache for `name`, for addresses this process's resolver returned only.
pub fn rtts_for<'a>(entries: &'a [Entry], name: &str, returned: &[IpAddr]) -> Vec<&'a Entry> {
    entries
        .iter()
        .filter(|e| matches!(e.kind, Kind::Rtt { .. }))
        .filter(|e| e.name == name && returned.contains(&e.ip))
        .collect()
}

/// The entries after a failover of (name, port) that `won`, finding `dead` on the way; every new
/// line expires at `expires_ms`. The winner is no longer dead; at most `MAX_DEAD_PER_FAILOVER`
/// dead lines are written per failover.
pub fn after_failover(
    mut entries: Vec<Entry>,
    name: &str,
    port: u16,
    won: IpAddr,
    dead: &[IpAddr],
    expires_ms: u64,
) -> Vec<Entry> {
    let entry = |ip: IpAddr, dead: bool| Entry {
        name: name.to_string(),
        port,
        ip,
        expires_ms,
        kind: if dead { Kind::Dead } else { Kind::Winner },
    };
    entries.retain(|e| !(e.kind == Kind::Dead && e.name == name && e.port == port && e.ip == won));
    for ip in dead
        .iter()
        .filter(|ip| **ip != won)
        .take(MAX_DEAD_PER_FAILOVER)
    {
        entries = upsert(entries, entry(*ip, true));
    }
    upsert(entries, entry(won, false))
}

/// The RTT line for (name, port, ip), expiring `RTT_TTL` after `now_ms`.
pub fn rtt_entry(
    name: &str,
    port: u16,
    ip: IpAddr,
    srtt_us: u32,
    var_us: u32,
    now_ms: u64,
) -> Entry {
    Entry {
        name: name.to_string(),
        port,
        ip,
        expires_ms: now_ms.saturating_add(RTT_TTL.as_millis() as u64),
        kind: Kind::Rtt { srtt_us, var_us },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_render_roundtrip_and_expiry() {
        let e = vec![
            Entry {
                name: "a".into(),
                port: 80,
                ip: "127.0.0.3".parse().unwrap(),
                expires_ms: 2000,
                kind: Kind::Winner,
            },
            Entry {
                name: "b".into(),
                port: 81,
                ip: "::1".parse().unwrap(),
                expires_ms: 500,
                kind: Kind::Winner,
            },
        ];
        let text = render(&e);
        assert_eq!(parse(&text, 100), e);
        assert_eq!(parse(&text, 1000), e[..1].to_vec(), "expired dropped");
        assert!(parse(
            "garbage\na 80 127.0.0.1\na x 127.0.0.1 9\na 80 127.0.0.1 9 extra\n",
            0
        )
        .is_empty());
    }

    #[test]
    fn dead_addresses_roundtrip_and_have_their_own_lines() {
        let now = 1_000;
        let text =
            "svc 80 127.0.0.3 5000\nsvc 80 127.0.0.2 5000 dead\nsvc 80 127.0.0.4 5000 dead\n\
                    svc 80 127.0.0.5 5000 alive\n";
        let e = parse(text, now);
        assert_eq!(
            e.len(),
            3,
            "an unknown fifth field is a malformed line: {e:?}"
        );
        assert_eq!(parse(&render(&e), now), e);
        let returned: Vec<IpAddr> = ["127.0.0.2", "127.0.0.3"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let w = winners_for(&e, "svc", &returned);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].ip, returned[1]);
        let d = dead_for(&e, "svc", &returned);
        assert_eq!(d.len(), 1, "only dead addresses the resolver returned");
        assert_eq!(d[0].ip, returned[0]);
        // A new winner replaces the winner only; a dead line replaces that dead line only.
        let mut new = e[0].clone();
        new.ip = "127.0.0.9".parse().unwrap();
        let e2 = upsert(e.clone(), new);
        assert_eq!(e2.len(), 3);
        assert_eq!(e2.iter().filter(|x| x.kind == Kind::Dead).count(), 2);
    }

    #[test]
    fn upsert_replaces_and_bounds() {
        let mut v = Vec::new();
        for i in 0..(MAX_ENTRIES + 20) {
            v = upsert(
                v,
                Entry {
                    name: format!("n{i}"),
                    port: 1,
                    ip: "127.0.0.1".parse().unwrap(),
                    expires_ms: i as u64,
                    kind: Kind::Winner,
                },
            );
        }
        assert_eq!(v.len(), MAX_ENTRIES);
        v = upsert(
            v,
            Entry {
                name: "n300".into(),
                port: 1,
                ip: "127.0.0.2".parse().unwrap(),
                expires_ms: 9999,
                kind: Kind::Winner,
            },
        );
        assert_eq!(v.iter().filter(|e| e.name == "n300").count(), 1);
    }

    fn entry(name: &str, expires_ms: u64) -> Entry {
        Entry::winner(name, 7000, "127.0.0.3".parse().unwrap(), expires_ms)
    }

    #[test]
    fn full_cache_drops_what_expires_first_and_keeps_the_new_winner() {
        let far = now_ms() + 86_400_000;
        // Full of long-lived entries; one of them expires a little earlier than the rest.
        let mut v: Vec<Entry> = (0..MAX_ENTRIES)
            .map(|i| entry(&format!("long{i}"), far + i as u64))
            .collect();
        v[100].expires_ms = far - 5;
        let new = entry("svc", now_ms() + 30_000);
        let out = upsert(v.clone(), new.clone());
        assert_eq!(out.len(), MAX_ENTRIES);
        assert_eq!(out.last(), Some(&new), "the new winner is kept");
        assert!(
            !out.iter().any(|e| e.name == "long100"),
            "the first to expire went"
        );
        assert_eq!(
            out.iter().filter(|e| e.name.starts_with("long")).count(),
            MAX_ENTRIES - 1
        );
        // The rest keep their order.
        let kept: Vec<&str> = out[..MAX_ENTRIES - 1]
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        let want: Vec<String> = (0..MAX_ENTRIES)
            .filter(|&i| i != 100)
            .map(|i| format!("long{i}"))
            .collect();
        assert_eq!(kept, want);
        // Replacing an existing key in a full cache drops nothing else.
        let again = upsert(out.clone(), entry("long7", far + 1_000));
        assert_eq!(again.len(), MAX_ENTRIES);
        assert!(again.iter().any(|e| e.name == "svc"));
        assert_eq!(again.iter().filter(|e| e.name == "long7").count(), 1);
    }

    #[test]
    fn full_by_size_drops_what_expires_first() {
        let far = now_ms() + 86_400_000;
        let long = "x".repeat(MAX_NAME_BYTES - 4);
        let v: Vec<Entry> = (0..MAX_ENTRIES)
            .map(|i| entry(&format!("{long}{i:03}"), far - i as u64))
            .collect();
        assert!(
            render(&v).len() as u64 > MAX_FILE_BYTES,
            "the test needs an oversize cache"
        );
        let new = entry("svc", now_ms() + 30_000);
        let out = upsert(v, new.clone());
        assert!(render(&out).len() as u64 <= MAX_FILE_BYTES);
        assert_eq!(out.last(), Some(&new));
        // Those expiring first (the highest numbers here) went; the survivors are the latest.
        let n = out.len() - 1;
        let want: Vec<String> = (0..n).map(|i| format!("{long}{i:03}")).collect();
        let got: Vec<&str> = out[..n].iter().map(|e| e.name.as_str()).collect();
        assert_eq!(got, want);
        // Parsing an over-long list keeps the entries that expire last.
        let text: String = (0..MAX_ENTRIES + 10)
            .map(|i| line(&entry(&format!("n{i}"), far + i as u64)))
            .collect();
        let parsed = parse(&text, 0);
        assert_eq!(parsed.len(), MAX_ENTRIES);
        assert!(parsed.iter().all(|e| e.expires_ms >= far + 10));
    }

    #[test]
    fn rtt_lines_roundtrip_and_count_only_for_returned_addresses() {
        let now = 1_000;
        let text = "svc 80 127.0.0.3 5000 rtt 850 120\nsvc 80 127.0.0.4 5000 rtt 9 1\n\
                    svc 80 127.0.0.5 5000 rtt x 1\nsvc 80 127.0.0.6 5000 rtt 1\n";
        let e = parse(text, now);
        assert_eq!(e.len(), 2, "malformed rtt lines are skipped: {e:?}");
        assert_eq!(parse(&render(&e), now), e);
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        // 127.0.0.4 is in the file but not in this process's answer: its history is not used.
        let r = rtts_for(&e, "svc", &[ip("127.0.0.3"), ip("127.0.0.9")]);
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].kind,
            Kind::Rtt {
                srtt_us: 850,
                var_us: 120
            }
        );
        assert!(rtts_for(&e, "other", &[ip("127.0.0.3")]).is_empty());
        // An rtt line is neither a winner nor dead; a new measurement replaces the old one only.
        assert!(winners_for(&e, "svc", &[ip("127.0.0.3")]).is_empty());
        assert!(dead_for(&e, "svc", &[ip("127.0.0.3")]).is_empty());
        let mut new = e[0].clone();
        new.kind = Kind::Rtt {
            srtt_us: 900,
            var_us: 100,
        };
        let e2 = upsert(e.clone(), new);
        assert_eq!(e2.len(), 2);
        // Full: RTT lines go first; an RTT line never pushes a winner out.
        let mut full: Vec<Entry> = (0..MAX_ENTRIES)
            .map(|i| entry(&format!("w{i}.test"), 2_000 + i as u64))
            .collect();
        let rtt = |name: &str, exp: u64| Entry {
            kind: Kind::Rtt {
                srtt_us: 5,
                var_us: 1,
            },
            ..entry(name, exp)
        };
        full = upsert(full, rtt("r.test", 9_999_999));
        assert_eq!(full.len(), MAX_ENTRIES);
        assert!(
            !full.iter().any(|x| x.name == "r.test"),
            "no room made for an RTT line"
        );
        full.pop();
        full = upsert(full, rtt("r.test", 9_999_999));
        assert!(full.iter().any(|x| x.name == "r.test"));
        full = upsert(full, entry("new.test", 3_000));
        assert!(full.iter().any(|x| x.name == "new.test"));
        assert!(
            !full.iter().any(|x| x.name == "r.test"),
            "the RTT line went first"
        );
    }
}
