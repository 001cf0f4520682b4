//! `exec` hooks: a steer lives in this process's memory and threads, which `exec` replaces. An
//! inherited socket whose connect is still being steered is given time to settle first (up to
//! the failover budget), so that the new program gets the outcome rather than a half-done
//! failover. `execl*` are variadic and call glibc's internal `execve`: not reachable (limit).

use super::inside;
use crate::failover;
use crate::fdtable;
use crate::sys;
use libc::{c_char, c_int};

fn settle_inherited() {
    if fdtable::any_special() {
        let _errno = sys::ErrnoGuard::save();
        inside(failover::before_exec);
    }
}

/// # Safety
/// Same contract as libc's `execve`.
#[no_mangle]
pub unsafe extern "C-unwind" fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    settle_inherited();
    // SAFETY: forwarded unchanged.
    unsafe { sys::execve(path, argv, envp) }
}

/// # Safety
/// Same contract as libc's `execv`.
#[no_mangle]
pub unsafe extern "C-unwind" fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    settle_inherited();
    // SAFETY: forwarded unchanged.
    unsafe { sys::execv(path, argv) }
}

/// # Safety
/// Same contract as libc's `execvp`.
#[no_mangle]
pub unsafe extern "C-unwind" fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    settle_inherited();
    // SAFETY: forwarded unchanged.
    unsafe { sys::execvp(file, argv) }
}

/// # Safety
/// Same contract as libc's `execvpe`.
#[no_mangle]
pub unsafe extern "C-unwind" fn execvpe(
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    settle_inherited();
    // SAFETY: forwarded unchanged.
    unsafe { sys::execvpe(file, argv, envp) }
}

/// # Safety
/// Same contract as libc's `fexecve`.
#[no_mangle]
pub unsafe extern "C-unwind" fn fexecve(
    fd: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    settle_inherited();
    // SAFETY: forwarded unchanged.
    unsafe { sys::fexecve(fd, argv, envp) }
}
