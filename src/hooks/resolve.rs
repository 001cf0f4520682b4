//! Resolve hooks: `getaddrinfo` and the `gethostbyname` family. Each calls libc first, then
//! hands the answer to `learn` and applies the order it returns by relinking libc's own list
//! (or permuting its address array): every node libc allocated stays in the list, so
//! `freeaddrinfo` frees exactly what it would have, and `ai_canonname` stays on the head.
//!
//! The `ai_addr` pointers of a `getaddrinfo` answer are remembered until the program frees the
//! list (`freeaddrinfo`, hooked for that alone): a connect with one of them proves which name its
//! address came from, when several names share the address.

use super::inside;
use crate::learn;
use crate::sys;
use libc::{addrinfo, c_char, c_int, hostent, size_t};
use smallvec::SmallVec;
use std::ffi::CStr;
use std::net::IpAddr;

/// Longest answer list walked (glibc returns a few dozen nodes at most).
const MAX_NODES: usize = 1024;
/// Nodes kept on the stack (no allocation per lookup): without a socket type in the hints glibc
/// returns three per address (stream, datagram, raw).
const INLINE: usize = 24;

/// # Safety
/// `p` null or a valid C string.
unsafe fn name_of<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null, NUL-terminated per the caller's contract.
    unsafe { CStr::from_ptr(p) }.to_str().ok()
}

hook! {
    /// A successful answer for a name is learned, and handed back in the order `learn` gives.
    fn getaddrinfo(
        node: *const c_char,
        service: *const c_char,
        hints: *const addrinfo,
        res: *mut *mut addrinfo,
    ) -> c_int = sys::getaddrinfo;
    after(r) {
        if r == 0 && !res.is_null() {
            // SAFETY: node/hints are the program's (libc just read them); *res is the list
            // libc just returned.
            unsafe { learn_addrinfo(node, hints, res) };
        }
    }
}

/// # Safety
/// `node` null or a C string, `hints` null or valid, `*res` a list libc just returned.
unsafe fn learn_addrinfo(node: *const c_char, hints: *const addrinfo, res: *mut *mut addrinfo) {
    // SAFETY: node is the program's C string; res was filled by libc on success.
    let (Some(name), head) = (unsafe { name_of(node) }, unsafe { *res }) else {
        return;
    };
    let af = if hints.is_null() {
        libc::AF_UNSPEC
    } else {
        // SAFETY: non-null hints is the program's valid addrinfo (libc just read it).
        unsafe { (*hints).ai_family }
    };
    inside(|s| {
        // SAFETY: `head` is the list libc just returned; we own it until the program frees it.
        let nodes = unsafe { collect(head) };
        let mut addrs: SmallVec<[IpAddr; 8]> = SmallVec::new();
        let mut handed: SmallVec<[(usize, IpAddr); INLINE]> = SmallVec::new();
        let mut port = None;
        for &(node, a) in &nodes {
            if let Some(a) = a {
                port = port.or((a.port() != 0).then_some(a.port()));
                let ip = sys::canonical_ip(a.ip());
                if !addrs.contains(&ip) {
                    addrs.push(ip);
                }
                // SAFETY: `node` is a live node of the list collected above.
                handed.push((unsafe { (*node).ai_addr } as usize, ip));
            }
        }
        if let Some(order) = learn::learn(s, name, learn::scope_of(af), &addrs, port, &handed) {
            // SAFETY: relinks exactly the nodes collected from the list at *res.
            unsafe { relink(res, &nodes, &order) };
        }
    });
}

hook! {
    /// The list's addresses are forgotten before its memory is freed: another thread's answer
    /// may reuse it at once.
    fn freeaddrinfo(res: *mut addrinfo) -> () = real_freeaddrinfo;
    before {
        if !res.is_null() {
            inside(|s| {
                let mut ptrs: SmallVec<[usize; INLINE]> = SmallVec::new();
                let mut p = res;
                while !p.is_null() && ptrs.len() < MAX_NODES {
                    // SAFETY: `p` is a node of the list the program hands back, still allocated.
                    let n = unsafe { &*p };
                    ptrs.push(n.ai_addr as usize);
                    p = n.ai_next;
                }
                learn::forget_answer(s, &ptrs);
            });
        }
    }
}

/// libc's `freeaddrinfo` (the next definition in link order).
///
/// # Safety
/// Same contract as libc's `freeaddrinfo`.
unsafe fn real_freeaddrinfo(res: *mut addrinfo) {
    use std::sync::atomic::{AtomicPtr, Ordering};
    static SLOT: AtomicPtr<libc::c_void> = AtomicPtr::new(std::ptr::null_mut());
    let mut f = SLOT.load(Ordering::Acquire);
    if f.is_null() {
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name; null is handled below.
        f = unsafe { libc::dlsym(libc::RTLD_NEXT, c"freeaddrinfo".as_ptr()) };
        SLOT.store(f, Ordering::Release);
    }
    if f.is_null() {
        return; // impossible with glibc: the list leaks rather than the program crashing
    }
    // SAFETY: `f` is libc's `freeaddrinfo`, of exactly this signature.
    let f: unsafe extern "C" fn(*mut addrinfo) = unsafe { std::mem::transmute(f) };
    // SAFETY: forwarded under the caller's contract.
    unsafe { f(res) }
}

type Node = (*mut addrinfo, Option<std::net::SocketAddr>);

/// # Safety
/// `head` must be a list returned by libc's getaddrinfo.
unsafe fn collect(mut p: *mut addrinfo) -> SmallVec<[Node; INLINE]> {
    let mut v = SmallVec::new();
    while !p.is_null() && v.len() < MAX_NODES {
        // SAFETY: p is a node of the list.
        let n = unsafe { &*p };
        // SAFETY: ai_addr/ai_addrlen describe the node's address.
        v.push((p, unsafe { sys::read_sockaddr(n.ai_addr, n.ai_addrlen) }));
        p = n.ai_next;
    }
    if !p.is_null() {
        v.clear(); // Longer than we walk: leave it alone.
    }
    v
}

/// Stable-sorts the nodes by their address's rank in `order` and relinks them.
///
/// # Safety
/// `nodes` must be every node of the list at `*res`, in list order.
unsafe fn relink(res: *mut *mut addrinfo, nodes: &[Node], order: &[IpAddr]) {
    if nodes.len() < 2 {
        return;
    }
    let rank = |a: &Option<std::net::SocketAddr>| {
        a.and_then(|a| order.iter().position(|ip| *ip == sys::canonical_ip(a.ip())))
            .unwrap_or(order.len())
    };
    let mut sorted: SmallVec<[&Node; INLINE]> = nodes.iter().collect();
    sorted.sort_by_key(|n| rank(&n.1));
    let old_head = nodes[0].0;
    let new_head = sorted[0].0;
    for w in sorted.windows(2) {
        // SAFETY: every pointer is a live node of the list.
        unsafe { (*w[0].0).ai_next = w[1].0 };
    }
    let last = sorted[sorted.len() - 1].0;
    // SAFETY: as above.
    unsafe {
        (*last).ai_next = std::ptr::null_mut();
        if new_head != old_head {
            (*new_head).ai_canonname = (*old_head).ai_canonname;
            (*old_head).ai_canonname = std::ptr::null_mut();
        }
        *res = new_head;
    }
}

/// Learns from a `hostent` answer and permutes its address array in place.
///
/// # Safety
/// `h` must be a hostent just returned by libc.
unsafe fn learn_hostent(name: *const c_char, h: *mut hostent) {
    // SAFETY: caller's contract.
    let (Some(name), Some(h)) = (unsafe { name_of(name) }, unsafe { h.as_mut() }) else {
        return;
    };
    let list = h.h_addr_list;
    if list.is_null() {
        return;
    }
    let (af, len) = (h.h_addrtype, h.h_length as usize);
    let mut ptrs: SmallVec<[*mut c_char; 8]> = SmallVec::new();
    let mut addrs: SmallVec<[IpAddr; 8]> = SmallVec::new();
    // SAFETY: h_addr_list is NULL-terminated; each entry points at h_length bytes.
    unsafe {
        while ptrs.len() < MAX_NODES && !(*list.add(ptrs.len())).is_null() {
            let p = *list.add(ptrs.len());
            let ip = match (af, len) {
                (libc::AF_INET, 4) => IpAddr::from(*(p as *const [u8; 4])),
                (libc::AF_INET6, 16) => sys::canonical_ip(IpAddr::from(*(p as *const [u8; 16]))),
                _ => return,
            };
            ptrs.push(p);
            addrs.push(ip);
        }
    }
    inside(|s| {
        if let Some(order) = learn::learn(s, name, learn::scope_of(af), &addrs, None, &[]) {
            let mut idx: SmallVec<[usize; 8]> = (0..ptrs.len()).collect();
            idx.sort_by_key(|&i| {
                order
                    .iter()
                    .position(|ip| *ip == addrs[i])
                    .unwrap_or(order.len())
            });
            for (slot, &i) in idx.iter().enumerate() {
                // SAFETY: slot < ptrs.len(), within the array we just walked.
                unsafe { *list.add(slot) = ptrs[i] };
            }
        }
    });
}

hook! {
    /// The answer is learned, and its address array permuted in place.
    fn gethostbyname(name: *const c_char) -> *mut hostent = sys::gethostbyname;
    after(h) {
        // SAFETY: h is null or libc's answer for `name`.
        unsafe { learn_hostent(name, h) }
    }
}

hook! {
    /// As `gethostbyname`.
    fn gethostbyname2(name: *const c_char, af: c_int) -> *mut hostent = sys::gethostbyname2;
    after(h) {
        // SAFETY: h is null or libc's answer for `name`.
        unsafe { learn_hostent(name, h) }
    }
}

hook! {
    /// As `gethostbyname`, for a successful answer in the caller's buffer.
    fn gethostbyname_r(
        name: *const c_char,
        ret: *mut hostent,
        buf: *mut c_char,
        buflen: size_t,
        result: *mut *mut hostent,
        h_errnop: *mut c_int,
    ) -> c_int = sys::gethostbyname_r;
    after(r) {
        if r == 0 && !result.is_null() {
            // SAFETY: on success *result is null or `ret`, filled by libc.
            unsafe { learn_hostent(name, *result) };
        }
    }
}

hook! {
    /// As `gethostbyname_r`.
    fn gethostbyname2_r(
        name: *const c_char,
        af: c_int,
        ret: *mut hostent,
        buf: *mut c_char,
        buflen: size_t,
        result: *mut *mut hostent,
        h_errnop: *mut c_int,
    ) -> c_int = sys::gethostbyname2_r;
    after(r) {
        if r == 0 && !result.is_null() {
            // SAFETY: on success *result is null or `ret`, filled by libc.
            unsafe { learn_hostent(name, *result) };
        }
    }
}
