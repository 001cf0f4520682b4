//! The library's life in a process: when the shared state is made (once, on the first hook call
//! that needs it, never at load time), the settings read then, and what every layer does around
//! `fork()`.
//!
//! Owns: [`get`] (the state, or `None` when dnsfo is off), start-up (allocator reserve, settings
//! and their warnings, logging, stats, fork handlers) and the three fork handlers, which call
//! each layer's own fork step in one order. Must never: initialise re-entrantly (hooks reach
//! this only with the re-entrancy guard held), or do anything at load time.

use crate::state::{State, FDS};
use std::sync::OnceLock;

static STATE: OnceLock<State> = OnceLock::new();

/// The library's version, behind a tag that `dnsfo --version` finds in the library file
/// (`dnsfo_os::version::of_library`): the file says which version it is without being loaded.
static VERSION_TAG: &str = concat!("dnsfo-library-version ", env!("CARGO_PKG_VERSION"), "\0");

/// The library's version (what its tag carries).
pub fn version() -> &'static str {
    VERSION_TAG
        .trim_start_matches("dnsfo-library-version ")
        .trim_end_matches('\0')
}

/// Set by [`pass_through_from_now_on`]: this process wants the network as it is.
static OFF: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on every hook of this process passes straight through (for `dnsfo check`, which must
/// see the network as a plain program does however the library got into it: `LD_PRELOAD` under
/// another file name, `/etc/ld.so.preload`).
pub fn pass_through_from_now_on() {
    OFF.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The state, initialised on first use; `None` when dnsfo is disabled.
pub fn get() -> Option<&'static State> {
    if OFF.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    let s = STATE.get_or_init(init);
    (!s.config.disabled && !crate::alloc::exhausted()).then_some(s)
}

fn init() -> State {
    crate::alloc::arm();
    crate::sys::note_pid(crate::sys::getpid());
    crate::copies::init();
    let secure = crate::sys::secure_execution();
    let (config, mut warnings) = dnsfo_os::conffile::config(secure, |k| std::env::var_os(k));
    let config = if secure {
        // The environment belongs to whoever started a setuid program: none of it counts, only
        // a root-owned /etc/dnsfo.conf (and nothing is said on the program's stderr).
        config
    } else {
        let names: Vec<String> = std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .collect();
        warnings.extend(crate::config::unknown_settings(
            names.iter().map(String::as_str),
        ));
        for w in warnings {
            crate::sys::write_all(2, format!("{w}\n").as_bytes());
        }
        config
    };
    crate::logging::init(&config);
    if (config.stats || config.stats_file.is_some()) && !config.disabled {
        // Read only when stats are asked for: a plain start-up opens no extra file.
        crate::stats::set_kernel_syn_timeout_ms(dnsfo_os::kernel::syn_timeout_s() * 1000);
        if config.stats {
            crate::stats::enable(config.log_file.clone());
        }
        if let Some(path) = &config.stats_file {
            crate::stats::enable_file(path.clone(), config.stats_interval);
        }
    }
    crate::sys::register_atfork(prepare_fork, after_fork, after_fork_child);
    log::debug!(
        "initialised: dnsfo {} in {}: {config}",
        version(),
        std::env::args_os()
            .next()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    State::new(config)
}

/// `fork()`: every lock is taken first (reactor, then state), so that no other thread is in the
/// middle of an update when the process is copied.
extern "C" fn prepare_fork() {
    crate::reactor::prepare_fork();
    if let Some(s) = STATE.get() {
        s.lock_for_fork();
    }
}

/// The parent after `fork()`.
extern "C" fn after_fork() {
    if let Some(s) = STATE.get() {
        // SAFETY: `prepare_fork` ran `lock_for_fork` in this thread, just before.
        unsafe { s.unlock_after_fork() };
    }
    crate::reactor::after_fork();
}

/// The child after `fork()`.
extern "C" fn after_fork_child() {
    crate::sys::note_pid(crate::sys::getpid());
    crate::stats::after_fork_child();
    if let Some(s) = STATE.get() {
        // SAFETY: a fork child handler (single-threaded); `prepare_fork` ran `lock_for_fork`.
        unsafe { s.renew_after_fork() };
    }
    FDS.after_fork_child();
    crate::reactor::after_fork_child();
    crate::resolver::after_fork_child();
}
