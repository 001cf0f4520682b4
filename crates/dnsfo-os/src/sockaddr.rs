//! Socket addresses in C form: read into std's `SocketAddr`, and made from one ([`Raw`]).
//!
//! Owns: reading a `sockaddr` someone else filled (the program, or `getaddrinfo`), and the C
//! form of an address for a socket of a given domain. Must never:
//! trust the pointer's alignment or the length beyond what it says.

use libc::{c_int, sockaddr, socklen_t};
use std::mem::size_of;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Reads a socket address the program passed in. `None` for null, short, or non-IP addresses.
///
/// # Safety
/// `addr` must be null or point to at least `len` readable bytes.
pub unsafe fn read(addr: *const sockaddr, len: socklen_t) -> Option<SocketAddr> {
    if addr.is_null() || (len as usize) < size_of::<libc::sa_family_t>() {
        return None;
    }
    // SAFETY: at least the family field is readable (checked above); unaligned read because the
    // program's buffer carries no alignment promise.
    let family = unsafe { std::ptr::read_unaligned(addr as *const libc::sa_family_t) };
    match i32::from(family) {
        libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: length checked for sockaddr_in.
            let sin = unsafe { std::ptr::read_unaligned(addr as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: length checked for sockaddr_in6.
            let s6 = unsafe { std::ptr::read_unaligned(addr as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(s6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(s6.sin6_port),
                s6.sin6_flowinfo,
                s6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// A socket address in C form.
#[derive(Clone, Copy)]
pub struct Raw {
    pub storage: libc::sockaddr_storage,
    pub len: socklen_t,
}

impl Raw {
    /// `addr` for a socket of `domain`: an IPv4 address on an `AF_INET6` socket becomes
    /// `::ffff:a.b.c.d`. `None` when the domain cannot carry the address.
    pub fn for_domain(addr: SocketAddr, domain: c_int) -> Option<Raw> {
        // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match (addr, domain) {
            (SocketAddr::V4(a), libc::AF_INET) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from(*a.ip()).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
                size_of::<libc::sockaddr_in>()
            }
            (SocketAddr::V4(_), libc::AF_INET6) | (SocketAddr::V6(_), libc::AF_INET6) => {
                let (ip, port, flow, scope) = match addr {
                    SocketAddr::V4(a) => (a.ip().to_ipv6_mapped(), a.port(), 0, 0),
                    SocketAddr::V6(a) => (*a.ip(), a.port(), a.flowinfo(), a.scope_id()),
                };
                let s6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: port.to_be(),
                    sin6_flowinfo: flow,
                    sin6_addr: libc::in6_addr {
                        s6_addr: ip.octets(),
                    },
                    sin6_scope_id: scope,
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, s6) };
                size_of::<libc::sockaddr_in6>()
            }
            _ => return None,
        };
        Some(Raw {
            storage,
            len: len as socklen_t,
        })
    }

    pub fn as_ptr(&self) -> *const sockaddr {
        &self.storage as *const _ as *const sockaddr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `read` on a local value, with `len` no longer than the value.
    fn read_of<T>(v: &T, len: usize) -> Option<SocketAddr> {
        assert!(len <= size_of::<T>());
        // SAFETY: `v` is a live reference to at least `len` bytes.
        unsafe { read(v as *const T as *const sockaddr, len as socklen_t) }
    }

    #[test]
    fn reads_v4_and_v6_and_refuses_short_or_other_families() {
        // SAFETY: sockaddr_in is plain old data; all-zero is a valid value.
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_port = 8080u16.to_be();
        sin.sin_addr.s_addr = u32::from(Ipv4Addr::new(127, 0, 0, 3)).to_be();
        let len = size_of::<libc::sockaddr_in>();
        assert_eq!(read_of(&sin, len), Some("127.0.0.3:8080".parse().unwrap()));
        assert_eq!(read_of(&sin, len - 1), None, "short");
        assert_eq!(read_of(&sin, 1), None, "shorter than the family field");
        // SAFETY: a null pointer is allowed.
        assert_eq!(unsafe { read(std::ptr::null(), len as socklen_t) }, None);
        // SAFETY: sockaddr_in6 is plain old data; all-zero is a valid value.
        let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        sin6.sin6_port = 443u16.to_be();
        sin6.sin6_addr.s6_addr = Ipv6Addr::LOCALHOST.octets();
        sin6.sin6_scope_id = 2;
        let want = SocketAddrV6::new(Ipv6Addr::LOCALHOST, 443, 0, 2);
        assert_eq!(
            read_of(&sin6, size_of::<libc::sockaddr_in6>()),
            Some(SocketAddr::V6(want))
        );
        sin.sin_family = libc::AF_UNIX as libc::sa_family_t;
        assert_eq!(read_of(&sin, len), None, "not an IP family");
    }

    #[test]
    fn raw_addresses_read_back_and_ipv4_is_mapped_on_ipv6_sockets() {
        let back = |a: &str, domain| {
            let r = Raw::for_domain(a.parse().unwrap(), domain)?;
            // SAFETY: `r` holds a valid sockaddr of `r.len` bytes.
            unsafe { read(r.as_ptr(), r.len) }
        };
        assert_eq!(
            back("127.0.0.3:80", libc::AF_INET),
            Some("127.0.0.3:80".parse().unwrap())
        );
        assert_eq!(
            back("127.0.0.3:80", libc::AF_INET6),
            Some("[::ffff:127.0.0.3]:80".parse().unwrap())
        );
        assert_eq!(
            back("[::2%3]:80", libc::AF_INET6),
            Some("[::2%3]:80".parse().unwrap())
        );
        assert_eq!(
            back("[::2]:80", libc::AF_INET),
            None,
            "an AF_INET socket cannot"
        );
    }
}
