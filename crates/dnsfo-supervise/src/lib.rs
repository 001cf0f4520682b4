//! `dnsfo run --supervise`: dnsfo's failover for programs `LD_PRELOAD` cannot reach (statically
//! linked programs, Go programs), from outside the process. The program runs under a seccomp
//! filter (installed with `no_new_privs`; no privileges needed) that hands each of its TCP
//! `connect`s to this supervisor ([`filter`]); every other system call runs in the kernel
//! untouched. The supervisor decides with the same core as the library (`route`, `plan`, the
//! RFC 8305 `schedule`, `health`, the shared cache, the errno rules of `outcome`) and races on
//! a duplicate of the program's own socket ([`steer`]): the program's fd is always its own
//! socket. Names come from `/etc/hosts` and from the program's DNS answers ([`forward`]).
//!
//! Processes: the supervisor (this process: it receives notifications and forwards signals; a
//! thread per race, one for the DNS relay), the program (its child; its children, threads and
//! `exec`s stay supervised), and the [`keeper`], which answers for the supervisor if it dies.
//!
//! Owns: the supervisor's life, from the program's start to passing its exit status on. Must
//! never: stop the program from running (without seccomp or its notification support, the
//! program runs without failover, with a warning), or outlive it.
#![deny(unsafe_code)]

mod dnsmsg;
mod filter;
mod forward;
mod hosts;
mod keeper;
mod notify;
mod state;
mod steer;
mod sys;

use std::ffi::{CString, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;

/// Can this machine supervise at all (architecture, kernel support for the notification
/// structures)? `Err`: why not.
pub fn available() -> Result<(), String> {
    if !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        return Err("supervision is built for x86-64 and arm64 only".into());
    }
    if !sys::notif_sizes_match() {
        return Err("this kernel has no seccomp user notification (Linux 5.9 or later)".into());
    }
    Ok(())
}

/// A minimal `log` sink: one line per record on stderr (or `DNSFO_LOG_FILE`), like the
/// library's.
struct Logger {
    level: log::LevelFilter,
    file: Option<parking_lot::Mutex<std::fs::File>>,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let line = format!(
            "dnsfo-supervise[{}] dnsfo {}: {}\n",
            sys::getpid(),
            r.level(),
            r.args()
        );
        match &self.file {
            Some(f) => {
                let _ = f.lock().write_all(line.as_bytes());
            }
            None => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }

    fn flush(&self) {}
}

/// The level of a `DNSFO_LOG` filter (`debug`, `dnsfo=info`, ...): its most verbose level.
fn level_of(filter: &str) -> log::LevelFilter {
    filter
        .split(',')
        .filter_map(|d| d.rsplit('=').next())
        .filter_map(|l| l.trim().parse::<log::LevelFilter>().ok())
        .max()
        .unwrap_or(log::LevelFilter::Error)
}

fn start_logging(c: &dnsfo_core::config::Config) {
    let Some(filter) = &c.log_filter else { return };
    let file = c.log_file.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
            .map(parking_lot::Mutex::new)
    });
    let level = level_of(filter);
    if log::set_logger(Box::leak(Box::new(Logger { level, file }))).is_ok() {
        log::set_max_level(level);
    }
}

/// Runs `program` (with its arguments) under the supervisor; returns only on failure to start
/// it (the exit code to use), else ends this process the way the program ended.
pub fn supervise(program: &[OsString]) -> u8 {
    let (config, warnings) = dnsfo_os::conffile::config(false, |k| std::env::var_os(k));
    for w in &warnings {
        eprintln!("dnsfo: {w}");
    }
    start_logging(&config);
    let Ok(argv) = program
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<Vec<CString>, _>>()
    else {
        eprintln!("dnsfo run: an argument holds a NUL byte");
        return 2;
    };
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let prog = filter::program();
    let Ok((ours, theirs)) = sys::socketpair() else {
        eprintln!("dnsfo run: cannot make a socket pair");
        return 126;
    };
    let old_mask = sys::block_signals(&sys::FORWARDED);
    let (ours_fd, theirs_fd) = (ours.0, theirs.0);
    let child_steps = || -> libc::c_int {
        sys::close(ours_fd);
        sys::set_signal_mask(&old_mask);
        match sys::install_filter(&prog) {
            Ok(listener) => {
                if sys::send_fd(theirs_fd, listener).is_err() {
                    return 126;
                }
                sys::close(listener);
                // Run the program only once the supervisor holds the listener.
                if sys::read_byte(theirs_fd).is_err() {
                    return 126;
                }
            }
            // No filter: the parent sees the pair closed and says so; run without.
            Err(_) => sys::close(theirs_fd),
        }
        let e = sys::execvp(&argv, &ptrs);
        if e == libc::ENOENT {
            127
        } else {
            126
        }
    };
    let child = match sys::fork_then(child_steps) {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "dnsfo run: fork: {}",
                dnsfo_core::errno::name(e).unwrap_or("error")
            );
            return 126;
        }
    };
    drop(theirs);
    match sys::recv_fd(ours_fd) {
        Ok(listener) => run(child, listener, ours, config),
        Err(_) => {
            eprintln!(
                "dnsfo: cannot supervise {} (the kernel refused the seccomp filter); it runs without failover",
                program[0].to_string_lossy()
            );
            drop(ours);
            wait_and_exit(child)
        }
    }
}

fn run(
    child: libc::pid_t,
    listener: libc::c_int,
    go: sys::Fd,
    config: dnsfo_core::config::Config,
) -> u8 {
    // The keeper first, while this process has one thread (fork).
    let slots: &'static keeper::Slots = match sys::shared(keeper::Slots::new()) {
        Some(s) => s,
        None => Box::leak(Box::new(keeper::Slots::new())),
    };
    if let Ok(me) = sys::pidfd_open(sys::getpid() as u32, false) {
        let _ = sys::fork_then(|| keeper::run(listener, me, slots));
        sys::close(me);
    }
    let child_pidfd = sys::pidfd_open(child as u32, false).ok().map(sys::Fd);
    let signals = sys::signalfd(&sys::FORWARDED).ok();
    let state = Arc::new(state::State::new(config, PathBuf::from("/etc/hosts")));
    let forwarder = forward::Forwarder::new().map(Arc::new);
    if let Some(f) = &forwarder {
        let (f, s) = (Arc::clone(f), Arc::clone(&state));
        let _ = std::thread::Builder::new()
            .name("dnsfo-dns".into())
            .spawn(move || f.serve(s));
    }
    let sv = Arc::new(notify::Supervisor::new(listener, state, slots, forwarder));
    let _ = sys::write_byte(go.0);
    drop(go);
    log::debug!("supervising pid {child}");
    loop {
        let mut fds = vec![libc::pollfd {
            fd: listener,
            events: libc::POLLIN,
            revents: 0,
        }];
        for fd in [child_pidfd.as_ref(), signals.as_ref()]
            .into_iter()
            .flatten()
        {
            fds.push(libc::pollfd {
                fd: fd.0,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let wait = child_pidfd
            .is_none()
            .then_some(std::time::Duration::from_millis(100));
        if sys::poll(&mut fds, wait) < 0 {
            continue;
        }
        if fds[0].revents & libc::POLLIN != 0 {
            if let Ok(n) = sys::notif_recv(listener) {
                sv.handle(n);
            }
        }
        if let Some(s) = &signals {
            while let Some(sig) = sys::read_signal(s.0) {
                sys::kill(child, sig);
            }
        }
        let ended = match &child_pidfd {
            Some(p) => fds.iter().any(|f| f.fd == p.0 && f.revents != 0),
            None => true,
        };
        if ended {
            if let Some(st) = sys::wait_for(child, true) {
                exit_as(st);
            }
        }
        if fds[0].revents & (libc::POLLHUP | libc::POLLERR) != 0 && child_pidfd.is_none() {
            return wait_and_exit(child);
        }
    }
}

fn wait_and_exit(child: libc::pid_t) -> u8 {
    match sys::wait_for(child, false) {
        Some(st) => exit_as(st),
        None => 126,
    }
}

/// Ends this process as the program ended: its exit code, or 128 + the signal that ended it
/// (as a shell reports it; raising the signal here would make a crash dump the supervisor's
/// core).
fn exit_as(status: libc::c_int) -> ! {
    if libc::WIFSIGNALED(status) {
        std::process::exit(128 + libc::WTERMSIG(status));
    }
    std::process::exit(libc::WEXITSTATUS(status))
}
