//! Symbolic names of the errno values a connect can end with, for logs and `dnsfo check`.
//!
//! Owns: the table. Must never: read or set `errno` (that is the library's `sys`).

/// The symbolic name of `e`, or `None` for a value dnsfo has no name for.
pub fn name(e: i32) -> Option<&'static str> {
    Some(match e {
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ENETDOWN => "ENETDOWN",
        libc::EHOSTDOWN => "EHOSTDOWN",
        libc::EINPROGRESS => "EINPROGRESS",
        libc::EINTR => "EINTR",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::ECONNRESET => "ECONNRESET",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EALREADY => "EALREADY",
        libc::EISCONN => "EISCONN",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_the_connect_errors_and_nothing_else() {
        assert_eq!(super::name(libc::ECONNREFUSED), Some("ECONNREFUSED"));
        assert_eq!(super::name(libc::EHOSTDOWN), Some("EHOSTDOWN"));
        assert_eq!(super::name(0), None);
        assert_eq!(super::name(-1), None);
        assert_eq!(super::name(100_000), None);
    }
}
