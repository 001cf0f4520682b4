//! Socket addresses in C form read into std's `SocketAddr`.
//!
//! Owns: reading a `sockaddr` someone else filled (the program, or `getaddrinfo`). Must never:
//! trust the pointer's alignment or the length beyond what it says.

use libc::{sockaddr, socklen_t};
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
}
