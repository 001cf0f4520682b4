//! A private user + mount + network namespace for this process, made without any helper
//! program (no `unshare`, `ip` or `mount` binaries): `unshare(2)`, the uid/gid maps, private
//! mount propagation, `lo` brought up with `SIOCSIFFLAGS`. Only loopback exists inside, so
//! nothing done there can leave the machine; it disappears when the last process in it exits.

use std::ffi::CString;
use std::path::Path;

fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// Moves this process into new user, mount and network namespaces, as root of the user namespace.
/// Must be called while the process has a single thread.
pub fn enter() -> Result<(), String> {
    let threads = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().to_string()))
        })
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1);
    if threads > 1 {
        return Err("cannot create a user namespace from a multi-threaded process".into());
    }
    // SAFETY: plain system calls with constant arguments.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    // SAFETY: unshare affects only this (single-threaded) process.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWNET) } != 0 {
        return Err(os_err(
            "unshare(user, mount, network namespaces) failed (are unprivileged user namespaces allowed? \
             see /proc/sys/kernel/unprivileged_userns_clone or user.max_user_namespaces)",
        ));
    }
    let write = |path: &str, text: String| -> Result<(), String> {
        std::fs::write(path, text).map_err(|e| format!("writing {path}: {e}"))
    };
    if Path::new("/proc/self/setgroups").exists() {
        write("/proc/self/setgroups", "deny\n".into())?;
    }
    write("/proc/self/uid_map", format!("0 {uid} 1\n"))?;
    write("/proc/self/gid_map", format!("0 {gid} 1\n"))?;
    // Nothing mounted here may propagate back out.
    let root = CString::new("/").unwrap();
    // SAFETY: valid C strings; null fs type and data are allowed for a propagation change.
    if unsafe {
        libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    } != 0
    {
        return Err(os_err("making mounts private"));
    }
    loopback_up()
}

fn loopback_up() -> Result<(), String> {
    // SAFETY: a plain socket for interface ioctls; closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(os_err("socket for bringing lo up"));
    }
    // SAFETY: ifreq is plain data; zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: `ifr` is a valid ifreq naming "lo"; the union member used is the flags.
    let r = unsafe {
        let mut r = libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut ifr);
        if r == 0 {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            r = libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &ifr);
        }
        r
    };
    let err = os_err("bringing lo up");
    // SAFETY: `fd` is ours.
    unsafe { libc::close(fd) };
    if r != 0 {
        return Err(err);
    }
    Ok(())
}

/// Bind-mounts file `src` over `dst` (inside the private mount namespace only).
pub fn bind_file(src: &Path, dst: &Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let s = CString::new(src.as_os_str().as_bytes()).map_err(|_| "NUL in path".to_string())?;
    let d = CString::new(dst.as_os_str().as_bytes()).map_err(|_| "NUL in path".to_string())?;
    // SAFETY: valid C strings; a bind mount takes no fs type or data.
    if unsafe {
        libc::mount(
            s.as_ptr(),
            d.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    } != 0
    {
        return Err(os_err(&format!(
            "bind-mounting {} over {}",
            src.display(),
            dst.display()
        )));
    }
    Ok(())
}
