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
        inside(failover::before_exec);
    }
}

hook! {
    fn execve(
        path: *const c_char,
        argv: *const *const c_char,
        envp: *const *const c_char,
    ) -> c_int = sys::execve;
    before { settle_inherited() }
}

hook! {
    fn execv(path: *const c_char, argv: *const *const c_char) -> c_int = sys::execv;
    before { settle_inherited() }
}

hook! {
    fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int = sys::execvp;
    before { settle_inherited() }
}

hook! {
    fn execvpe(
        file: *const c_char,
        argv: *const *const c_char,
        envp: *const *const c_char,
    ) -> c_int = sys::execvpe;
    before { settle_inherited() }
}

hook! {
    fn fexecve(
        fd: c_int,
        argv: *const *const c_char,
        envp: *const *const c_char,
    ) -> c_int = sys::fexecve;
    before { settle_inherited() }
}
