//! Reading DNS answers the program receives (RFC 1035 wire format): which name was asked, for
//! which family, and the addresses the answer gives it (following CNAMEs).
//!
//! Owns: parsing, bounded in every loop. Must never: panic or loop on any input (answers come
//! from the network), or build or change a message (answers reach the program unchanged).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const TYPE_A: u16 = 1;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_AAAA: u16 = 28;

/// What an answer teaches: the name asked (lower case, no trailing dot), the type asked, and the
/// addresses given for it (in answer order).
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub name: String,
    pub qtype: u16,
    pub addrs: Vec<IpAddr>,
}

/// A name at `pos` (compression pointers followed, at most 16 jumps, 255 bytes) and the
/// position after it in the message.
fn name_at(msg: &[u8], mut pos: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut after = None;
    for _ in 0..128 {
        let len = *msg.get(pos)? as usize;
        match len {
            0 => {
                return Some((out.to_ascii_lowercase(), after.unwrap_or(pos + 1)));
            }
            l if l & 0xc0 == 0xc0 => {
                let ptr = ((l & 0x3f) << 8) | *msg.get(pos + 1)? as usize;
                after.get_or_insert(pos + 2);
                if ptr >= pos {
                    return None; // pointers only go backwards: no loops
                }
                pos = ptr;
            }
            l if l & 0xc0 != 0 => return None,
            l => {
                let label = msg.get(pos + 1..pos + 1 + l)?;
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&String::from_utf8_lossy(label));
                if out.len() > 255 {
                    return None;
                }
                pos += 1 + l;
            }
        }
    }
    None
}

fn u16_at(msg: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]))
}

/// The addresses a response gives for the name it answers. `None` for anything that is not a
/// well-formed successful response with one question of type A or AAAA.
pub fn parse_answer(msg: &[u8]) -> Option<Answer> {
    let flags = u16_at(msg, 2)?;
    let (qd, an) = (u16_at(msg, 4)?, u16_at(msg, 6)?);
    let is_response = flags & 0x8000 != 0;
    let rcode = flags & 0x000f;
    if !is_response || rcode != 0 || qd != 1 {
        return None;
    }
    let (qname, mut pos) = name_at(msg, 12)?;
    let qtype = u16_at(msg, pos)?;
    pos += 4;
    if qtype != TYPE_A && qtype != TYPE_AAAA {
        return None;
    }
    let mut owners = vec![qname.clone()];
    let mut addrs = Vec::new();
    for _ in 0..an.min(256) {
        let (owner, p) = name_at(msg, pos)?;
        let rtype = u16_at(msg, p)?;
        let class = u16_at(msg, p + 2)?;
        let rdlen = u16_at(msg, p + 8)? as usize;
        let rdata = msg.get(p + 10..p + 10 + rdlen)?;
        let rstart = p + 10;
        pos = rstart + rdlen;
        if class != 1 || !owners.contains(&owner) {
            continue;
        }
        match (rtype, rdlen) {
            (TYPE_A, 4) if qtype == TYPE_A => {
                let ip = IpAddr::V4(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]));
                if !addrs.contains(&ip) {
                    addrs.push(ip);
                }
            }
            (TYPE_AAAA, 16) if qtype == TYPE_AAAA => {
                let mut o = [0u8; 16];
                o.copy_from_slice(rdata);
                let ip = dnsfo_core::outcome::canonical_ip(IpAddr::V6(Ipv6Addr::from(o)));
                if !addrs.contains(&ip) {
                    addrs.push(ip);
                }
            }
            (TYPE_CNAME, _) => {
                if let Some((target, _)) = name_at(msg, rstart) {
                    if owners.len() < 16 && !owners.contains(&target) {
                        owners.push(target);
                    }
                }
            }
            _ => {}
        }
    }
    Some(Answer {
        name: qname,
        qtype,
        addrs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for l in n.split('.') {
            out.push(l.len() as u8);
            out.extend_from_slice(l.as_bytes());
        }
        out.push(0);
        out
    }

    fn response(qname: &str, qtype: u16, rcode: u16, answers: &[Vec<u8>]) -> Vec<u8> {
        let mut m = vec![0x12, 0x34];
        m.extend_from_slice(&(0x8180u16 | rcode).to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&(answers.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0]);
        m.extend(name(qname));
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        for a in answers {
            m.extend_from_slice(a);
        }
        m
    }

    fn rr(owner: &[u8], rtype: u16, rdata: &[u8]) -> Vec<u8> {
        let mut r = owner.to_vec();
        r.extend_from_slice(&rtype.to_be_bytes());
        r.extend_from_slice(&1u16.to_be_bytes());
        r.extend_from_slice(&60u32.to_be_bytes());
        r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        r.extend_from_slice(rdata);
        r
    }

    const QNAME_PTR: [u8; 2] = [0xc0, 12];

    #[test]
    fn addresses_of_the_name_asked_through_cnames_in_order() {
        let m = response(
            "Svc.Test",
            TYPE_A,
            0,
            &[
                rr(&QNAME_PTR, TYPE_CNAME, &name("real.test")),
                rr(&name("real.test"), TYPE_A, &[127, 0, 0, 2]),
                rr(&name("other.test"), TYPE_A, &[127, 0, 0, 9]),
                rr(&name("real.test"), TYPE_A, &[127, 0, 0, 3]),
            ],
        );
        let a = parse_answer(&m).unwrap();
        assert_eq!(a.name, "svc.test");
        assert_eq!(a.qtype, TYPE_A);
        let want: Vec<IpAddr> = vec!["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()];
        assert_eq!(a.addrs, want);
        let m = response(
            "svc.test",
            TYPE_AAAA,
            0,
            &[rr(&QNAME_PTR, TYPE_AAAA, &[0; 16])],
        );
        assert_eq!(
            parse_answer(&m).unwrap().addrs,
            vec!["::".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn no_lesson_from_errors_queries_or_garbage() {
        assert_eq!(
            parse_answer(&response("x.test", TYPE_A, 3, &[])),
            None,
            "NXDOMAIN"
        );
        let mut q = response("x.test", TYPE_A, 0, &[]);
        q[2] &= 0x7f;
        assert_eq!(parse_answer(&q), None, "a query");
        assert_eq!(parse_answer(&response("x.test", 16, 0, &[])), None, "TXT");
        // Truncated anywhere, or a compression loop: never a panic.
        let m = response(
            "svc.test",
            TYPE_A,
            0,
            &[rr(&QNAME_PTR, TYPE_A, &[127, 0, 0, 2])],
        );
        for n in 0..m.len() {
            let _ = parse_answer(&m[..n]);
        }
        let mut looped = response("svc.test", TYPE_A, 0, &[]);
        looped[12] = 0xc0;
        looped[13] = 12;
        assert_eq!(parse_answer(&looped), None);
        for seed in 0..2000u32 {
            let junk: Vec<u8> = (0..64)
                .map(|i| (seed.wrapping_mul(2654435761) >> (i % 24)) as u8)
                .collect();
            let _ = parse_answer(&junk);
        }
    }
}
